-- From here on the functions are defined in sql/api.sql, which the server
-- applies after the migrations. Migrations 0002-0004 installed earlier
-- versions; this drops those whose signature sql/api.sql changes (CREATE OR
-- REPLACE cannot change a signature), and the helpers it no longer has.
-- The group commit now takes typed arrays instead of one jsonb document.
DROP FUNCTION IF EXISTS eventfeed.append_batch(jsonb);
DROP FUNCTION IF EXISTS eventfeed.append_batch_per_request(jsonb);
DROP FUNCTION IF EXISTS eventfeed.plan_batch(jsonb, text[], text[], bigint[]);
-- insert_event gained p_reader, the requester an idempotent retry answers.
DROP FUNCTION IF EXISTS eventfeed.insert_event(text, text, text, jsonb, uuid, bigint, text, text, text[], jsonb);
