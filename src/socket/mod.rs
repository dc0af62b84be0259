//! The Socket.IO feed (CONTRACT.md sections 3 and 7): authentication at
//! connect, replay then live delivery, and the client events.
//!
//! Generic over the adapter: the PostgreSQL adapter carries presence and
//! typing relays between processes; a single embedded process uses the local one.

pub mod adapter;
mod connect;
mod delivery;
mod handlers;
pub mod presence;
mod roster;
mod session;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

pub use roster::Roster;

use crate::config::Namespace;

/// Serves the feed on every configured namespace and binds the roster to
/// them. Each result must be awaited (or spawned) to start the adapter of
/// that namespace.
pub fn attach<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    namespaces: &[Namespace],
    roster: &Roster,
) -> Vec<A::InitRes> {
    roster.bind(io, namespaces.iter().map(|ns| ns.path.clone()).collect());
    namespaces
        .iter()
        .map(|ns| io.ns(ns.path.clone(), connect::on_connect::<A>.with(connect::authenticate::<A>)))
        .collect()
}
