-- The events table becomes partitioned by time (created_at), so that
-- retention drops whole partitions instead of deleting row by row.
--
-- The existing table is not rewritten: it is renamed and attached, as it is,
-- as the first partition, holding everything before the migration. A second
-- one holds the rest of the day; the server creates the partitions after
-- it (eventfeed.ensure_partitions, in sql/api.sql) in steps of
-- EVENTFEED_PARTITION, ahead of need. A fresh database takes the same path
-- with an empty table.
--
-- A partitioned table's unique indexes must include the partition key, so
-- (tenant_id, id) and (tenant_id, stream, version) are unique per partition
-- only. Across partitions, ids stay unique because every append of a given
-- id takes an advisory lock on it before looking for it (sql/api.sql), and
-- versions because the streams row, locked by every append to the stream,
-- hands them out one by one.

-- insert_event returns the table's row type, which would stay the old
-- table's: sql/api.sql, applied after the migrations, defines it again.
DROP FUNCTION IF EXISTS eventfeed.insert_event(text, text, text, jsonb, uuid, bigint, text, text, text[], jsonb, text);
DROP FUNCTION IF EXISTS eventfeed.insert_event(text, text, text, jsonb, uuid, bigint, text, text, text[], jsonb);
DROP TRIGGER events_doorbell ON eventfeed.events;

ALTER TABLE eventfeed.events RENAME TO events_unpartitioned;
-- Positions keep coming from one sequence, now the parent's; the identity
-- (a catalog setting, not data) goes.
ALTER TABLE eventfeed.events_unpartitioned ALTER COLUMN position DROP IDENTITY;
CREATE SEQUENCE eventfeed.events_position_seq AS bigint;
SELECT setval('eventfeed.events_position_seq',
              (SELECT coalesce(max(position), 0) + 1 FROM eventfeed.events_unpartitioned), false);

CREATE TABLE eventfeed.events (
    position    bigint NOT NULL DEFAULT nextval('eventfeed.events_position_seq'),
    tx_id       bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id          uuid NOT NULL,
    tenant_id   text NOT NULL,
    stream      text NOT NULL,
    version     bigint NOT NULL,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    actor_id    text,
    actor_name  text,
    audience    text[],
    metadata    jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_type_check CHECK (
        length(type) <= 100 AND type ~ '^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)+$'),
    CONSTRAINT events_stream_check CHECK (
        length(stream) BETWEEN 1 AND 200 AND stream ~ '^[A-Za-z0-9_.:@/-]+$'),
    CONSTRAINT events_tenant_check CHECK (length(tenant_id) BETWEEN 1 AND 200),
    CONSTRAINT events_data_check CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT events_metadata_check CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    CONSTRAINT events_version_check CHECK (version >= 1)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE eventfeed.events_position_seq OWNED BY eventfeed.events.position;

-- The same indexes as the old table's, which therefore attach to these
-- without being built again.
CREATE INDEX events_part_cursor_idx ON eventfeed.events (tx_id, position);
CREATE INDEX events_part_tenant_cursor_idx ON eventfeed.events (tenant_id, tx_id, position);
CREATE INDEX events_part_type_idx ON eventfeed.events (tenant_id, type, tx_id, position);
CREATE INDEX events_part_actor_idx ON eventfeed.events (tenant_id, actor_id, tx_id, position);
CREATE INDEX events_part_time_idx ON eventfeed.events (tenant_id, created_at);

-- The partitions, for retention and for creating the next ones.
CREATE TABLE eventfeed.partitions (
    name      text PRIMARY KEY,
    from_at   timestamptz,
    until_at  timestamptz NOT NULL UNIQUE
);

-- The old table holds everything before now; the next partition holds the
-- rest of today (UTC), and the server goes on from there in its own steps.
DO $$
DECLARE
    bound timestamptz := greatest(now(),
        (SELECT max(created_at) + interval '1 microsecond' FROM eventfeed.events_unpartitioned));
    day_end timestamptz := date_trunc('day', bound, 'UTC') + interval '1 day';
    today text := 'events_' || to_char(bound AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    -- Proven once by this constraint's scan, so that ATTACH need not scan again.
    EXECUTE format('ALTER TABLE eventfeed.events_unpartitioned ADD CONSTRAINT events_unpartitioned_range '
                   'CHECK (created_at < %L)', bound);
    EXECUTE format('ALTER TABLE eventfeed.events ATTACH PARTITION eventfeed.events_unpartitioned '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', bound);
    ALTER TABLE eventfeed.events_unpartitioned DROP CONSTRAINT events_unpartitioned_range;
    INSERT INTO eventfeed.partitions (name, from_at, until_at) VALUES ('events_unpartitioned', NULL, bound);

    EXECUTE format('CREATE TABLE eventfeed.%I PARTITION OF eventfeed.events FOR VALUES FROM (%L) TO (%L)',
                   today, bound, day_end);
    EXECUTE format('ALTER TABLE eventfeed.%I ADD PRIMARY KEY (position), ADD UNIQUE (tenant_id, id), '
                   'ADD UNIQUE (tenant_id, stream, version)', today);
    INSERT INTO eventfeed.partitions (name, from_at, until_at) VALUES (today, bound, day_end);
END $$;

CREATE TRIGGER events_doorbell
    AFTER INSERT ON eventfeed.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventfeed.ring_doorbell();
