-- The SQL API: appends that any backend can make inside its own transaction,
-- so the domain write and its event commit together or not at all.
-- Installed by migration 0002 (a link to this file). A change ships as a new
-- file and a new migration, never as an edit here.

-- Appends one event and returns the stored row. Shared by the public
-- append_event and by append_batch (the server's group commit).
-- An id that already exists in the tenant returns the stored row unchanged
-- (idempotent retry). A stale expected_version raises SQLSTATE EF409 with the
-- stream's current version as DETAIL.
CREATE FUNCTION eventfeed.insert_event(
    p_tenant_id text, p_stream text, p_type text, p_data jsonb, p_id uuid,
    p_expected_version bigint, p_actor_id text, p_actor_name text,
    p_audience text[], p_metadata jsonb)
RETURNS eventfeed.events
LANGUAGE plpgsql AS $$
DECLARE
    stored eventfeed.events;
    next_version bigint;
BEGIN
    IF p_id IS NOT NULL THEN
        SELECT * INTO stored FROM eventfeed.events e
        WHERE e.tenant_id = p_tenant_id AND e.id = p_id;
        IF FOUND THEN
            RETURN stored;
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
CREATE FUNCTION eventfeed.append_event(
    tenant_id text, stream text, type text, data jsonb,
    id uuid DEFAULT NULL, expected_version bigint DEFAULT NULL,
    actor_id text DEFAULT NULL, actor_name text DEFAULT NULL,
    audience jsonb DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS TABLE (cursor text, version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    users text[];
    stored eventfeed.events;
BEGIN
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
        append_event.actor_id, append_event.actor_name, users, append_event.metadata);
    cursor := stored.tx_id::text || '-' || stored.position::text;
    version := stored.version;
    RETURN NEXT;
END $$;

-- The server's group commit: many independent append requests in one
-- transaction (one WAL flush, one NOTIFY), each request all-or-nothing on its
-- own. Input: [{"tenantId", "events": [{"id", "stream", "type", "data",
-- "expectedVersion", "actorId", "actorName", "audience": [..]|null, "metadata"}]}].
-- Output, in input order: a row per stored event of each request that
-- succeeded, or one row with an error code and message for a request that did
-- not: conflict (with current_version), invalid, or retry (a concurrent append
-- of the same id: run the request again on its own).
CREATE FUNCTION eventfeed.append_batch(requests jsonb)
RETURNS TABLE (request int, code text, message text, current_version bigint, event eventfeed.events)
LANGUAGE plpgsql AS $$
DECLARE
    req jsonb;
    ev jsonb;
    stored eventfeed.events[];
    touched record;
BEGIN
    -- Lock every stream the batch touches, one primary-key lookup each, in
    -- one order, so that concurrent batches cannot deadlock on each other's
    -- streams. (A join against the whole batch is planned as a scan of the
    -- streams table, which grows with every new stream.)
    FOR touched IN
        SELECT DISTINCT r ->> 'tenantId' AS t, e ->> 'stream' AS s
        FROM jsonb_array_elements(requests) r, jsonb_array_elements(r -> 'events') e
        ORDER BY 1, 2
    LOOP
        PERFORM 1 FROM eventfeed.streams st
        WHERE st.tenant_id = touched.t AND st.stream = touched.s
        FOR UPDATE;
    END LOOP;

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
