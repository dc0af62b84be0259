//! The handshake's `auth` object, `{ token, after?, consumer?, types? }`
//! (docs/protocol.md, the handshake), deserialized once at connect.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use crate::cursor::Cursor;
use crate::error::Error;
use crate::event::TypeFilter;
use crate::store::ConsumerName;

/// What a client sent as `auth`. Other fields are ignored; an `auth` that is
/// not an object does not deserialize, and the caller takes it as empty.
///
/// A field of the wrong type does not fail the whole: it is kept as its
/// refusal, which connect reports only after the token is verified, so a
/// client without a valid token learns nothing about its other fields.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Handshake {
    /// Only a string counts; without one the token comes from the query's
    /// `?token=` or the `Authorization` header.
    #[serde(deserialize_with = "token")]
    pub token: Option<String>,
    /// Replay after this: a cursor string, or the number 0.
    #[serde(deserialize_with = "after")]
    pub after: Option<Result<Cursor, Error>>,
    /// The stored cursor to replay after when there is no `after`.
    #[serde(deserialize_with = "consumer")]
    pub consumer: Option<Result<ConsumerName, Error>>,
    /// Type patterns, as `feed:subscribe` takes them. In force from the
    /// first replayed event on, so a replay carries only matching types.
    #[serde(deserialize_with = "types")]
    pub types: Option<Result<TypeFilter, Error>>,
    /// Any other field. Flattened, so that only an object deserializes (a
    /// struct would otherwise take an array as its fields in order).
    #[serde(flatten)]
    _other: IgnoredAny,
}

/// One field as sent; `null` is absent.
#[derive(Deserialize)]
#[serde(untagged)]
enum Sent {
    Text(String),
    Whole(u64),
    Other(IgnoredAny),
}

fn token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Sent>::deserialize(d)? {
        Some(Sent::Text(token)) => Some(token),
        _ => None,
    })
}

fn after<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Result<Cursor, Error>>, D::Error> {
    Ok(Option::<Sent>::deserialize(d)?.map(|sent| match sent {
        Sent::Text(cursor) => cursor.parse().map_err(Error::from),
        Sent::Whole(0) => Ok(Cursor::ZERO),
        _ => Err(Error::InvalidCursor),
    }))
}

fn consumer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Result<ConsumerName, Error>>, D::Error> {
    Ok(Option::<Sent>::deserialize(d)?.map(|sent| match sent {
        Sent::Text(name) => ConsumerName::parse(&name).map_err(Error::from),
        _ => Err(Error::Invalid("consumer must be a string".into())),
    }))
}

fn types<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Result<TypeFilter, Error>>, D::Error> {
    let not_a_list = || Error::Invalid("types must be a list of type patterns".into());
    Ok(Option::<Patterns>::deserialize(d)?.map(|sent| match sent {
        Patterns::List(list) => TypeFilter::parse(list.iter().map(String::as_str)).map_err(Error::from),
        Patterns::Other(_) => Err(not_a_list()),
    }))
}

/// `types` as sent: a list of strings, or anything else (refused).
#[derive(Deserialize)]
#[serde(untagged)]
enum Patterns {
    List(Vec<String>),
    Other(IgnoredAny),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(auth: &str) -> Handshake {
        serde_json::from_str(auth).unwrap()
    }

    /// The message a refused handshake's `connect_error` carries.
    fn refusal<T: std::fmt::Debug>(field: Option<Result<T, Error>>) -> String {
        field.expect("the field was sent").expect_err("refused").body().message
    }

    #[test]
    fn absent_and_null_fields_are_not_sent() {
        for auth in ["{}", r#"{"token": null, "after": null, "consumer": null, "types": null}"#] {
            let h = parse(auth);
            assert!(h.token.is_none() && h.after.is_none() && h.consumer.is_none() && h.types.is_none(), "{auth}");
        }
    }

    #[test]
    fn an_auth_that_is_not_an_object_does_not_deserialize() {
        for auth in ["null", r#""a-token""#, r#"["a-token", "0"]"#, "7"] {
            assert!(serde_json::from_str::<Handshake>(auth).is_err(), "{auth}");
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let h = parse(r#"{"token": "t", "extra": {"deep": [1, {"x": null}]}}"#);
        assert_eq!(h.token.as_deref(), Some("t"));
    }

    #[test]
    fn only_a_string_is_a_token() {
        for auth in [r#"{"token": 5}"#, r#"{"token": true}"#, r#"{"token": {"jwt": "t"}}"#, r#"{"token": ["t"]}"#] {
            assert_eq!(parse(auth).token, None, "{auth}");
        }
    }

    #[test]
    fn after_is_a_cursor_string_or_the_number_zero() {
        let after = |auth: &str| parse(auth).after.expect("sent").expect("valid");
        assert_eq!(after(r#"{"after": "0"}"#), Cursor::ZERO);
        assert_eq!(after(r#"{"after": 0}"#), Cursor::ZERO);
        assert_eq!(after(r#"{"after": "812-3"}"#), Cursor::new(812, 3));
        for bad in [r#""-1""#, r#""not-a-cursor!!""#, "1", "-1", "-0", "0.0", "true", "{}", "[]"] {
            assert_eq!(refusal(parse(&format!(r#"{{"after": {bad}}}"#)).after), "invalid cursor", "{bad}");
        }
    }

    #[test]
    fn consumer_is_a_checked_name() {
        let h = parse(r#"{"consumer": "laptop"}"#);
        assert_eq!(h.consumer.expect("sent").expect("valid").as_str(), "laptop");
        let long = "c".repeat(201);
        for (bad, message) in [
            (r#""""#.to_owned(), "consumer must be 1-200 characters"),
            (format!("{long:?}"), "consumer must be 1-200 characters"),
            ("5".to_owned(), "consumer must be a string"),
            (r#"["laptop"]"#.to_owned(), "consumer must be a string"),
        ] {
            assert_eq!(refusal(parse(&format!(r#"{{"consumer": {bad}}}"#)).consumer), message, "{bad}");
        }
    }

    #[test]
    fn types_are_patterns_as_feed_subscribe_takes_them() {
        let filter = parse(r#"{"types": ["invoice:*", "expense:approved"]}"#).types.expect("sent").expect("valid");
        assert!(filter.matches("invoice:paid") && filter.matches("expense:approved"));
        assert!(!filter.matches("expense:filed"));
        assert!(parse(r#"{"types": ["*"]}"#).types.expect("sent").expect("valid").is_all());
        for (bad, message) in [
            (r#"["invoice"]"#, "must be domain:action"),
            (r#"["in voice:*"]"#, "type pattern"),
            (r#""invoice:*""#, "types must be a list of type patterns"),
            (r#"[5]"#, "types must be a list of type patterns"),
            (r#"{}"#, "types must be a list of type patterns"),
        ] {
            let got = refusal(parse(&format!(r#"{{"types": {bad}}}"#)).types);
            assert!(got.contains(message), "{bad}: {got}");
        }
    }
}
