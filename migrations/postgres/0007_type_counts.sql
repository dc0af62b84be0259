-- How many events of each type each tenant has stored, and when the last
-- was appended: GET /api/types answers from these rows, never by counting
-- the events table.
--
-- Appends do not update a counter row in place: a transaction that holds
-- such a row (an application appending with eventfeed.append_event inside a
-- transaction that stays open for minutes) would make every other append of
-- that tenant and type wait behind it. Each appending or deleting statement
-- instead inserts rows of changes, which never wait on anything; the server
-- folds them into type_counts every few seconds, in short transactions of
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

-- One change row per tenant and type per statement: a group commit of a
-- thousand events adds a handful of rows.
CREATE FUNCTION eventfeed.count_appended_types() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO eventfeed.type_count_changes (tenant_id, type, events, last_at)
    SELECT tenant_id, type, count(*), max(created_at) FROM appended GROUP BY tenant_id, type;
    RETURN NULL;
END $$;

CREATE FUNCTION eventfeed.count_deleted_types() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO eventfeed.type_count_changes (tenant_id, type, events, last_at)
    SELECT tenant_id, type, -count(*), NULL FROM deleted GROUP BY tenant_id, type;
    RETURN NULL;
END $$;

-- The triggers come first: they lock the table against appends, so the
-- count below sees every event stored before them and they count every
-- event after.
CREATE TRIGGER events_count_appended
    AFTER INSERT ON eventfeed.events REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION eventfeed.count_appended_types();
CREATE TRIGGER events_count_deleted
    AFTER DELETE ON eventfeed.events REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION eventfeed.count_deleted_types();

INSERT INTO eventfeed.type_counts (tenant_id, type, events, last_at)
SELECT tenant_id, type, count(*), max(created_at) FROM eventfeed.events GROUP BY tenant_id, type;
