//! `GET /api/stats`: the last 15 minutes of per-second samples of every
//! node of the cluster, for admins (the console's Health charts).
//!
//! Appends, sockets and lag are the cluster's own figures, like `/metrics`;
//! deliveries by type are the caller's tenant's only, so no tenant learns
//! another's event types.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AuthUser, doc};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::stats::{NodeSamples, Sample};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stats))
}

/// The answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Stats {
    /// The id of the node that answered (random, made when its process started).
    node: Uuid,
    /// Seconds between samples: 1.
    interval_seconds: u32,
    /// Every node that sampled in the last 15 minutes, the answering one first.
    nodes: Vec<Node>,
}

#[derive(Serialize, ToSchema)]
struct Node {
    node: Uuid,
    /// Oldest first, at most 900.
    samples: Vec<Second>,
}

/// One second of one node.
#[derive(Serialize, ToSchema)]
struct Second {
    /// The end of the second, UTC.
    at: DateTime<Utc>,
    /// Events the node committed.
    appends: u64,
    /// Events sent live to the node's sockets, by type: the caller's tenant's only.
    deliveries: BTreeMap<String, u64>,
    /// Sockets connected to the node.
    sockets: u64,
    /// Seconds from the newest event's append to the node's read of it (0 when it read none).
    lag: f64,
}

impl Second {
    fn of(sample: Sample, tenant: &str) -> Second {
        let Sample { at, appends, mut deliveries, sockets, lag } = sample;
        Second { at, appends, deliveries: deliveries.remove(tenant).unwrap_or_default(), sockets, lag }
    }
}

/// Per-second samples of every node: appends, deliveries by type, sockets and delivery lag.
#[utoipa::path(get, path = "/api/stats", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = Stats, description = "The last 15 minutes, one sample a second per node."),
              doc::Unauthorized, doc::Forbidden, doc::Unavailable, doc::Internal))]
#[tracing::instrument(skip_all, fields(tenant = %who.tenant_id), err(level = "debug"))]
async fn stats(State(state): State<AppState>, AuthUser(who): AuthUser) -> Result<Json<Stats>> {
    if !who.roles.contains("admin") {
        return Err(Error::Forbidden("the cluster's stats need the admin role".into()));
    }
    let nodes = state.stats.cluster().await?;
    let nodes = nodes
        .into_iter()
        .map(|NodeSamples { node, samples }| Node {
            node,
            samples: samples.into_iter().map(|s| Second::of(s, &who.tenant_id)).collect(),
        })
        .collect();
    Ok(Json(Stats { node: state.stats.node(), interval_seconds: 1, nodes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_the_callers_tenants_only() {
        let deliveries = BTreeMap::from([
            ("acme".to_owned(), BTreeMap::from([("invoice:paid".to_owned(), 3)])),
            ("globex".to_owned(), BTreeMap::from([("secret:plan".to_owned(), 9)])),
        ]);
        let sample = Sample { at: Utc::now(), appends: 12, deliveries, sockets: 4, lag: 0.01 };
        let second = Second::of(sample.clone(), "acme");
        assert_eq!(second.deliveries, BTreeMap::from([("invoice:paid".to_owned(), 3)]));
        assert_eq!((second.appends, second.sockets), (12, 4));
        assert!(Second::of(sample, "initech").deliveries.is_empty());
    }
}
