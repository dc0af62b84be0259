-- The group commit's result gained a column, retried (an idempotent retry
-- answered with the stored event), so that the server counts stored events
-- apart from retries. CREATE OR REPLACE cannot change a result: drop the
-- old signatures, and sql/api.sql, applied after the migrations, defines
-- both functions again.
DROP FUNCTION IF EXISTS eventfeed.append_batch(int[], text[], text[], text[], jsonb[], uuid[], bigint[], text[], text[], jsonb[], jsonb[]);
DROP FUNCTION IF EXISTS eventfeed.append_requests(int[], text[], text[], text[], jsonb[], uuid[], bigint[], text[], text[], jsonb[], jsonb[]);
