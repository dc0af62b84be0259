-- How many events of each type each tenant has stored, and when the last
-- was appended (unix milliseconds): GET /api/types answers from these rows,
-- never by counting the events table. SQLite has one writer, so the
-- triggers update the row in place; nothing else can be waiting on it.
CREATE TABLE type_counts (
    tenant_id TEXT NOT NULL,
    type      TEXT NOT NULL,
    events    INTEGER NOT NULL,
    last_at   INTEGER,
    PRIMARY KEY (tenant_id, type)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER events_count_appended AFTER INSERT ON events
BEGIN
    INSERT INTO type_counts (tenant_id, type, events, last_at) VALUES (NEW.tenant_id, NEW.type, 1, NEW.created_at)
    ON CONFLICT (tenant_id, type) DO UPDATE SET events = events + 1, last_at = max(last_at, excluded.last_at);
END;

-- Retention deletes the oldest events: the last time stays as it was.
CREATE TRIGGER events_count_deleted AFTER DELETE ON events
BEGIN
    UPDATE type_counts SET events = events - 1 WHERE tenant_id = OLD.tenant_id AND type = OLD.type;
END;

INSERT INTO type_counts (tenant_id, type, events, last_at)
SELECT tenant_id, type, count(*), max(created_at) FROM events GROUP BY tenant_id, type;
