//! Connect: authenticate the handshake, then join rooms, start delivery,
//! watch the token's expiry, and count the socket in presence.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Query;
use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};

use super::handshake::Handshake;
use super::session::Session;
use super::{delivery, handlers, presence};
use crate::auth::Carrier;
use crate::cursor::Cursor;
use crate::error::Error;
use crate::state::AppState;

/// Where delivery starts: the handshake's `after`, and the live head as the
/// handshake was accepted. With `after`, or with a consumer (kept in the
/// session), delivery replays; with neither it is live from `arrived`.
/// Resolved by delivery, which waits for the store: a handshake never does.
/// Delivery may start late (a busy store); `arrived` keeps it from starting
/// past an event appended after the client was told it is connected.
#[derive(Clone, Copy)]
pub(super) struct Resume {
    pub after: Option<Cursor>,
    pub arrived: Cursor,
}

/// Connect middleware: refuses with `authentication failed: …`, `invalid cursor`
/// or the reason a consumer name or a type pattern is invalid.
pub async fn authenticate<A: Adapter>(
    s: SocketRef<A>,
    TryData(auth): TryData<Handshake>,
    State(state): State<AppState>,
) -> Result<(), String> {
    admit(&s, auth.unwrap_or_default(), &state).await.map_err(|e| e.body().message)
}

async fn admit<A: Adapter>(s: &SocketRef<A>, auth: Handshake, state: &AppState) -> Result<(), Error> {
    let parts = s.req_parts();
    let query_token =
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri).ok().and_then(|Query(mut q)| q.remove("token"));
    let carrier = Carrier::Handshake { auth_token: auth.token.as_deref(), query_token: query_token.as_deref() };
    let who = state.verifier.verify(crate::auth::token(&parts.headers, carrier)?)?;

    let after = auth.after.transpose()?;
    let consumer = auth.consumer.transpose()?;
    // The handshake's types replace the namespace's default, as `feed:subscribe` does.
    let filter = auth.types.transpose()?.unwrap_or_else(|| state.namespace_filter(s.ns()));
    s.extensions.insert(Arc::new(Session::new(who, consumer, filter)));
    s.extensions.insert(Resume { after, arrived: state.feed.head() });
    // Before the server's CONNECT packet goes out: a client may emit in its
    // `connect` handler, and an event that finds no handler is lost.
    handlers::register(s);
    Ok(())
}

pub async fn on_connect<A: Adapter>(s: SocketRef<A>, State(state): State<AppState>) {
    let (Some(session), Some(resume)) = (s.extensions.get::<Arc<Session>>(), s.extensions.get::<Resume>()) else {
        return;
    };
    s.on_disconnect(on_disconnect::<A>);
    s.join([presence::tenant_room(&session.tenant_id), presence::user_room(&session.tenant_id, &session.user_id)]);
    metrics::gauge!("eventfeed_connected_sockets").increment(1.0);
    state.presence.join(&session.tenant_id, &session.user_id, session.username.as_deref());

    tokio::spawn(delivery::run(s.clone(), session.clone(), state, resume));
    tokio::spawn(expire(s.clone(), session.clone()));
}

async fn on_disconnect<A: Adapter>(s: SocketRef<A>, State(state): State<AppState>) {
    metrics::gauge!("eventfeed_connected_sockets").decrement(1.0);
    let Some(session) = s.extensions.get::<Arc<Session>>() else { return };
    session.closed.cancel();
    state.presence.leave(&session.tenant_id, &session.user_id);
}

/// Sends `auth:expired` and disconnects at the token's `exp`, unless an
/// `auth:refresh` moved it.
async fn expire<A: Adapter>(s: SocketRef<A>, session: Arc<Session>) {
    loop {
        let principal = session.principal();
        let left = principal.expires_in();
        if !left.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(left) => {}
                _ = session.closed.cancelled() => return,
            }
            continue;
        }
        let _ = s.emit("auth:expired", &json!({ "exp": principal.exp }));
        let _ = s.disconnect();
        return;
    }
}
