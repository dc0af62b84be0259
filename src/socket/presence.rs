//! The rooms each socket joins, and the announcer: once a second, each
//! tenant's net presence change goes to this node's own sockets of that
//! tenant (every node announces to its own, from the view they share).

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio_util::sync::CancellationToken;

use crate::presence::{Diff, Presence};

/// How often a socket may hear of presence changes.
const EVERY: Duration = Duration::from_secs(1);

pub fn tenant_room(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

/// `user:<tenant>:<user>`, with `%` and `:` escaped in both ids, so that
/// tenant `t9:a` user `b` and tenant `t9` user `a:b` never share a room.
pub fn user_room(tenant: &str, user: &str) -> String {
    let escape = |id: &str| id.replace('%', "%25").replace(':', "%3A");
    format!("user:{}:{}", escape(tenant), escape(user))
}

/// Presence packets a socket is sent at once, and the pause before the
/// next ones. A socket's send queue and its WebSocket write buffer keep
/// their largest size for as long as the socket is open (tokio's channel
/// keeps its blocks of 32 packets, tungstenite its buffer's capacity): a
/// tenant's 100 users joining within a second, sent at once, left about
/// 20 KB in each of its sockets. In rounds, the sockets' writers drain in
/// between.
const ROUND: usize = 16;
const PAUSE: Duration = Duration::from_millis(10);

/// Announces presence changes to this node's sockets until `shutdown`.
pub async fn announce<A: Adapter>(io: SocketIo<A>, presence: Presence, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while shutdown.run_until_cancelled(tick.tick()).await.is_some() {
        let list_max = presence.settings().list_max;
        let tenants: Vec<_> =
            presence.diffs().into_iter().map(|diff| (tenant_room(&diff.tenant), messages(&diff, list_max))).collect();
        for (i, round) in rounds(&tenants).enumerate() {
            if i > 0 && shutdown.run_until_cancelled(tokio::time::sleep(PAUSE)).await.is_none() {
                return;
            }
            for (room, event, payload) in round {
                for ns in io.nsps() {
                    if let Err(e) = ns.local().to(room.clone()).emit(event, payload).await {
                        tracing::debug!(error = %e, event, "presence announcement incomplete");
                    }
                }
            }
        }
    }
}

/// The tenants' messages in rounds of at most [`ROUND`] a tenant, each
/// tenant's in order.
fn rounds<'a>(
    tenants: &'a [(String, Vec<(&'static str, Value)>)],
) -> impl Iterator<Item = Vec<(&'a String, &'static str, &'a Value)>> {
    let longest = tenants.iter().map(|(_, messages)| messages.len()).max().unwrap_or(0);
    (0..longest.div_ceil(ROUND)).map(move |r| {
        tenants
            .iter()
            .flat_map(|(room, messages)| {
                messages.iter().skip(r * ROUND).take(ROUND).map(move |(event, payload)| (room, *event, payload))
            })
            .collect()
    })
}

/// What one tenant's sockets are told of a diff: `presence:diff`, with the
/// names and a `user:online` / `user:offline` each only while the tenant
/// is small enough to list.
fn messages(diff: &Diff, list_max: usize) -> Vec<(&'static str, Value)> {
    if diff.online > list_max {
        return vec![("presence:diff", json!({ "online": diff.online }))];
    }
    let user = |(id, name): &(String, Option<String>)| json!({ "userId": id, "username": name });
    let mut out = Vec::with_capacity(1 + diff.joins.len() + diff.leaves.len());
    let mut body = json!({ "online": diff.online });
    if !diff.joins.is_empty() {
        body["joins"] = diff.joins.iter().map(user).collect();
    }
    if !diff.leaves.is_empty() {
        body["leaves"] = diff.leaves.iter().map(|(id, _)| json!(id)).collect();
    }
    out.push(("presence:diff", body));
    let timestamp = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let stamped =
        |(id, name): &(String, Option<String>)| json!({ "userId": id, "username": name, "timestamp": timestamp });
    out.extend(diff.joins.iter().map(|u| ("user:online", stamped(u))));
    out.extend(diff.leaves.iter().map(|u| ("user:offline", stamped(u))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_rooms_never_collide() {
        assert_eq!(user_room("acme", "u-17"), "user:acme:u-17");
        assert_ne!(user_room("t9:a", "b"), user_room("t9", "a:b"));
        assert_ne!(user_room("t%3A", "b"), user_room("t:", "b"));
    }

    fn diff(online: usize) -> Diff {
        let joins = vec![("u1".to_owned(), Some("Ann".to_owned()))];
        Diff { tenant: "acme".into(), online, joins, leaves: vec![("u2".to_owned(), None)] }
    }

    #[test]
    fn announcements_go_out_in_rounds_of_a_few_per_tenant_in_order() {
        let numbered = |n: usize| (0..n).map(|i| ("user:online", json!(i))).collect::<Vec<_>>();
        let tenants = vec![("tenant:a".to_owned(), numbered(40)), ("tenant:b".to_owned(), numbered(3))];
        let rounds: Vec<_> = rounds(&tenants).collect();
        assert_eq!(rounds.len(), 3);
        let sizes = |room: &str| rounds.iter().map(|r| r.iter().filter(|m| m.0 == room).count()).collect::<Vec<_>>();
        assert_eq!(sizes("tenant:a"), [ROUND, ROUND, 40 - 2 * ROUND]);
        assert_eq!(sizes("tenant:b"), [3, 0, 0]);
        let a: Vec<_> = rounds.concat().into_iter().filter(|m| m.0 == "tenant:a").map(|m| m.2.clone()).collect();
        assert_eq!(a, (0..40).map(|i| json!(i)).collect::<Vec<_>>());
    }

    #[test]
    fn a_small_tenant_hears_names_and_a_large_one_the_count() {
        let small = messages(&diff(2), 2);
        let names: Vec<&str> = small.iter().map(|(e, _)| *e).collect();
        assert_eq!(names, ["presence:diff", "user:online", "user:offline"]);
        assert_eq!(
            small[0].1,
            json!({ "online": 2, "joins": [{ "userId": "u1", "username": "Ann" }], "leaves": ["u2"] })
        );
        assert_eq!(small[2].1["userId"], "u2");
        assert_eq!(messages(&diff(3), 2), vec![("presence:diff", json!({ "online": 3 }))]);
    }
}
