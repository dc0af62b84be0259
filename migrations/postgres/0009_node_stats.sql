-- Each node's per-second samples for GET /api/stats (appends, deliveries by
-- type, sockets, delivery lag), written every few seconds by the node and
-- read by every node, so any node answers for the cluster. The nodes delete
-- rows older than 15 minutes. UNLOGGED: the samples are worth no WAL, and a
-- crash that empties the table loses only charts.
CREATE UNLOGGED TABLE eventfeed.node_stats (
    node    uuid NOT NULL,
    at      timestamptz NOT NULL,
    sample  jsonb NOT NULL,
    PRIMARY KEY (node, at)
);
CREATE INDEX node_stats_at ON eventfeed.node_stats (at);
