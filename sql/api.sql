-- The SQL API: the one current definition of every eventfeed function.
--
-- The server runs this file after the migrations at every start (and
-- `eventfeed migrate` does), in one transaction under an advisory lock, so
-- nodes starting together do not replace the same functions at once. Every
-- statement is CREATE OR REPLACE: edit a function here. A change of a
-- signature (arguments or result) also needs a migration that drops the old
-- one, since CREATE OR REPLACE cannot change it and would add an overload.
-- The migrations hold the schema; older definitions in them are history.

-- The doorbell: one notification per appending statement (PostgreSQL folds
-- identical notifications of one transaction into one). It carries no data;
-- listeners read the table.
CREATE OR REPLACE FUNCTION eventfeed.ring_doorbell() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eventfeed', '');
    RETURN NULL;
END $$;

-- The type counts' triggers (migration 0010 says why they insert rows of
-- changes rather than update counters): one row per appended or deleted
-- event. The server folds them into eventfeed.type_counts.
CREATE OR REPLACE FUNCTION eventfeed.count_appended_type() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO eventfeed.type_count_changes (tenant_id, type, events, last_at)
    VALUES (NEW.tenant_id, NEW.type, 1, NEW.created_at);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION eventfeed.count_deleted_type() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO eventfeed.type_count_changes (tenant_id, type, events, last_at)
    VALUES (OLD.tenant_id, OLD.type, -1, NULL);
    RETURN NULL;
END $$;

-- The names the server emits or listens for (docs/protocol.md, reserved types): a stored
-- event of such a type would reach sockets as if the server had sent it.
CREATE OR REPLACE FUNCTION eventfeed.is_reserved_type(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT (strpos(t, ':') > 0 AND split_part(t, ':', 1) IN ('feed', 'auth', 'presence', 'request', 'event'))
        OR t IN ('user:online', 'user:offline', 'user:typing', 'reconnected',
                 'connect', 'disconnect', 'connect_error', 'error')
$$;

-- Why the server could not read a document back, or NULL. It reads events as
-- JSON with double-precision numbers and at most 127 levels of nesting; an
-- event beyond either would stop every reader behind it.
CREATE OR REPLACE FUNCTION eventfeed.unreadable(doc jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN jsonb_path_exists(doc, 'strict $.**{128 to last}') THEN 'nests deeper than 127 levels'
        WHEN jsonb_path_exists(doc,
            'strict $.** ? (@.type() == "number" && (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308))')
            THEN 'holds a number beyond double precision (±1.7976931348623157e308)'
    END
$$;

-- Serializes the appends of one id of one tenant, until the transaction
-- ends. The events table is partitioned by time, and a partitioned table's
-- unique indexes hold per partition only: two appends of one id that would
-- land in two partitions are kept apart by this lock, taken before the id is
-- looked for, so the second one finds the first.
CREATE OR REPLACE FUNCTION eventfeed.lock_id(p_tenant_id text, p_id uuid) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended(p_tenant_id || '/' || p_id::text, 20251));
$$;

-- Appends one event and returns the stored row: the per-event path, shared by
-- append_event and by append_batch's per-request path.
--
-- An id the tenant already has is an idempotent retry only if the content
-- (stream, type, data, audience, metadata) is the same and p_reader may see
-- the stored event: it is p_reader's own, or has no audience or one listing
-- p_reader. Otherwise it raises EF409 'id already used', which shows nothing
-- of the stored event. p_reader NULL (SQL callers, who can read the table
-- anyway) skips the visibility rule.
-- A stale expected_version raises EF409 with the current version as DETAIL.
CREATE OR REPLACE FUNCTION eventfeed.insert_event(
    p_tenant_id text, p_stream text, p_type text, p_data jsonb, p_id uuid,
    p_expected_version bigint, p_actor_id text, p_actor_name text,
    p_audience text[], p_metadata jsonb, p_reader text)
RETURNS eventfeed.events
LANGUAGE plpgsql AS $$
DECLARE
    stored eventfeed.events;
    next_version bigint;
BEGIN
    IF eventfeed.is_reserved_type(p_type) THEN
        RAISE EXCEPTION 'type % is reserved for the server''s own events', p_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_id IS NOT NULL THEN
        PERFORM eventfeed.lock_id(p_tenant_id, p_id);
        SELECT * INTO stored FROM eventfeed.events e
        WHERE e.tenant_id = p_tenant_id AND e.id = p_id;
        IF FOUND THEN
            IF (stored.stream, stored.type, stored.data) = (p_stream, p_type, p_data)
               AND stored.audience IS NOT DISTINCT FROM p_audience
               AND stored.metadata IS NOT DISTINCT FROM p_metadata
               AND (p_reader IS NULL OR stored.actor_id = p_reader
                    OR stored.audience IS NULL OR p_reader = ANY (stored.audience)) THEN
                RETURN stored;
            END IF;
            RAISE EXCEPTION 'id already used' USING ERRCODE = 'EF409';
        END IF;
    END IF;

    INSERT INTO eventfeed.streams AS s (tenant_id, stream, version)
    VALUES (p_tenant_id, p_stream, 1)
    ON CONFLICT (tenant_id, stream) DO UPDATE SET version = s.version + 1
    RETURNING s.version INTO next_version;

    IF p_expected_version IS NOT NULL AND p_expected_version <> next_version - 1 THEN
        RAISE EXCEPTION 'expected version % of stream %, found %',
                p_expected_version, p_stream, next_version - 1
            USING ERRCODE = 'EF409', DETAIL = (next_version - 1)::text;
    END IF;

    INSERT INTO eventfeed.events
        (id, tenant_id, stream, version, type, data, actor_id, actor_name, audience, metadata)
    VALUES
        (coalesce(p_id, gen_random_uuid()), p_tenant_id, p_stream, next_version, p_type,
         p_data, p_actor_id, p_actor_name, p_audience, p_metadata)
    RETURNING * INTO stored;
    RETURN stored;
END $$;

-- The public SQL API (docs/sql-api.md).
-- audience is the envelope's form: NULL, or {"users": ["u-1", ...]}.
-- data may take at most eventfeed.max_event_bytes bytes (default 262144,
-- 256 KiB; set it like any setting, e.g. ALTER DATABASE app SET
-- eventfeed.max_event_bytes = '1048576'), metadata at most 16 KiB, both
-- measured as their text form; a larger event raises EF413. HTTP and sockets
-- check the same limits in the server.
CREATE OR REPLACE FUNCTION eventfeed.append_event(
    tenant_id text, stream text, type text, data jsonb,
    id uuid DEFAULT NULL, expected_version bigint DEFAULT NULL,
    actor_id text DEFAULT NULL, actor_name text DEFAULT NULL,
    audience jsonb DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS TABLE (cursor text, version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    max_data bigint := coalesce(nullif(current_setting('eventfeed.max_event_bytes', true), ''), '262144')::bigint;
    size bigint;
    unreadable text;
    users text[];
    stored eventfeed.events;
BEGIN
    size := octet_length(append_event.data::text);
    IF size > max_data THEN
        RAISE EXCEPTION 'data is % bytes; the limit is % (eventfeed.max_event_bytes)', size, max_data
            USING ERRCODE = 'EF413';
    END IF;
    size := octet_length(append_event.metadata::text);
    IF size > 16384 THEN
        RAISE EXCEPTION 'metadata is % bytes; the limit is 16384', size USING ERRCODE = 'EF413';
    END IF;
    unreadable := coalesce('data ' || eventfeed.unreadable(append_event.data),
                           'metadata ' || eventfeed.unreadable(append_event.metadata));
    IF unreadable IS NOT NULL THEN
        RAISE EXCEPTION '%: the server could not read it back', unreadable USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF append_event.audience IS NOT NULL THEN
        IF jsonb_typeof(append_event.audience -> 'users') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'audience must be null or {"users": [...]}'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        users := ARRAY(SELECT jsonb_array_elements_text(append_event.audience -> 'users'));
    END IF;
    stored := eventfeed.insert_event(
        append_event.tenant_id, append_event.stream, append_event.type,
        append_event.data, append_event.id, append_event.expected_version,
        append_event.actor_id, append_event.actor_name, users, append_event.metadata, NULL);
    cursor := stored.tx_id::text || '-' || stored.position::text;
    version := stored.version;
    RETURN NEXT;
END $$;

-- The server's group commit: many independent append requests in one
-- transaction (one WAL flush, one NOTIFY), each request all-or-nothing on its
-- own.
--
-- Input: one array element per event, all arrays of the same length: event n
-- belongs to request request_of[n] (0, 1, 2, …, a request's events
-- contiguous and in order). audience is a JSON array of user ids or NULL.
-- The event's actor is also its reader for idempotent retries (insert_event).
-- Typed arrays, not one jsonb document: no step ever carries or sorts more
-- than one event's data, so a batch costs time and memory linear in its size.
--
-- Output, in input order: per stored event its request and what the server
-- did not send (id, cursor, version, stored actor, time) and whether it was
-- an idempotent retry answered with an event stored before (retried), or one
-- row with an error code and message for a request that failed: conflict
-- (with current_version for a stale expected version), invalid, or retry (a
-- concurrent append of the same id: run the request again on its own).
--
-- jit is off: the planner takes each unnest for 100 rows, so a query over a
-- batch is costed near jit_above_cost and a JIT compile (tens of
-- milliseconds) would cost far more than the batch itself.
-- Plans are generic, made once per connection: with custom plans (the
-- default picks them here, each batch's arrays being parameters) every call
-- planned its statements again, 0.7 ms a batch of one event (1.2 ms a call
-- in all against 0.5, one pgbench client).
CREATE OR REPLACE FUNCTION eventfeed.append_batch(
    request_of int[], tenant_id text[], stream text[], type text[], data jsonb[],
    id uuid[], expected_version bigint[], actor_id text[], actor_name text[],
    audience jsonb[], metadata jsonb[])
RETURNS TABLE (request int, code text, message text, current_version bigint, event_id uuid,
               tx_id bigint, event_position bigint, version bigint, event_actor_id text,
               event_actor_name text, created_at timestamptz, retried boolean)
LANGUAGE plpgsql SET jit = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    n_events int := coalesce(cardinality(request_of), 0);
    touched record;
    tenants text[];
    streams text[];
    versions bigint[];
    planned bigint[];
    ids uuid[];
    positions bigint[];
    stamps timestamptz[];
    clean boolean;
BEGIN
    -- Lock every id the batch gives, in one order, before its streams, as
    -- insert_event does: the ids are then looked for with no other append
    -- of them in flight (see lock_id).
    FOR touched IN
        SELECT DISTINCT u.t, u.i FROM unnest(append_batch.tenant_id, append_batch.id) u (t, i)
        WHERE u.i IS NOT NULL ORDER BY 1, 2
    LOOP
        PERFORM eventfeed.lock_id(touched.t, touched.i);
    END LOOP;

    -- Lock every stream the batch touches, one primary-key lookup each, in
    -- one order (the nested loop walks the sorted list, and OFFSET 0 keeps
    -- the list a sorted subquery), so that concurrent batches cannot
    -- deadlock on each other's streams; and note its version (0: a new
    -- stream). One statement for the batch, not one per stream.
    SELECT coalesce(array_agg(x.t ORDER BY x.t, x.s), '{}'), coalesce(array_agg(x.s ORDER BY x.t, x.s), '{}'),
           coalesce(array_agg(coalesce(cur.version, 0) ORDER BY x.t, x.s), '{}')
    INTO tenants, streams, versions
    FROM (SELECT DISTINCT u.t, u.s FROM unnest(append_batch.tenant_id, append_batch.stream) u (t, s)
          ORDER BY 1, 2 OFFSET 0) x
    LEFT JOIN LATERAL (
        SELECT st.version FROM eventfeed.streams st
        WHERE st.tenant_id = x.t AND st.stream = x.s
        FOR UPDATE
    ) cur ON true;

    -- Each event's version if every request succeeds: its stream's version
    -- plus its place among the batch's events on that stream. The window
    -- sorts (tenant, stream, n) only, never the data.
    SELECT array_agg(v.version ORDER BY v.n) INTO planned FROM (
        SELECT e.n, cur.v + row_number() OVER (PARTITION BY e.t, e.s ORDER BY e.n) AS version
        FROM unnest(append_batch.tenant_id, append_batch.stream) WITH ORDINALITY e (t, s, n)
        JOIN unnest(tenants, streams, versions) cur (t, s, v) ON cur.t = e.t AND cur.s = e.s
    ) v;

    -- The usual batch is clean: no stale expected version, no id stored
    -- before or given twice, no reserved type. It is written with one INSERT
    -- for its events and one for its streams.
    SELECT coalesce(bool_and((e.x IS NULL OR e.x = planned[e.n] - 1) AND NOT eventfeed.is_reserved_type(e.ty)
                             AND NOT (e.i IS NOT NULL AND EXISTS (
                                 SELECT 1 FROM eventfeed.events old WHERE old.tenant_id = e.t AND old.id = e.i))), true)
           AND count(e.i) = count(DISTINCT (e.t, e.i)) FILTER (WHERE e.i IS NOT NULL)
    INTO clean
    FROM unnest(append_batch.tenant_id, append_batch.id, append_batch.expected_version, append_batch.type)
         WITH ORDINALITY e (t, i, x, ty, n);

    IF clean THEN
        ids := ARRAY(SELECT coalesce(i, gen_random_uuid()) FROM unnest(append_batch.id) WITH ORDINALITY u (i, n) ORDER BY n);
        -- In a subtransaction: any failure (a concurrent append of the same
        -- id, a broken rule) falls through to the per-request path, which
        -- gives each request its own outcome.
        BEGIN
            WITH inserted AS (
                -- Events by subscript, in input order (so positions follow
                -- it): a function scan of the data itself, such as unnest,
                -- would first copy it all into a tuplestore, on disk past
                -- work_mem.
                INSERT INTO eventfeed.events AS ev
                    (id, tenant_id, stream, version, type, data, actor_id, actor_name, audience, metadata)
                SELECT ids[k], append_batch.tenant_id[k], append_batch.stream[k], planned[k],
                       append_batch.type[k], append_batch.data[k], append_batch.actor_id[k],
                       append_batch.actor_name[k],
                       CASE WHEN append_batch.audience[k] IS NOT NULL
                            THEN ARRAY(SELECT jsonb_array_elements_text(append_batch.audience[k])) END,
                       append_batch.metadata[k]
                FROM generate_series(1, n_events) AS g (k)
                RETURNING ev.tenant_id, ev.id, ev.position, ev.created_at
            ), bumped AS (
                -- Runs to completion although nothing reads it.
                INSERT INTO eventfeed.streams AS st (tenant_id, stream, version)
                SELECT u.t, u.s, max(planned[u.n])
                FROM unnest(append_batch.tenant_id, append_batch.stream) WITH ORDINALITY u (t, s, n)
                GROUP BY 1, 2 ORDER BY 1, 2
                ON CONFLICT (tenant_id, stream) DO UPDATE SET version = excluded.version
            )
            SELECT array_agg(i.position ORDER BY k.n), array_agg(i.created_at ORDER BY k.n)
            INTO positions, stamps
            FROM unnest(append_batch.tenant_id, ids) WITH ORDINALITY k (t, i, n)
            JOIN inserted i ON i.tenant_id = k.t AND i.id = k.i;
        EXCEPTION
            WHEN unique_violation OR deadlock_detected OR check_violation OR invalid_parameter_value
                 OR invalid_text_representation OR not_null_violation THEN
                clean := false;
        END;
    END IF;

    IF clean THEN
        RETURN QUERY
            SELECT request_of[k], NULL::text, NULL::text, NULL::bigint, ids[k],
                   pg_current_xact_id()::text::bigint, positions[k], planned[k],
                   append_batch.actor_id[k], append_batch.actor_name[k], stamps[k], false
            FROM generate_series(1, n_events) AS g (k);
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM eventfeed.append_requests(
        request_of, append_batch.tenant_id, append_batch.stream, append_batch.type, append_batch.data,
        append_batch.id, append_batch.expected_version, append_batch.actor_id, append_batch.actor_name,
        append_batch.audience, append_batch.metadata);
END $$;

-- append_batch's per-request path (same arguments and result): each request
-- in a subtransaction of its own, one insert_event per event, so a request
-- that fails leaves the others in place. The streams are already locked by
-- append_batch, in its order.
CREATE OR REPLACE FUNCTION eventfeed.append_requests(
    request_of int[], tenant_id text[], stream text[], type text[], data jsonb[],
    id uuid[], expected_version bigint[], actor_id text[], actor_name text[],
    audience jsonb[], metadata jsonb[])
RETURNS TABLE (request int, code text, message text, current_version bigint, event_id uuid,
               tx_id bigint, event_position bigint, version bigint, event_actor_id text,
               event_actor_name text, created_at timestamptz, retried boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n_events int := coalesce(cardinality(request_of), 0);
    lo int := 1;
    hi int;
    stored eventfeed.events[];
    retries boolean[];
    detail text;
BEGIN
    WHILE lo <= n_events LOOP
        hi := lo;
        WHILE hi < n_events AND request_of[hi + 1] = request_of[lo] LOOP
            hi := hi + 1;
        END LOOP;
        request := request_of[lo];
        code := NULL;
        message := NULL;
        current_version := NULL;
        stored := '{}';
        retries := '{}';
        BEGIN
            FOR k IN lo .. hi LOOP
                -- An id the tenant already has (stored before, or earlier in
                -- this batch) is answered by insert_event only as a retry:
                -- otherwise it raises, and the request fails.
                retries := retries || (append_requests.id[k] IS NOT NULL AND EXISTS (
                    SELECT 1 FROM eventfeed.events e
                    WHERE e.tenant_id = append_requests.tenant_id[k] AND e.id = append_requests.id[k]));
                stored := stored || eventfeed.insert_event(
                    append_requests.tenant_id[k], append_requests.stream[k], append_requests.type[k],
                    append_requests.data[k], append_requests.id[k], append_requests.expected_version[k],
                    append_requests.actor_id[k], append_requests.actor_name[k],
                    CASE WHEN append_requests.audience[k] IS NOT NULL
                         THEN ARRAY(SELECT jsonb_array_elements_text(append_requests.audience[k])) END,
                    append_requests.metadata[k], append_requests.actor_id[k]);
            END LOOP;
        EXCEPTION
            WHEN SQLSTATE 'EF409' THEN
                GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
                current_version := nullif(detail, '')::bigint;
                code := 'conflict';
            WHEN check_violation OR invalid_parameter_value OR invalid_text_representation
                 OR not_null_violation THEN
                code := 'invalid';
                message := SQLERRM;
            WHEN unique_violation THEN
                code := 'retry';
        END;
        IF code IS NULL THEN
            -- One row per stored event, in order; the data stays out of the result.
            FOR k IN 1 .. cardinality(stored) LOOP
                event_id := (stored[k]).id;
                tx_id := (stored[k]).tx_id;
                event_position := (stored[k]).position;
                version := (stored[k]).version;
                event_actor_id := (stored[k]).actor_id;
                event_actor_name := (stored[k]).actor_name;
                created_at := (stored[k]).created_at;
                retried := retries[k];
                RETURN NEXT;
            END LOOP;
        ELSE
            event_id := NULL; tx_id := NULL; event_position := NULL; version := NULL;
            event_actor_id := NULL; event_actor_name := NULL; created_at := NULL; retried := NULL;
            RETURN NEXT;
        END IF;
        lo := hi + 1;
    END LOOP;
END $$;

-- The events table's partitions by time (migration 0007): creates the ones
-- missing from the end of the last one to two steps past now, each ending
-- at a step boundary (UTC) after it begins; returns how many it made.
-- Called by the server at start and every hour. It waits at most a second
-- for its lock on the table (an application's long transaction may hold
-- one), and otherwise fails, to be tried again later: the partitions exist
-- well before they are needed.
CREATE OR REPLACE FUNCTION eventfeed.ensure_partitions(step text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    unit interval := CASE step WHEN 'month' THEN interval '1 month' WHEN 'week' THEN interval '1 week'
                               WHEN 'day' THEN interval '1 day' END;
    start timestamptz;
    stop timestamptz;
    name text;
    made int := 0;
BEGIN
    IF unit IS NULL THEN
        RAISE EXCEPTION 'partition step must be month, week or day, not %', step
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('lock_timeout', '1s', true);
    PERFORM pg_advisory_xact_lock(hashtextextended('eventfeed.partitions', 20251));
    SELECT max(until_at) INTO start FROM eventfeed.partitions;
    WHILE start < now() + 2 * unit LOOP
        stop := date_trunc(step, start, 'UTC') + unit;
        name := 'events_' || to_char(start AT TIME ZONE 'UTC', 'YYYYMMDD');
        EXECUTE format('CREATE TABLE eventfeed.%I PARTITION OF eventfeed.events FOR VALUES FROM (%L) TO (%L)',
                       name, start, stop);
        EXECUTE format('ALTER TABLE eventfeed.%I ADD PRIMARY KEY (position), ADD UNIQUE (tenant_id, id), '
                       'ADD UNIQUE (tenant_id, stream, version)', name);
        INSERT INTO eventfeed.partitions (name, from_at, until_at) VALUES (name, start, stop);
        start := stop;
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- Retention: drops, oldest first, every partition that ends at or before
-- `before` (so every event in it is older), and returns how many events
-- they held (as the planner counts them, once analyzed). It never deletes rows. The retention floor becomes the newest
-- cursor dropped, so a reader behind it is reset rather than silently
-- skipping (a later partition may still hold an event below the floor,
-- which only such readers could want). A partition holding a row of a
-- transaction still open is kept, and so are the ones after it.
CREATE OR REPLACE FUNCTION eventfeed.drop_expired_partitions(before timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    horizon bigint := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
    part record;
    last_tx bigint;
    last_position bigint;
    held bigint;
    dropped bigint := 0;
BEGIN
    PERFORM set_config('lock_timeout', '1s', true);
    PERFORM pg_advisory_xact_lock(hashtextextended('eventfeed.partitions', 20251));
    FOR part IN SELECT p.name FROM eventfeed.partitions p WHERE p.until_at <= before ORDER BY p.until_at LOOP
        EXECUTE format('SELECT tx_id, position FROM eventfeed.%I ORDER BY tx_id DESC, position DESC LIMIT 1',
                       part.name) INTO last_tx, last_position;
        EXIT WHEN last_tx >= horizon;
        -- The planner's row count when the partition has been analyzed (an
        -- old one has, by autovacuum): counting millions of rows to drop them
        -- would cost what dropping saves.
        SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END INTO held
        FROM pg_class c WHERE c.oid = format('eventfeed.%I', part.name)::regclass;
        IF held IS NULL THEN
            EXECUTE format('SELECT count(*) FROM eventfeed.%I', part.name) INTO held;
        END IF;
        IF last_tx IS NOT NULL THEN
            INSERT INTO eventfeed.retention AS r (tx_id, position) VALUES (last_tx, last_position)
            ON CONFLICT (only_row) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position
            WHERE (r.tx_id, r.position) < (excluded.tx_id, excluded.position);
        END IF;
        -- A dropped partition fires no delete trigger: its events leave the
        -- type counts here, in the same transaction.
        EXECUTE format('INSERT INTO eventfeed.type_count_changes (tenant_id, type, events, last_at) '
                       'SELECT tenant_id, type, -count(*), NULL FROM eventfeed.%I GROUP BY tenant_id, type',
                       part.name);
        EXECUTE format('DROP TABLE eventfeed.%I', part.name);
        DELETE FROM eventfeed.partitions p WHERE p.name = part.name;
        dropped := dropped + held;
    END LOOP;
    RETURN dropped;
END $$;
