-- The server's group commit, second version: replaces append_batch of
-- append_event.sql (installed by migration 0003, a link to this file).
--
-- Many independent append requests in one transaction (one WAL flush, one
-- NOTIFY), each request all-or-nothing on its own. Input: [{"tenantId",
-- "events": [{"id", "stream", "type", "data", "expectedVersion", "actorId",
-- "actorName", "audience": [..]|null, "metadata"}]}]. Output, in input order:
-- a row per stored event of each request that succeeded, or one row with an
-- error code and message for a request that did not: conflict (with
-- current_version), invalid, or retry (a concurrent append of the same id:
-- run the request again on its own).
--
-- Nearly every batch is clean: no stale expectedVersion, no id that is
-- already stored. A clean batch is written with one INSERT for all its events
-- and one for its streams; per-statement costs (executor start-up, the CHECK
-- constraints, a subtransaction) are then paid once per batch, not per event.
-- Any other batch, or one that fails on the way, takes the slow path: each
-- request in a subtransaction of its own, one insert_event per event.
--
-- jit is off: the planner takes each jsonb_array_elements for 100 rows, so a
-- query over a batch is costed near jit_above_cost and a JIT compile (tens of
-- milliseconds) would cost far more than the batch itself.
CREATE OR REPLACE FUNCTION eventfeed.append_batch(requests jsonb)
RETURNS TABLE (request int, code text, message text, current_version bigint, event eventfeed.events)
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    touched record;
    found_version bigint;
    tenants text[] := '{}';
    streams text[] := '{}';
    versions bigint[] := '{}';
    clean boolean := false;
    requests_of int[];
    written eventfeed.events[];
    req jsonb;
    ev jsonb;
    stored eventfeed.events[];
BEGIN
    -- Lock every stream the batch touches, one primary-key lookup each, in
    -- one order, so that concurrent batches cannot deadlock on each other's
    -- streams, and note its version (0: a new stream). A join against the
    -- whole batch would be planned as a scan of the streams table.
    FOR touched IN
        SELECT DISTINCT r ->> 'tenantId' AS t, e ->> 'stream' AS s
        FROM jsonb_array_elements(requests) r, jsonb_array_elements(r -> 'events') e
        ORDER BY 1, 2
    LOOP
        SELECT st.version INTO found_version FROM eventfeed.streams st
        WHERE st.tenant_id = touched.t AND st.stream = touched.s
        FOR UPDATE;
        tenants := tenants || touched.t;
        streams := streams || touched.s;
        versions := versions || coalesce(found_version, 0);
    END LOOP;

    -- The fast path, all in one subtransaction: any failure falls through to
    -- the slow path, which gives each request its own outcome.
    BEGIN
        WITH ev AS (
            SELECT (r.ordinality - 1)::int AS request, r.value ->> 'tenantId' AS tenant_id,
                   e.value ->> 'stream' AS stream, (e.value ->> 'id')::uuid AS id,
                   (e.value ->> 'expectedVersion')::bigint AS expected,
                   row_number() OVER (ORDER BY r.ordinality, e.ordinality) AS seq
            FROM jsonb_array_elements(requests) WITH ORDINALITY r,
                 jsonb_array_elements(r.value -> 'events') WITH ORDINALITY e
        ), planned AS (
            SELECT ev.*, cur.version
                       + row_number() OVER (PARTITION BY ev.tenant_id, ev.stream ORDER BY ev.seq) AS version
            FROM ev JOIN unnest(tenants, streams, versions) AS cur (tenant_id, stream, version)
                 ON cur.tenant_id = ev.tenant_id AND cur.stream = ev.stream
        )
        SELECT bool_and(p.expected IS NULL OR p.expected = p.version - 1)
               AND count(p.id) = count(DISTINCT (p.tenant_id, p.id)) FILTER (WHERE p.id IS NOT NULL)
               AND NOT bool_or(p.id IS NOT NULL AND EXISTS (
                   SELECT 1 FROM eventfeed.events x WHERE x.tenant_id = p.tenant_id AND x.id = p.id))
        INTO clean
        FROM planned p;

        IF clean THEN
            WITH ev AS (
                SELECT (r.ordinality - 1)::int AS request, r.value ->> 'tenantId' AS tenant_id,
                       e.value ->> 'stream' AS stream, e.value AS body,
                       row_number() OVER (ORDER BY r.ordinality, e.ordinality) AS seq
                FROM jsonb_array_elements(requests) WITH ORDINALITY r,
                     jsonb_array_elements(r.value -> 'events') WITH ORDINALITY e
            ), planned AS MATERIALIZED (
                SELECT ev.request, ev.seq, ev.tenant_id, ev.stream, ev.body,
                       coalesce((ev.body ->> 'id')::uuid, gen_random_uuid()) AS id,
                       cur.version
                           + row_number() OVER (PARTITION BY ev.tenant_id, ev.stream ORDER BY ev.seq) AS version
                FROM ev JOIN unnest(tenants, streams, versions) AS cur (tenant_id, stream, version)
                     ON cur.tenant_id = ev.tenant_id AND cur.stream = ev.stream
            ), inserted AS (
                INSERT INTO eventfeed.events
                    (id, tenant_id, stream, version, type, data, actor_id, actor_name, audience, metadata)
                SELECT p.id, p.tenant_id, p.stream, p.version, p.body ->> 'type', p.body -> 'data',
                       p.body ->> 'actorId', p.body ->> 'actorName',
                       CASE WHEN jsonb_typeof(p.body -> 'audience') = 'array'
                            THEN ARRAY(SELECT jsonb_array_elements_text(p.body -> 'audience')) END,
                       nullif(p.body -> 'metadata', 'null'::jsonb)
                FROM planned p
                ORDER BY p.seq
                RETURNING *
            ), bumped AS (
                -- Run to completion although nothing reads it.
                INSERT INTO eventfeed.streams AS s (tenant_id, stream, version)
                SELECT p.tenant_id, p.stream, max(p.version) FROM planned p GROUP BY 1, 2 ORDER BY 1, 2
                ON CONFLICT (tenant_id, stream) DO UPDATE SET version = excluded.version
            )
            SELECT array_agg(p.request ORDER BY p.seq), array_agg(i ORDER BY p.seq)
            INTO requests_of, written
            FROM planned p JOIN inserted i ON i.tenant_id = p.tenant_id AND i.id = p.id;
        END IF;
    EXCEPTION
        WHEN unique_violation OR deadlock_detected OR check_violation OR invalid_parameter_value
             OR invalid_text_representation OR not_null_violation THEN
            clean := false;
    END;

    IF clean THEN
        FOR i IN 1 .. coalesce(cardinality(written), 0) LOOP
            request := requests_of[i];
            event := written[i];
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;

    -- The slow path.
    request := 0;
    FOR req IN SELECT value FROM jsonb_array_elements(requests) LOOP
        code := NULL;
        message := NULL;
        current_version := NULL;
        stored := '{}';
        BEGIN
            FOR ev IN SELECT value FROM jsonb_array_elements(req -> 'events') LOOP
                stored := stored || eventfeed.insert_event(
                    req ->> 'tenantId', ev ->> 'stream', ev ->> 'type', ev -> 'data',
                    (ev ->> 'id')::uuid, (ev ->> 'expectedVersion')::bigint,
                    ev ->> 'actorId', ev ->> 'actorName',
                    CASE WHEN jsonb_typeof(ev -> 'audience') = 'array'
                         THEN ARRAY(SELECT jsonb_array_elements_text(ev -> 'audience')) END,
                    nullif(ev -> 'metadata', 'null'::jsonb));
            END LOOP;
        EXCEPTION
            WHEN SQLSTATE 'EF409' THEN
                GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, code = PG_EXCEPTION_DETAIL;
                current_version := code::bigint;
                code := 'conflict';
            WHEN check_violation OR invalid_parameter_value OR invalid_text_representation
                 OR not_null_violation THEN
                code := 'invalid';
                message := SQLERRM;
            WHEN unique_violation THEN
                code := 'retry';
        END;
        IF code IS NULL THEN
            -- One row per stored event, in order.
            FOREACH event IN ARRAY stored LOOP
                RETURN NEXT;
            END LOOP;
        ELSE
            event := NULL;
            RETURN NEXT;
        END IF;
        request := request + 1;
    END LOOP;
END $$;
