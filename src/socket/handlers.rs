//! Client → server events (docs/protocol.md).

use std::sync::Arc;

use std::future::Future;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, Extension, SocketRef, State, TryData};
use tracing::Instrument as _;

use super::presence::tenant_room;
use super::session::{Rate, Session};
use crate::cursor::Cursor;
use crate::error::Error;
use crate::event::TypeFilter;
use crate::state::AppState;
use crate::store::ConsumerKey;

type Ext = Extension<Arc<Session>>;
type Payload = TryData<Value>;

pub(super) fn register<A: Adapter>(s: &SocketRef<A>) {
    command(s, "feed:ack", feed_ack::<A>);
    command(s, "feed:subscribe", feed_subscribe::<A>);
    command(s, "event:append", event_append::<A>);
    command(s, "presence:list", presence_list::<A>);
    command(s, "auth:refresh", auth_refresh::<A>);
    command(s, "join-tenant", join_tenant::<A>);
    command(s, "request:current-state", current_state::<A>);
    command(s, "user:typing", user_typing::<A>);
    s.on_fallback(unknown::<A>);
}

/// What a command runs with.
struct Ctx<A: Adapter> {
    socket: SocketRef<A>,
    session: Arc<Session>,
    state: AppState,
    /// Whether the client asked for an acknowledgement.
    wants_ack: bool,
}

/// Registers a client command: rate-limited, its payload parsed into `P`
/// (`invalid` when it has the wrong shape), its outcome sent as the ack if
/// the client asked for one.
fn command<A, P, F, Fut>(s: &SocketRef<A>, name: &'static str, run: F)
where
    A: Adapter,
    P: DeserializeOwned + Send + 'static,
    F: Fn(Ctx<A>, P) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, Error>> + Send + 'static,
{
    s.on(
        name,
        move |socket: SocketRef<A>,
              Extension(session): Ext,
              State(state): State<AppState>,
              data: Payload,
              ack: AckSender<A>,
              WantsAck(wants_ack): WantsAck| {
            let run = run.clone();
            let span = tracing::info_span!("command", name, tenant = %session.tenant_id, user = %session.user_id);
            async move {
                let outcome = match admitted(&socket, &session).and_then(|()| payload(data)) {
                    Ok(p) => run(Ctx { socket, session, state, wants_ack }, p).await,
                    Err(e) => Err(e),
                };
                reply(ack, outcome);
            }
            .instrument(span)
        },
    );
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

/// Parses an event's payload (`null` when there is none) into `T`.
fn payload<T: DeserializeOwned>(data: Payload) -> Result<T, Error> {
    serde_json::from_value(data.0.unwrap_or(Value::Null)).map_err(|e| Error::Invalid(format!("payload: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckPayload {
    cursor: String,
}

async fn feed_ack<A: Adapter>(c: Ctx<A>, p: AckPayload) -> Result<Value, Error> {
    let cursor: Cursor = p.cursor.parse()?;
    let session = &c.session;
    let consumer = session
        .consumer
        .as_ref()
        .ok_or_else(|| Error::Invalid("connect with auth.consumer to store a cursor".into()))?;
    let key = ConsumerKey { tenant_id: &session.tenant_id, user_id: &session.user_id, consumer };
    c.state.store.save_cursor(key, cursor).await?;
    Ok(json!({ "ok": true }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribePayload {
    types: Vec<String>,
}

async fn feed_subscribe<A: Adapter>(c: Ctx<A>, p: SubscribePayload) -> Result<Value, Error> {
    c.session.set_filter(TypeFilter::parse(p.types.iter().map(String::as_str))?);
    Ok(json!({ "ok": true }))
}

async fn event_append<A: Adapter>(c: Ctx<A>, value: Value) -> Result<Value, Error> {
    let who = c.session.principal();
    who.require_publisher()?;
    if !value.is_object() || value.get("events").is_some() {
        return Err(Error::Invalid("event:append takes one event object".into()));
    }
    let request = crate::append::parse_request(value, &who, &crate::append::Rules::of(&c.state), None)?;
    let mut events = c.state.appender.append(request).await?;
    Ok(json!({ "ok": true, "event": events.pop() }))
}

async fn presence_list<A: Adapter>(c: Ctx<A>, _: IgnoredAny) -> Result<Value, Error> {
    Ok(json!({ "users": c.state.presence.online(&c.session.tenant_id) }))
}

/// With an acknowledgement: `{ cursor, online }`. Without one (clients
/// written for other servers): the same, emitted as `reconnected`.
async fn current_state<A: Adapter>(c: Ctx<A>, _: IgnoredAny) -> Result<Value, Error> {
    let online = c.state.presence.online(&c.session.tenant_id);
    let cursor = crate::feed::tenant_head(&c.state.store, &c.session.tenant_id).await?;
    let state = json!({ "cursor": cursor, "online": online });
    if !c.wants_ack {
        let _ = c.socket.emit("reconnected", &state);
    }
    Ok(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshPayload {
    token: String,
}

async fn auth_refresh<A: Adapter>(c: Ctx<A>, p: RefreshPayload) -> Result<Value, Error> {
    let who = c.state.verifier.verify(&p.token)?;
    if who.user_id != c.session.user_id || who.tenant_id != c.session.tenant_id {
        return Err(Error::Forbidden("the new token is for another user or tenant".into()));
    }
    let exp = who.exp;
    c.session.set_principal(who);
    Ok(json!({ "ok": true, "exp": exp }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypingPayload {
    resource_id: Value,
    resource_type: Value,
}

/// Relayed to the rest of the tenant on every node; never stored.
async fn user_typing<A: Adapter>(c: Ctx<A>, p: TypingPayload) -> Result<Value, Error> {
    let relay = json!({
        "userId": c.session.user_id,
        "username": c.session.username,
        "resourceId": p.resource_id,
        "resourceType": p.resource_type,
    });
    c.socket
        .to(tenant_room(&c.session.tenant_id))
        .emit("user:typing", &relay)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("typing relay: {e}")))?;
    Ok(json!({ "ok": true }))
}

/// For clients written for hand-made servers: a no-op for the token's own
/// tenant (the socket is already in its room), `forbidden` for any other.
async fn join_tenant<A: Adapter>(c: Ctx<A>, tenant: Value) -> Result<Value, Error> {
    match tenant.as_str() {
        Some(t) if t == c.session.tenant_id => Ok(json!({ "ok": true, "room": tenant_room(t) })),
        _ => Err(Error::Forbidden("a socket can only be in its token's tenant".into())),
    }
}

async fn unknown<A: Adapter>(s: SocketRef<A>, Extension(session): Ext, Event(name): Event, ack: AckSender<A>) {
    let result = admitted(&s, &session).and_then(|_| Err(Error::Invalid(format!("unknown event {name:?}"))));
    reply(ack, result);
}

/// Whether the client asked for an acknowledgement.
struct WantsAck(bool);

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
