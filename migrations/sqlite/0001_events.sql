-- The embedded store's schema: the tables of migrations/postgres/0001_events.sql
-- in SQLite form. STRICT tables hold their declared types; JSON is text;
-- timestamps are integer unix milliseconds, UTC (the envelope's precision).

CREATE TABLE events (
    -- AUTOINCREMENT: a position is never handed out twice, not even after
    -- retention has deleted the newest rows.
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    -- SQLite has one writer, so commit order is position order and every event
    -- shares the one transaction id 1: the cursor is (1, position), and every
    -- real event sorts after the cursor 0. Computed, never stored.
    tx_id       INTEGER NOT NULL GENERATED ALWAYS AS (1) VIRTUAL,
    -- A hyphenated UUID.
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    stream      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT,
    -- NULL: every user of the tenant. Otherwise a JSON array of the user ids
    -- that may see it.
    audience    TEXT,
    metadata    TEXT,
    created_at  INTEGER NOT NULL DEFAULT (CAST(round(unixepoch('subsec') * 1000) AS INTEGER)),
    CONSTRAINT events_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream, version),
    CONSTRAINT events_id_check CHECK (length(id) = 36),
    -- ^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)+$ without regexp: only those
    -- characters, at least one ':', no empty part.
    CONSTRAINT events_type_check CHECK (
        length(type) <= 100
        AND type NOT GLOB '*[^A-Za-z0-9_.:-]*'
        AND type GLOB '*:*'
        AND type NOT GLOB ':*' AND type NOT GLOB '*:' AND type NOT GLOB '*::*'),
    CONSTRAINT events_stream_check CHECK (
        length(stream) BETWEEN 1 AND 200 AND stream NOT GLOB '*[^A-Za-z0-9_.:@/-]*'),
    CONSTRAINT events_tenant_check CHECK (length(tenant_id) BETWEEN 1 AND 200),
    CONSTRAINT events_data_check CHECK (json_valid(data) AND json_type(data) = 'object'),
    CONSTRAINT events_metadata_check CHECK (
        metadata IS NULL OR (json_valid(metadata) AND json_type(metadata) = 'object')),
    CONSTRAINT events_audience_check CHECK (
        audience IS NULL OR (json_valid(audience) AND json_type(audience) = 'array')),
    CONSTRAINT events_version_check CHECK (version >= 1),
    CONSTRAINT events_created_at_check CHECK (created_at >= 0)
) STRICT;

-- Cursor reads: the tailer reads all tenants by the primary key, clients
-- read one tenant.
CREATE INDEX events_tenant_cursor_idx ON events (tenant_id, position);
-- Audit filters, each keyset-paginated by cursor within the tenant.
CREATE INDEX events_stream_idx ON events (tenant_id, stream, position);
CREATE INDEX events_actor_idx ON events (tenant_id, actor_id, position);
-- Stream reads use events_stream_version_key.

-- One row per stream: the current version.
CREATE TABLE streams (
    tenant_id TEXT NOT NULL,
    stream    TEXT NOT NULL,
    version   INTEGER NOT NULL CHECK (version >= 1),
    PRIMARY KEY (tenant_id, stream)
) STRICT, WITHOUT ROWID;

-- Stored consumer cursors: the offline queue's acknowledgements. A cursor is
-- stored as given (tx_id, position), whichever store it came from.
CREATE TABLE consumers (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    consumer   TEXT NOT NULL,
    tx_id      INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL DEFAULT (CAST(round(unixepoch('subsec') * 1000) AS INTEGER)),
    PRIMARY KEY (tenant_id, user_id, consumer)
) STRICT, WITHOUT ROWID;

-- The cursor at and below which events have been deleted by retention. A
-- reader behind it is told to reset instead of silently skipping.
CREATE TABLE retention (
    only_row  INTEGER PRIMARY KEY DEFAULT 1 CHECK (only_row = 1),
    tx_id     INTEGER NOT NULL,
    position  INTEGER NOT NULL
) STRICT;
