-- How many events of each type each tenant has stored, and when the last
-- was appended: GET /api/types answers from these rows, never by counting
-- the events table.
--
-- Appends do not update a counter row in place: a transaction that holds
-- such a row (an application appending with eventfeed.append_event inside a
-- transaction that stays open for minutes) would make every other append of
-- that tenant and type wait behind it. Each appended or deleted event
-- instead inserts a row of changes, which never waits on anything; the
-- server folds them into type_counts every second, in short transactions of
-- its own, and a read adds the changes not yet folded.
CREATE TABLE eventfeed.type_counts (
    tenant_id text NOT NULL,
    type      text NOT NULL,
    events    bigint NOT NULL,
    last_at   timestamptz,
    PRIMARY KEY (tenant_id, type)
);

CREATE TABLE eventfeed.type_count_changes (
    tenant_id text NOT NULL,
    type      text NOT NULL,
    events    bigint NOT NULL,
    -- The newest appended event's time; NULL for deletions, which remove
    -- the oldest events (retention) and so leave the last time as it was.
    last_at   timestamptz
);
CREATE INDEX type_count_changes_tenant_idx ON eventfeed.type_count_changes (tenant_id);

-- One change row per event appended or deleted. Row triggers, not statement
-- triggers with transition tables: a transition table keeps every row of
-- the statement, data included, and a group commit of a thousand 16 KiB
-- events would spill it to temporary files.
CREATE FUNCTION eventfeed.count_appended_type() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO eventfeed.type_count_changes (tenant_id, type, events, last_at)
    VALUES (NEW.tenant_id, NEW.type, 1, NEW.created_at);
    RETURN NULL;
END $$;

CREATE FUNCTION eventfeed.count_deleted_type() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO eventfeed.type_count_changes (tenant_id, type, events, last_at)
    VALUES (OLD.tenant_id, OLD.type, -1, NULL);
    RETURN NULL;
END $$;

-- The triggers come first: they lock the table against appends, so the
-- count below sees every event stored before them and they count every
-- event after.
CREATE TRIGGER events_count_appended
    AFTER INSERT ON eventfeed.events FOR EACH ROW EXECUTE FUNCTION eventfeed.count_appended_type();
CREATE TRIGGER events_count_deleted
    AFTER DELETE ON eventfeed.events FOR EACH ROW EXECUTE FUNCTION eventfeed.count_deleted_type();

INSERT INTO eventfeed.type_counts (tenant_id, type, events, last_at)
SELECT tenant_id, type, count(*), max(created_at) FROM eventfeed.events GROUP BY tenant_id, type;
