-- The event size limits (docs/protocol.md) for the SQL API as well (installed
-- by migration 0004, a link to this file; replaces append_event of
-- append_event.sql). HTTP and sockets check them in the server.
--
-- data may take at most eventfeed.max_event_bytes bytes (default 262144,
-- 256 KiB; set it like any setting, e.g. ALTER DATABASE app SET
-- eventfeed.max_event_bytes = '1048576'), metadata at most 16 KiB, both
-- measured as their text form. A larger event raises SQLSTATE EF413.
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
