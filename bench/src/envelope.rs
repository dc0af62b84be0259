//! Reading an event's envelope out of a received packet: the cursor, the
//! timestamp and the benchmark's sequence number, a million times a second.

use serde::Deserialize;

use crate::sio::Packet;

/// The part of an event envelope the benchmarks look at. `data.seq` is
/// the benchmark's own sequence number.
#[derive(Deserialize)]
pub struct Envelope<'a> {
    pub cursor: &'a str,
    pub timestamp: &'a str,
    pub data: Seq,
}

#[derive(Deserialize)]
pub struct Seq {
    pub seq: u64,
}

/// The same three fields as [`Envelope`] of an event named `name`, found
/// where the server's field order puts them (`id` then `cursor` first,
/// `timestamp` last, `data` between), else by parsing. The client scans a
/// million envelopes a second on the machine that runs the server, and must
/// stay out of its way. `None` for any other packet.
pub fn scan<'a>(packet: &'a Packet, name: &str) -> Option<(&'a str, &'a str, u64)> {
    let array = packet.array();
    let rest = array.strip_prefix("[\"")?.strip_prefix(name)?.strip_prefix("\",")?;
    fast_scan(rest).or_else(|| {
        let (_, e): (&str, Envelope) = packet.parse().ok()?;
        Some((e.cursor, e.timestamp, e.data.seq))
    })
}

fn fast_scan(envelope: &str) -> Option<(&str, &str, u64)> {
    const ID: usize = r#"{"id":""#.len() + 36;
    let after_id = envelope.get(ID..)?.strip_prefix(r#"","cursor":""#)?;
    let cursor = &after_id[..after_id.find('"')?];
    let head = envelope.strip_suffix(r#""}]"#)?;
    let (head, timestamp) = head.split_at_checked(head.len().checked_sub(24)?)?;
    head.strip_suffix(r#""timestamp":""#)?;
    // The first object after the cursor is `data`: a byte search, not a
    // substring search, which cost a tenth of the client's time.
    let object = after_id.find('{')?;
    after_id[..object].strip_suffix(r#""data":"#)?;
    let seq = after_id[object..].strip_prefix(r#"{"seq":"#)?;
    let end = seq.find(|c: char| !c.is_ascii_digit())?;
    Some((cursor, timestamp, seq[..end].parse().ok()?))
}

/// The cursor's `(tx_id, position)`, for checking order. Cursors are opaque to
/// clients; the benchmark peeks inside (src/cursor.rs) only to verify order.
pub fn cursor_key(cursor: &str) -> Option<(u64, u64)> {
    let (tx, pos) = cursor.split_once('-')?;
    Some((tx.parse().ok()?, pos.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn received(text: &'static [u8]) -> Packet {
        Packet { text: Bytes::from_static(text), received_at: 0 }
    }

    #[test]
    fn scans_what_serde_parses() {
        let text = r#"42["bench:tick",{"id":"6f1c2a7e-3b5d-4f61-9a0e-2c9d7b1e4a10","cursor":"812-9","tenantId":"bench","stream":"ticker-3","version":7,"type":"bench:tick","data":{"seq":1234},"actor":{"userId":"ticker","username":"ticker"},"audience":null,"metadata":null,"timestamp":"2026-11-22T12:00:00.123Z"}]"#;
        let packet = received(text.as_bytes());
        assert_eq!(scan(&packet, "bench:tick"), Some(("812-9", "2026-11-22T12:00:00.123Z", 1234)));
        assert!(fast_scan(&text[16..]).is_some(), "the server's field order takes the fast path");
        let (name, envelope): (&str, Envelope) = packet.parse().unwrap();
        assert_eq!(
            (name, envelope.cursor, envelope.timestamp, envelope.data.seq),
            ("bench:tick", "812-9", "2026-11-22T12:00:00.123Z", 1234)
        );
        assert_eq!(scan(&packet, "bench:other"), None);
        // Another field order still works, by parsing.
        let reordered = r#"42["bench:tick",{"timestamp":"2026-11-22T12:00:00.123Z","data":{"seq":5},"cursor":"1-2"}]"#;
        assert_eq!(scan(&received(reordered.as_bytes()), "bench:tick"), Some(("1-2", "2026-11-22T12:00:00.123Z", 5)));
        assert_eq!(scan(&received(br#"42["user:online",{"userId":"u-1"}]"#), "bench:tick"), None);
        assert_eq!(cursor_key("812-9"), Some((812, 9)));
    }
}
