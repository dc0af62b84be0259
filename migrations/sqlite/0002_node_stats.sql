-- The stats samples of GET /api/stats, as in migrations/postgres/0007_node_stats.sql:
-- the node's id (a hyphenated UUID), the second (unix milliseconds, UTC) and the sample (JSON).
CREATE TABLE node_stats (
    node    TEXT NOT NULL,
    at      INTEGER NOT NULL,
    sample  TEXT NOT NULL,
    PRIMARY KEY (node, at)
) STRICT;
CREATE INDEX node_stats_at ON node_stats (at);
