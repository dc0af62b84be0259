-- The server's group commit, second version (installed by migration 0003, a
-- link to this file).
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
-- Any other batch, or one that fails on the way, takes the slow path: the
-- first version of append_batch (append_event.sql), kept under the name
-- append_batch_per_request, which runs each request in a subtransaction of
-- its own, one insert_event per event.
ALTER FUNCTION eventfeed.append_batch(jsonb) RENAME TO append_batch_per_request;

-- A batch's events in input order, each with the version it gets if every
-- request before it succeeds: the stream's version (from `versions`, in the
-- order of `tenants` and `streams`) plus its place among the batch's events
-- on that stream.
CREATE FUNCTION eventfeed.plan_batch(requests jsonb, tenants text[], streams text[], versions bigint[])
RETURNS TABLE (request int, seq bigint, tenant_id text, stream text, body jsonb, id uuid, expected bigint,
               version bigint)
LANGUAGE sql STABLE AS $$
    WITH ev AS (
        SELECT (r.ordinality - 1)::int AS request,
               row_number() OVER (ORDER BY r.ordinality, e.ordinality) AS seq,
               r.value ->> 'tenantId' AS tenant_id, e.value ->> 'stream' AS stream, e.value AS body
        FROM jsonb_array_elements(requests) WITH ORDINALITY r,
             jsonb_array_elements(r.value -> 'events') WITH ORDINALITY e
    )
    SELECT ev.request, ev.seq, ev.tenant_id, ev.stream, ev.body, (ev.body ->> 'id')::uuid,
           (ev.body ->> 'expectedVersion')::bigint,
           cur.version + row_number() OVER (PARTITION BY ev.tenant_id, ev.stream ORDER BY ev.seq)
    FROM ev JOIN unnest(tenants, streams, versions) AS cur (tenant_id, stream, version)
         ON cur.tenant_id = ev.tenant_id AND cur.stream = ev.stream
$$;

-- jit is off: the planner takes each jsonb_array_elements for 100 rows, so a
-- query over a batch is costed near jit_above_cost and a JIT compile (tens of
-- milliseconds) would cost far more than the batch itself.
CREATE FUNCTION eventfeed.append_batch(requests jsonb)
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
        SELECT bool_and(p.expected IS NULL OR p.expected = p.version - 1)
               AND count(p.id) = count(DISTINCT (p.tenant_id, p.id)) FILTER (WHERE p.id IS NOT NULL)
               AND NOT bool_or(p.id IS NOT NULL AND EXISTS (
                   SELECT 1 FROM eventfeed.events x WHERE x.tenant_id = p.tenant_id AND x.id = p.id))
        INTO clean
        FROM eventfeed.plan_batch(requests, tenants, streams, versions) p;

        IF clean THEN
            WITH planned AS MATERIALIZED (
                SELECT p.request, p.seq, p.tenant_id, p.stream, p.body, p.version,
                       coalesce(p.id, gen_random_uuid()) AS id
                FROM eventfeed.plan_batch(requests, tenants, streams, versions) p
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

    IF clean IS NOT TRUE THEN
        -- The slow path. It locks the same streams again, which this
        -- transaction already holds.
        RETURN QUERY SELECT * FROM eventfeed.append_batch_per_request(requests);
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(written), 0) LOOP
        request := requests_of[i];
        event := written[i];
        RETURN NEXT;
    END LOOP;
END $$;
