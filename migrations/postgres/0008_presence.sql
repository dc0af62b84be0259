-- Who is online, shared between the nodes of a cluster. Each node owns its
-- row in presence_nodes and its rows in presence, and the others read them.
-- Unlogged: presence is rebuilt by the nodes within a second, so it needs
-- no WAL, and a crash that empties these tables loses nothing.
CREATE UNLOGGED TABLE eventfeed.presence_nodes (
    node   uuid PRIMARY KEY,
    -- The sequence number of the node's last write to presence.
    seq    bigint NOT NULL,
    -- Zero counts at or below this were deleted: a reader whose copy is
    -- older reads the node whole.
    floor  bigint NOT NULL DEFAULT 0,
    -- The heartbeat: a node silent for a few seconds is dropped by the others.
    beat   timestamptz NOT NULL DEFAULT now()
);

CREATE UNLOGGED TABLE eventfeed.presence (
    node         uuid NOT NULL REFERENCES eventfeed.presence_nodes ON DELETE CASCADE,
    tenant_id    text NOT NULL,
    user_id      text NOT NULL,
    username     text,
    -- The user's sockets on this node; 0 once they are gone, kept for a
    -- while so readers see the user leave.
    connections  integer NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (node, tenant_id, user_id)
);

CREATE INDEX presence_node_seq ON eventfeed.presence (node, seq);
