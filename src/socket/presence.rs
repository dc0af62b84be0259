//! Presence across every process: who is connected, from the rooms each
//! socket joins, read through the adapter (the PostgreSQL adapter asks the
//! other nodes too).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;

use super::session::Session;

const PRESENCE_PREFIX: &str = "presence:";

pub fn tenant_room(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

/// `user:<tenant>:<user>`, with `%` and `:` escaped in both ids, so that
/// tenant `t9:a` user `b` and tenant `t9` user `a:b` never share a room.
pub fn user_room(tenant: &str, user: &str) -> String {
    let escape = |id: &str| id.replace('%', "%25").replace(':', "%3A");
    format!("user:{}:{}", escape(tenant), escape(user))
}

/// The rooms a socket joins at connect. The presence room is unique to the
/// socket and names its user, so one rooms query lists everyone online.
pub fn rooms(session: &Session, sid: &str) -> Vec<String> {
    let presence = json!([session.tenant_id, sid, session.user_id, session.username]);
    vec![
        tenant_room(&session.tenant_id),
        user_room(&session.tenant_id, &session.user_id),
        format!("{PRESENCE_PREFIX}{presence}"),
    ]
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Online {
    pub user_id: String,
    pub username: Option<String>,
    pub connections: usize,
}

/// Everyone connected in the socket's tenant and namespace, on every node.
pub async fn list<A: Adapter>(s: &SocketRef<A>, session: &Session) -> Vec<Online> {
    match s.within(tenant_room(&session.tenant_id)).rooms().await {
        Ok(rooms) => tally(rooms.iter().map(|r| r.as_ref()), &session.tenant_id),
        Err(e) => {
            tracing::warn!(error = %e, "presence query failed");
            Vec::new()
        }
    }
}

/// The users of `tenant` named by presence rooms (each room is one socket),
/// with their socket counts; other rooms are skipped.
pub fn tally<'a>(rooms: impl IntoIterator<Item = &'a str>, tenant: &str) -> Vec<Online> {
    let mut users: BTreeMap<String, Online> = BTreeMap::new();
    for room in rooms {
        let Some(entry) = room.strip_prefix(PRESENCE_PREFIX) else { continue };
        let Ok((room_tenant, _sid, user_id, username)) =
            serde_json::from_str::<(String, String, String, Option<String>)>(entry)
        else {
            continue;
        };
        if room_tenant == tenant {
            let online = users.entry(user_id.clone()).or_insert(Online { user_id, username, connections: 0 });
            online.connections += 1;
        }
    }
    users.into_values().collect()
}

/// Other sockets of this socket's user, on every node.
async fn others<A: Adapter>(s: &SocketRef<A>, session: &Session) -> Option<usize> {
    match s.within(user_room(&session.tenant_id, &session.user_id)).fetch_sockets().await {
        Ok(sockets) => Some(sockets.iter().filter(|r| r.data().id != s.id).count()),
        Err(e) => {
            tracing::warn!(error = %e, "presence count failed");
            None
        }
    }
}

/// `user:online` when this is the user's first socket, `user:offline` when
/// it was the last, to the tenant room on every node.
pub async fn announce<A: Adapter>(s: &SocketRef<A>, session: &Session, online: bool) {
    if others(s, session).await != Some(0) {
        return;
    }
    let event = if online { "user:online" } else { "user:offline" };
    if let Err(e) = s.within(tenant_room(&session.tenant_id)).emit(event, &payload(session)).await {
        tracing::debug!(error = %e, event, "presence broadcast incomplete");
    }
}

fn payload(session: &Session) -> serde_json::Value {
    json!({
        "userId": session.user_id,
        "username": session.username,
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// At shutdown, while the adapter still reaches the other nodes and before
/// any socket closes: `user:offline` for every user whose sockets are all on
/// this node. (Their disconnect handlers, run as the sockets close, would
/// each ask the cluster about sockets that are all going, and race the
/// adapter's own shutdown.)
pub async fn depart<A: Adapter>(io: &SocketIo<A>) {
    for ns in io.nsps() {
        let mut users: HashMap<(String, String), (Arc<Session>, HashSet<Sid>)> = HashMap::new();
        for s in ns.clone().local().sockets() {
            if let Some(session) = s.extensions.get::<Arc<Session>>() {
                let key = (session.tenant_id.clone(), session.user_id.clone());
                users.entry(key).or_insert_with(|| (session, HashSet::new())).1.insert(s.id);
            }
        }
        let leaving = users.into_values().map(|(session, here)| {
            let ns = ns.clone();
            async move {
                let room = user_room(&session.tenant_id, &session.user_id);
                match ns.clone().within(room).fetch_sockets().await {
                    Ok(all) if all.iter().all(|r| here.contains(&r.data().id)) => {
                        let tenant = ns.within(tenant_room(&session.tenant_id));
                        if let Err(e) = tenant.emit("user:offline", &payload(&session)).await {
                            tracing::debug!(error = %e, "presence broadcast incomplete");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "presence count failed at shutdown"),
                }
            }
        });
        futures::future::join_all(leaving).await;
    }
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
}
