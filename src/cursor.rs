//! The cursor: an event's place in the one total order over all events.
//!
//! It is `(tx_id, position)`: the writing transaction's id, then the insert
//! position (docs/architecture.md, cursors). Clients see it as an opaque string and hand it
//! back; `0` means "before the first event".

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor {
    pub tx_id: i64,
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl Cursor {
    /// Before the first event.
    pub const ZERO: Cursor = Cursor { tx_id: 0, position: 0 };

    pub fn new(tx_id: i64, position: i64) -> Self {
        Cursor { tx_id, position }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Cursor::ZERO { f.write_str("0") } else { write!(f, "{}-{}", self.tx_id, self.position) }
    }
}

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "0" {
            return Ok(Cursor::ZERO);
        }
        let (tx, pos) = s.split_once('-').ok_or(InvalidCursor)?;
        let parse = |part: &str| -> Result<i64, InvalidCursor> {
            // Digits only: no signs, no spaces, no empty parts.
            if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidCursor);
            }
            part.parse().map_err(|_| InvalidCursor)
        };
        Ok(Cursor::new(parse(tx)?, parse(pos)?))
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// In the OpenAPI document a cursor is what clients see: an opaque string.
impl utoipa::PartialSchema for Cursor {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let description = "An event's place in the one order over all events. Opaque: store it and hand it back; \
                           `0` means before the first event.";
        ObjectBuilder::new().schema_type(Type::String).description(Some(description)).examples(["0"]).into()
    }
}

impl utoipa::ToSchema for Cursor {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for c in [Cursor::ZERO, Cursor::new(812, 1), Cursor::new(i64::MAX, i64::MAX)] {
            assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        }
        assert_eq!(Cursor::ZERO.to_string(), "0");
    }

    #[test]
    fn rejects_malformed() {
        for s in ["", "-", "1-", "-1", "a-1", "1-2-3", "+1-2", "1 -2", "99999999999999999999-1", "0-"] {
            assert_eq!(s.parse::<Cursor>(), Err(InvalidCursor), "{s:?}");
        }
    }

    #[test]
    fn orders_by_transaction_then_position() {
        assert!(Cursor::new(5, 100) < Cursor::new(6, 1));
        assert!(Cursor::new(6, 1) < Cursor::new(6, 2));
        assert!(Cursor::ZERO < Cursor::new(1, 1));
    }
}
