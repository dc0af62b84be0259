-- The event table is the single source of truth. Everything else (socket feed,
-- polling, SSE, audit) reads it through the cursor (tx_id, position).
CREATE SCHEMA IF NOT EXISTS eventfeed;

CREATE TABLE eventfeed.events (
    -- Handed out at insert; not enough on its own to order events, because
    -- transactions commit in another order than they insert (docs/architecture.md).
    position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction's xid8, stored as bigint (xid8 is a 64-bit
    -- epoch-extended id, so it fits). Rows are read only below the snapshot
    -- horizon, where every writer has finished.
    tx_id       bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id          uuid NOT NULL,
    tenant_id   text NOT NULL,
    stream      text NOT NULL,
    version     bigint NOT NULL,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    actor_id    text,
    actor_name  text,
    -- NULL: every user of the tenant. Otherwise the user ids that may see it.
    audience    text[],
    metadata    jsonb,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream, version),
    CONSTRAINT events_type_check CHECK (
        length(type) <= 100 AND type ~ '^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)+$'),
    CONSTRAINT events_stream_check CHECK (
        length(stream) BETWEEN 1 AND 200 AND stream ~ '^[A-Za-z0-9_.:@/-]+$'),
    CONSTRAINT events_tenant_check CHECK (length(tenant_id) BETWEEN 1 AND 200),
    CONSTRAINT events_data_check CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT events_metadata_check CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
    CONSTRAINT events_version_check CHECK (version >= 1)
);

-- Cursor reads: the tailer reads all tenants, clients read one tenant.
CREATE INDEX events_cursor_idx ON eventfeed.events (tx_id, position);
CREATE INDEX events_tenant_cursor_idx ON eventfeed.events (tenant_id, tx_id, position);
-- Audit filters (each keyset-paginated by cursor within the tenant).
CREATE INDEX events_type_idx ON eventfeed.events (tenant_id, type, tx_id, position);
CREATE INDEX events_actor_idx ON eventfeed.events (tenant_id, actor_id, tx_id, position);
CREATE INDEX events_time_idx ON eventfeed.events (tenant_id, created_at);
-- Stream reads use events_stream_version_key.

-- One row per stream: the current version, locked by appends that check it.
CREATE TABLE eventfeed.streams (
    tenant_id text NOT NULL,
    stream    text NOT NULL,
    version   bigint NOT NULL,
    PRIMARY KEY (tenant_id, stream)
);

-- Stored consumer cursors: the offline queue's acknowledgements.
CREATE TABLE eventfeed.consumers (
    tenant_id  text NOT NULL,
    user_id    text NOT NULL,
    consumer   text NOT NULL,
    tx_id      bigint NOT NULL,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, consumer)
);

-- The cursor below which events have been deleted by retention. A reader
-- behind it is told to reset instead of silently skipping.
CREATE TABLE eventfeed.retention (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    tx_id     bigint NOT NULL,
    position  bigint NOT NULL
);

-- The doorbell: one notification per appending statement (and PostgreSQL folds
-- identical notifications of one transaction into one). It carries no data;
-- listeners read the table.
CREATE FUNCTION eventfeed.ring_doorbell() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eventfeed', '');
    RETURN NULL;
END $$;

CREATE TRIGGER events_doorbell
    AFTER INSERT ON eventfeed.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventfeed.ring_doorbell();
