//! Append input as clients send it (HTTP body or `event:append` payload),
//! validated once into store requests.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use std::sync::Arc;

use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::event::{Actor, Audience, EventType, StreamName, storable, storable_json};
use crate::schemas::Catalog;
use crate::state::App;
use crate::store::{AppendRequest, NewEvent};

/// Largest serialized `metadata`.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Most events in one atomic append.
pub const MAX_EVENTS_PER_APPEND: usize = 1000;

/// One event to append. `data` is at most `EVENTFEED_MAX_EVENT_BYTES`
/// serialized, `metadata` at most 16 KiB; only `service` and `admin` set
/// `audience`, only `service` sets `actor`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventInput {
    #[schema(pattern = "^[A-Za-z0-9_.:@/-]{1,200}$")]
    pub stream: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)+$", max_length = 100)]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Value,
    pub id: Option<Uuid>,
    /// Append only if the stream's version is this; `0`: the stream must be new.
    #[schema(minimum = 0)]
    pub expected_version: Option<i64>,
    pub audience: Option<Audience>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    pub actor: Option<Actor>,
}

/// Several events appended atomically: all stored, or none.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Each is read as an event on its own, so that an error can name its index.
    #[schema(value_type = Vec<EventInput>, min_items = 1, max_items = 1000)]
    events: Vec<Value>,
}

/// The append body: one event, or a batch. `parse_request` reads it.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used: the parser reads the two shapes itself.
pub enum AppendBody {
    One(EventInput),
    Batch(Batch),
}

impl EventInput {
    fn validate(self, who: &Principal, max_event_bytes: usize) -> Result<NewEvent> {
        let stream = StreamName::parse(&self.stream)?;
        let event_type = EventType::parse(&self.event_type)?;
        check_object("data", &self.data, max_event_bytes)?;
        if let Some(meta) = &self.metadata {
            check_object("metadata", meta, MAX_METADATA_BYTES)?;
        }
        if self.expected_version.is_some_and(|v| v < 0) {
            return Err(Error::Invalid("expectedVersion must be 0 or more".into()));
        }
        if let Some(audience) = &self.audience {
            check_audience(audience, who)?;
        }
        Ok(NewEvent {
            id: self.id,
            stream,
            event_type,
            data: self.data,
            expected_version: self.expected_version,
            actor: Some(actor(self.actor, who)?),
            audience: self.audience,
            metadata: self.metadata,
        })
    }
}

/// `data` or `metadata`: a JSON object, storable, of at most `limit` bytes serialized.
fn check_object(what: &str, value: &Value, limit: usize) -> Result<()> {
    if !value.is_object() {
        return Err(Error::Invalid(format!("{what} must be a JSON object")));
    }
    storable_json(what, value)?;
    let size = serde_json::to_vec(value).map_err(Error::internal)?.len();
    if size > limit {
        return Err(Error::TooLarge(format!("{what} is {size} bytes; the limit is {limit}")));
    }
    Ok(())
}

/// A given audience lists 1 or more storable user ids, and its sender may set it.
fn check_audience(audience: &Audience, who: &Principal) -> Result<()> {
    if audience.users.is_empty() || audience.users.iter().any(|u| u.is_empty() || u.len() > 200) {
        return Err(Error::Invalid("audience.users must list 1 or more user ids".into()));
    }
    if !who.can_set_audience() {
        return Err(Error::Forbidden("only the service and admin roles may set audience".into()));
    }
    audience.users.iter().try_for_each(|u| Ok(storable("audience", u)?))
}

/// The event's actor: the caller, or for the service role the one it names.
fn actor(given: Option<Actor>, who: &Principal) -> Result<Actor> {
    match given {
        Some(actor) if who.is_service() => {
            storable("actor", &actor.user_id)?;
            storable("actor", actor.username.as_deref().unwrap_or_default())?;
            Ok(actor)
        }
        Some(_) => Err(Error::Forbidden("only the service role may set actor".into())),
        None => Ok(Actor { user_id: who.user_id.clone(), username: who.username.clone() }),
    }
}

/// What an append is checked against besides the contract's own rules.
pub struct Rules {
    /// `EVENTFEED_MAX_EVENT_BYTES`.
    pub max_event_bytes: usize,
    /// The type catalog in force when the request arrived.
    pub catalog: Arc<Catalog>,
}

impl Rules {
    /// The rules a server applies now.
    pub fn of(app: &App) -> Self {
        Rules { max_event_bytes: app.config.max_event_bytes, catalog: app.schemas.current() }
    }
}

/// A schema refusal of event `i` of a batch names the event.
fn in_batch(error: Error, i: usize) -> Error {
    match error {
        Error::Nonconforming(mut found) => {
            found.index = Some(i);
            found.message = format!("event {i}: {}", found.message);
            Error::Nonconforming(found)
        }
        Error::Invalid(message) => Error::Invalid(format!("event {i}: {message}")),
        other => other,
    }
}

/// Parses one event, or `{ "events": [...] }`, into one atomic request.
/// With an idempotency key, events without an id get one derived from the
/// key, so a retried request finds its stored events.
pub fn parse_request(
    body: Value,
    who: &Principal,
    rules: &Rules,
    idempotency_key: Option<&str>,
) -> Result<AppendRequest> {
    let batch = body.get("events").is_some();
    let inputs: Vec<Value> = match body {
        Value::Object(obj) if obj.contains_key("events") => {
            let batch: Batch = serde_json::from_value(Value::Object(obj))
                .map_err(|e| Error::Invalid(format!("a batch is {{\"events\": [ ... ]}} and nothing else: {e}")))?;
            batch.events
        }
        single @ Value::Object(_) => vec![single],
        _ => return Err(Error::Invalid("the body must be an event object or {\"events\": [...]}".into())),
    };
    if inputs.is_empty() {
        return Err(Error::Invalid("events must not be empty".into()));
    }
    if inputs.len() > MAX_EVENTS_PER_APPEND {
        return Err(Error::TooLarge(format!("at most {MAX_EVENTS_PER_APPEND} events per append")));
    }
    if let Some(key) = idempotency_key
        && (key.is_empty() || key.len() > 255)
    {
        return Err(Error::Invalid("Idempotency-Key must be 1-255 characters".into()));
    }
    let events = inputs
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let input: EventInput =
                serde_json::from_value(value).map_err(|e| Error::Invalid(format!("event {i}: {e}")))?;
            let mut event = input.validate(who, rules.max_event_bytes)?;
            let conforms = rules.catalog.check(event.event_type.as_str(), &event.data);
            conforms.map_err(|e| if batch { in_batch(e, i) } else { e })?;
            if let (None, Some(key)) = (event.id, idempotency_key) {
                let name = format!("{}\u{1f}{key}\u{1f}{i}", who.tenant_id);
                event.id = Some(Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()));
            }
            Ok(event)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(AppendRequest { tenant_id: who.tenant_id.clone(), events })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn open(max_event_bytes: usize) -> Rules {
        Rules { max_event_bytes, catalog: Arc::new(Catalog::empty(false)) }
    }

    fn publisher() -> Principal {
        Principal {
            tenant_id: "acme".into(),
            user_id: "u-1".into(),
            username: Some("alice".into()),
            roles: ["publisher".to_owned()].into(),
            exp: i64::MAX,
        }
    }

    #[test]
    fn single_and_batch() {
        let one = json!({"stream": "s-1", "type": "a:b", "data": {}});
        let req = parse_request(one.clone(), &publisher(), &open(1024), None).unwrap();
        assert_eq!(req.events.len(), 1);
        assert_eq!(req.events[0].actor.as_ref().unwrap().user_id, "u-1");
        let batch = parse_request(json!({"events": [one.clone(), one]}), &publisher(), &open(1024), None).unwrap();
        assert_eq!(batch.events.len(), 2);
    }

    #[test]
    fn idempotency_key_gives_stable_ids() {
        let body =
            json!({"events": [{"stream": "s", "type": "a:b", "data": {}}, {"stream": "s", "type": "a:b", "data": {}}]});
        let a = parse_request(body.clone(), &publisher(), &open(1024), Some("k1")).unwrap();
        let b = parse_request(body, &publisher(), &open(1024), Some("k1")).unwrap();
        assert_eq!(a.events[0].id, b.events[0].id);
        assert_ne!(a.events[0].id, a.events[1].id);
    }

    #[test]
    fn rejects_bad_input() {
        let p = publisher();
        let cases = [
            json!({"stream": "s", "type": "nocolon", "data": {}}),
            json!({"stream": "bad stream", "type": "a:b", "data": {}}),
            json!({"stream": "s", "type": "a:b", "data": [1]}),
            json!({"stream": "s", "type": "a:b"}),
            json!({"stream": "s", "type": "a:b", "data": {}, "bogus": 1}),
            json!({"stream": "s", "type": "a:b", "data": {}, "expectedVersion": -1}),
            json!({"stream": "s", "type": "a:b", "data": {}, "audience": {"users": []}}),
            json!({"events": []}),
            json!([1]),
            json!({"stream": "s", "type": "a:b", "data": {"k": ["nul \u{0} here"]}}),
            json!({"stream": "s", "type": "a:b", "data": {"nul \u{0} key": 1}}),
            json!({"stream": "s", "type": "a:b", "data": {}, "metadata": {"m": "\u{0}"}}),
        ];
        for body in cases {
            let err = parse_request(body.clone(), &p, &open(1024), None).unwrap_err();
            assert_eq!(err.code(), "invalid", "{body}");
        }
        let big = json!({"stream": "s", "type": "a:b", "data": {"x": "y".repeat(2000)}});
        assert_eq!(parse_request(big, &p, &open(1024), None).unwrap_err().code(), "too_large");
        let actor = json!({"stream": "s", "type": "a:b", "data": {}, "actor": {"userId": "x", "username": null}});
        assert_eq!(parse_request(actor, &p, &open(1024), None).unwrap_err().code(), "forbidden");
    }
}
