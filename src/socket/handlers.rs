//! Client → server events (CONTRACT.md sections 3 and 7).

use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, Extension, SocketRef, State, TryData};

use super::presence::{self, tenant_room};
use super::session::{Rate, Session};
use crate::AppState;
use crate::cursor::Cursor;
use crate::error::Error;
use crate::event::TypeFilter;
use crate::store::ConsumerKey;

type Ext = Extension<Arc<Session>>;
type Payload = TryData<Value>;

pub(super) fn register<A: Adapter>(s: &SocketRef<A>) {
    s.on("feed:ack", feed_ack::<A>);
    s.on("feed:subscribe", feed_subscribe::<A>);
    s.on("event:append", event_append::<A>);
    s.on("presence:list", presence_list::<A>);
    s.on("request:current-state", current_state::<A>);
    s.on("auth:refresh", auth_refresh::<A>);
    s.on("user:typing", user_typing::<A>);
    s.on("join-tenant", join_tenant::<A>);
    s.on_fallback(unknown::<A>);
}

/// Sends an acknowledgement if the client asked for one.
fn reply<A: Adapter>(ack: AckSender<A>, result: Result<Value, Error>) {
    let body = match result {
        Ok(value) => value,
        Err(e) => json!({ "ok": false, "error": e.body() }),
    };
    let _ = ack.send(&body);
}

/// The rate limiter's verdict; a flooding socket is cut off.
fn admitted<A: Adapter>(s: &SocketRef<A>, session: &Session) -> Result<(), Error> {
    match session.rate() {
        Rate::Allow => Ok(()),
        Rate::Refuse => Err(Error::RateLimited("too many events; slow down".into())),
        Rate::Disconnect => {
            tracing::warn!(tenant = %session.tenant_id, user = %session.user_id, "disconnecting a flooding socket");
            let _ = s.clone().disconnect();
            Err(Error::RateLimited("too many events; disconnected".into()))
        }
    }
}

/// Parses an event's payload into `T`, with `invalid` when it has the wrong shape.
fn payload<T: DeserializeOwned>(data: Payload) -> Result<T, Error> {
    let value = data.0.map_err(|_| Error::Invalid("the payload is not JSON".into()))?;
    serde_json::from_value(value).map_err(|e| Error::Invalid(format!("payload: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckPayload {
    cursor: String,
}

async fn feed_ack<A: Adapter>(
    s: SocketRef<A>,
    Extension(session): Ext,
    State(state): State<AppState>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        admitted(&s, &session)?;
        let p: AckPayload = payload(data)?;
        let cursor: Cursor = p.cursor.parse()?;
        let consumer = session
            .consumer
            .as_deref()
            .ok_or_else(|| Error::Invalid("connect with auth.consumer to store a cursor".into()))?;
        let key = ConsumerKey { tenant_id: &session.tenant_id, user_id: &session.user_id, consumer };
        state.store.save_cursor(key, cursor).await?;
        Ok(json!({ "ok": true }))
    };
    reply(ack, result.await);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribePayload {
    types: Vec<String>,
}

async fn feed_subscribe<A: Adapter>(s: SocketRef<A>, Extension(session): Ext, data: Payload, ack: AckSender<A>) {
    let result = (|| {
        admitted(&s, &session)?;
        let p: SubscribePayload = payload(data)?;
        session.set_filter(TypeFilter::parse(p.types.iter().map(String::as_str))?);
        Ok(json!({ "ok": true }))
    })();
    reply(ack, result);
}

async fn event_append<A: Adapter>(
    s: SocketRef<A>,
    Extension(session): Ext,
    State(state): State<AppState>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        admitted(&s, &session)?;
        let who = session.principal();
        who.require_publisher()?;
        let value = data.0.map_err(|_| Error::Invalid("the payload is not JSON".into()))?;
        if !value.is_object() || value.get("events").is_some() {
            return Err(Error::Invalid("event:append takes one event object".into()));
        }
        let request = crate::append::parse_request(value, &who, state.config.max_event_bytes, None)?;
        let mut events = state.appender.append(request).await?;
        Ok(json!({ "ok": true, "event": events.pop() }))
    };
    reply(ack, result.await);
}

async fn presence_list<A: Adapter>(s: SocketRef<A>, Extension(session): Ext, ack: AckSender<A>) {
    let result = async {
        admitted(&s, &session)?;
        Ok(json!({ "users": presence::list(&s, &session).await }))
    };
    reply(ack, result.await);
}

/// With an acknowledgement: `{ cursor, online }`. Without one (clients
/// written for other servers): the same, emitted as `reconnected`.
async fn current_state<A: Adapter>(
    s: SocketRef<A>,
    Extension(session): Ext,
    State(state): State<AppState>,
    ack: AckSender<A>,
    wants: WantsAck,
) {
    let result = async {
        admitted(&s, &session)?;
        let online = presence::list(&s, &session).await;
        let cursor = crate::feed::tenant_head(&state.store, &session.tenant_id).await?;
        Ok(json!({ "cursor": cursor, "online": online }))
    };
    match (result.await, wants.0) {
        (result, true) => reply(ack, result),
        (Ok(state), false) => {
            let _ = s.emit("reconnected", &state);
        }
        (Err(_), false) => {}
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshPayload {
    token: String,
}

async fn auth_refresh<A: Adapter>(
    s: SocketRef<A>,
    Extension(session): Ext,
    State(state): State<AppState>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = (|| {
        admitted(&s, &session)?;
        let p: RefreshPayload = payload(data)?;
        let who = state.verifier.verify(&p.token)?;
        if who.user_id != session.user_id || who.tenant_id != session.tenant_id {
            return Err(Error::Forbidden("the new token is for another user or tenant".into()));
        }
        let exp = who.exp;
        session.set_principal(who);
        Ok(json!({ "ok": true, "exp": exp }))
    })();
    reply(ack, result);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypingPayload {
    resource_id: Value,
    resource_type: Value,
}

/// Relayed to the rest of the tenant on every node; never stored.
async fn user_typing<A: Adapter>(s: SocketRef<A>, Extension(session): Ext, data: Payload, ack: AckSender<A>) {
    let result = async {
        admitted(&s, &session)?;
        let p: TypingPayload = payload(data)?;
        let relay = json!({
            "userId": session.user_id,
            "username": session.username,
            "resourceId": p.resource_id,
            "resourceType": p.resource_type,
        });
        s.to(tenant_room(&session.tenant_id))
            .emit("user:typing", &relay)
            .await
            .map_err(|e| Error::internal(anyhow::anyhow!("typing relay: {e}")))?;
        Ok(json!({ "ok": true }))
    };
    let result = result.await;
    if result.is_err() {
        reply(ack, result);
    }
}

/// For clients written for hand-made servers: a no-op for the token's own
/// tenant (the socket is already in its room), `forbidden` for any other.
async fn join_tenant<A: Adapter>(s: SocketRef<A>, Extension(session): Ext, data: Payload, ack: AckSender<A>) {
    let result = (|| {
        admitted(&s, &session)?;
        match data.0.ok().as_ref().and_then(Value::as_str) {
            Some(t) if t == session.tenant_id => Ok(json!({ "ok": true, "room": tenant_room(t) })),
            _ => Err(Error::Forbidden("a socket can only be in its token's tenant".into())),
        }
    })();
    reply(ack, result);
}

async fn unknown<A: Adapter>(s: SocketRef<A>, Extension(session): Ext, Event(name): Event, ack: AckSender<A>) {
    let result = admitted(&s, &session).and_then(|_| Err(Error::Invalid(format!("unknown event {name:?}"))));
    reply(ack, result);
}

/// Whether the client asked for an acknowledgement.
pub(super) struct WantsAck(bool);

impl<A: Adapter> socketioxide::handler::FromMessageParts<A> for WantsAck {
    type Error = std::convert::Infallible;

    fn from_message_parts(
        _: &Arc<socketioxide::socket::Socket<A>>,
        _: &mut socketioxide_core::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        Ok(WantsAck(ack_id.is_some()))
    }
}
