//! `eventfeed types check`: every stored event against its type's current
//! schema, those appended with the SQL function (which does not validate)
//! included. It reads the history a page at a time, so its memory does not
//! grow with the store, and names every event that does not conform.

use std::io::IsTerminal as _;

use super::Catalog;
use crate::cursor::Cursor;
use crate::event::Event;
use crate::store::Store;

/// Events read per page.
const PAGE: i64 = 1000;

/// What a walk found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub checked: u64,
    pub nonconforming: u64,
}

/// Checks every stored event, writing one line per event that does not
/// conform to `out`, and progress to stderr when it is a terminal.
pub async fn walk(store: &Store, catalog: &Catalog, out: &mut impl std::io::Write) -> anyhow::Result<Tally> {
    let progress = std::io::stderr().is_terminal();
    let mut tally = Tally::default();
    let mut after = Cursor::ZERO;
    loop {
        let page = store.read_all(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.cursor;
        for event in &page {
            tally.checked += 1;
            if let Err(e) = catalog.check(&event.event_type, &event.data) {
                tally.nonconforming += 1;
                writeln!(out, "{}", describe(event, &e.body()))?;
            }
        }
        if progress {
            eprint!("\rchecked {} events, {} do not conform", tally.checked, tally.nonconforming);
        }
    }
    if progress {
        eprintln!();
    }
    Ok(tally)
}

/// One line naming the event and what is wrong with it.
fn describe(event: &Event, error: &crate::error::ErrorBody) -> String {
    format!(
        "{} tenant={:?} stream={:?} version={} type={} id={}: {}",
        event.cursor, event.tenant_id, event.stream, event.version, event.event_type, event.id, error.message
    )
}
