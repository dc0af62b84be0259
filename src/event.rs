//! The event envelope and the input types that parse once and are valid afterwards.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::cursor::Cursor;

mod filter;

pub use filter::{MAX_TYPE_PATTERNS, TypeFilter};

/// The stored event, in the one JSON form used everywhere (docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: Uuid,
    pub cursor: Cursor,
    pub tenant_id: String,
    pub stream: String,
    #[schema(minimum = 1)]
    pub version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: Value,
    #[schema(required)]
    pub actor: Option<Actor>,
    #[schema(required)]
    pub audience: Option<Audience>,
    #[schema(value_type = Option<Object>, required)]
    pub metadata: Option<Value>,
    /// Server time at append, UTC, milliseconds.
    #[serde(serialize_with = "rfc3339_millis")]
    pub timestamp: DateTime<Utc>,
}

impl Event {
    /// Whether `user` of the event's tenant may see it outside audit queries.
    pub fn visible_to(&self, user: &str) -> bool {
        self.audience.as_ref().is_none_or(|a| a.users.iter().any(|u| u == user))
    }
}

fn rfc3339_millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub user_id: String,
    pub username: Option<String>,
}

/// `{"users": [...]}`: only these users of the tenant see the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[schema(min_items = 1)]
    pub users: Vec<String>,
}

/// A reason an input is not valid, shown to the client as `invalid`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, InvalidInput> {
    Err(InvalidInput(msg.into()))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Refuses text that PostgreSQL cannot store: the NUL character (in `text`
/// and in `jsonb` strings alike). Checked before a value reaches a query, so
/// it is the request's `invalid`, not a failed statement that takes the other
/// requests of its group commit down with it. `what` names the field.
pub fn storable(what: &str, text: &str) -> Result<(), InvalidInput> {
    if text.contains('\0') {
        return invalid(format!("{what} must not contain the NUL character (\\u0000)"));
    }
    Ok(())
}

/// [`storable`] for every string and key of a JSON value.
pub fn storable_json(what: &str, value: &Value) -> Result<(), InvalidInput> {
    match value {
        Value::String(s) => storable(what, s),
        Value::Array(items) => items.iter().try_for_each(|v| storable_json(what, v)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            storable(what, k)?;
            storable_json(what, v)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// Domains whose types the server itself emits or listens for (docs/protocol.md,
/// reserved types): a stored event of such a type would reach sockets as if the
/// server had sent it.
pub const RESERVED_DOMAINS: [&str; 5] = ["feed", "auth", "presence", "request", "event"];
/// Single reserved names, Socket.IO's own among them.
pub const RESERVED_TYPES: [&str; 8] =
    ["user:online", "user:offline", "user:typing", "reconnected", "connect", "disconnect", "connect_error", "error"];

/// `domain:action`: 1–100 characters, at least one `:`, parts of `[A-Za-z0-9_.-]+`,
/// and not one of the reserved names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventType(String);

impl EventType {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let domain = s.split(':').next().unwrap_or_default();
        if RESERVED_TYPES.contains(&s) || (s.contains(':') && RESERVED_DOMAINS.contains(&domain)) {
            return invalid(format!("type {s:?} is reserved for the server's own events"));
        }
        Self::well_formed(s)
    }

    /// The syntax alone: type filters may name reserved types (they match nothing stored).
    fn well_formed(s: &str) -> Result<Self, InvalidInput> {
        let parts_ok = s.split(':').all(|p| !p.is_empty() && p.chars().all(is_name_char));
        if s.len() > 100 || !s.contains(':') || !parts_ok {
            return invalid(format!(
                "type {s:?} must be domain:action (1-100 characters of [A-Za-z0-9_.-] parts joined by ':')"
            ));
        }
        Ok(EventType(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1–200 characters of `[A-Za-z0-9_.:@/-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamName(String);

impl StreamName {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let chars_ok = s.chars().all(|c| is_name_char(c) || matches!(c, ':' | '@' | '/'));
        if s.is_empty() || s.len() > 200 || !chars_ok {
            return invalid(format!("stream {s:?} must be 1-200 characters of [A-Za-z0-9_.:@/-]"));
        }
        Ok(StreamName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types() {
        for ok in ["invoice:paid", "bank:transaction_imported", "member:role-changed", "a:b:c"] {
            assert!(EventType::parse(ok).is_ok(), "{ok}");
        }
        let long = format!("a:{}", "b".repeat(99));
        for bad in ["", "invoice", ":paid", "invoice:", "a::b", "in voice:paid", "a:b*", long.as_str()] {
            assert!(EventType::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_types_are_refused_but_may_be_filtered_on() {
        let reserved = ["feed:reset", "auth:expired", "presence:x", "request:current-state", "event:append"];
        let names = ["user:online", "user:offline", "user:typing", "reconnected", "connect", "disconnect"];
        for t in reserved.iter().chain(&names).chain(&["connect_error", "error"]) {
            let err = EventType::parse(t).unwrap_err();
            assert!(err.0.contains("reserved"), "{t}: {err}");
        }
        for ok in ["user:renamed", "feeds:x", "invoice:feed", "authz:granted"] {
            assert!(EventType::parse(ok).is_ok(), "{ok}");
        }
        assert!(TypeFilter::parse_list("feed:*,user:online").is_ok());
    }

    #[test]
    fn nul_is_not_storable() {
        assert!(storable("sub", "u-1").is_ok());
        assert!(storable("sub", "u\0").unwrap_err().0.contains("NUL"));
        let nested = serde_json::json!({"a": [1, {"b": "x\0"}]});
        assert!(storable_json("data", &nested).is_err());
        assert!(storable_json("data", &serde_json::json!({"k\0": 1})).is_err());
        assert!(storable_json("data", &serde_json::json!({"a": ["\\u0000", null, true, 1.5]})).is_ok());
    }

    #[test]
    fn stream_names() {
        assert!(StreamName::parse("invoice-42").is_ok());
        assert!(StreamName::parse("tenant/acme:user@x.y_z").is_ok());
        assert!(StreamName::parse(&"s".repeat(200)).is_ok());
        for bad in ["", "a b", "ü", &"s".repeat(201)] {
            assert!(StreamName::parse(bad).is_err(), "{bad}");
        }
    }
}
