//! Per-socket state, kept in the socket's extensions.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::auth::Principal;
use crate::event::{Event, TypeFilter};
use crate::store::ConsumerName;

/// Client events a socket may send per second, sustained.
const RATE_PER_SEC: f64 = 100.0;
/// And in a burst.
const BURST: f64 = 200.0;
/// Refused events within one window after which a flooding socket is disconnected.
const FLOOD_LIMIT: u32 = 1000;
const FLOOD_WINDOW: Duration = Duration::from_secs(10);

pub struct Session {
    pub tenant_id: String,
    pub user_id: String,
    pub username: Option<String>,
    pub consumer: Option<ConsumerName>,
    principal: RwLock<Principal>,
    filter: RwLock<TypeFilter>,
    bucket: Mutex<Bucket>,
    /// Cancelled when the socket disconnects: ends its background tasks.
    pub closed: CancellationToken,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    /// Refusals since `window`: a flood keeps getting refused even though
    /// the bucket lets one event through every 10 ms.
    refused: u32,
    window: Instant,
}

/// What the rate limiter says about one client event.
#[derive(Debug, PartialEq, Eq)]
pub enum Rate {
    Allow,
    Refuse,
    Disconnect,
}

impl Session {
    pub fn new(principal: Principal, consumer: Option<ConsumerName>, filter: TypeFilter) -> Self {
        Session {
            tenant_id: principal.tenant_id.clone(),
            user_id: principal.user_id.clone(),
            username: principal.username.clone(),
            consumer,
            principal: RwLock::new(principal),
            filter: RwLock::new(filter),
            bucket: Mutex::new(Bucket { tokens: BURST, at: Instant::now(), refused: 0, window: Instant::now() }),
            closed: CancellationToken::new(),
        }
    }

    pub fn principal(&self) -> Principal {
        self.principal.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_principal(&self, principal: Principal) {
        *self.principal.write().unwrap_or_else(|e| e.into_inner()) = principal;
    }

    pub fn filter(&self) -> TypeFilter {
        self.filter.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_filter(&self, filter: TypeFilter) {
        *self.filter.write().unwrap_or_else(|e| e.into_inner()) = filter;
    }

    /// Whether this socket should get the event live (its tenant is checked by the feed).
    pub fn wants(&self, event: &Event) -> bool {
        event.visible_to(&self.user_id)
            && self.filter.read().unwrap_or_else(|e| e.into_inner()).matches(&event.event_type)
    }

    /// Token bucket over the client events this socket sends.
    pub fn rate(&self) -> Rate {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * RATE_PER_SEC).min(BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Rate::Allow;
        }
        if now.duration_since(b.window) > FLOOD_WINDOW {
            b.window = now;
            b.refused = 0;
        }
        b.refused += 1;
        if b.refused > FLOOD_LIMIT { Rate::Disconnect } else { Rate::Refuse }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let p =
            Principal { tenant_id: "t".into(), user_id: "u".into(), username: None, roles: Default::default(), exp: 0 };
        Session::new(p, None, TypeFilter::all())
    }

    #[test]
    fn floods_are_refused_then_cut() {
        let s = session();
        let verdicts: Vec<Rate> = (0..(BURST as usize + FLOOD_LIMIT as usize + 5)).map(|_| s.rate()).collect();
        assert!(verdicts[..BURST as usize].iter().all(|r| *r == Rate::Allow));
        assert_eq!(verdicts[BURST as usize + 1], Rate::Refuse);
        assert_eq!(verdicts.last(), Some(&Rate::Disconnect));
    }

    #[test]
    fn a_flood_is_cut_even_when_some_events_get_through() {
        let s = session();
        let mut cut = false;
        for i in 0..(BURST as usize + FLOOD_LIMIT as usize + 100) {
            if i % 50 == 0 {
                // A token trickles back in now and then, as it does in real time.
                s.bucket.lock().unwrap().tokens += 1.0;
            }
            cut |= s.rate() == Rate::Disconnect;
        }
        assert!(cut);
    }
}
