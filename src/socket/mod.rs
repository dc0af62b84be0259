//! The Socket.IO feed (docs/protocol.md): authentication at
//! connect, replay then live delivery, and the client events.
//!
//! Generic over the adapter: the PostgreSQL adapter carries presence and
//! typing relays between processes; a single embedded process uses the local one.

pub mod adapter;
mod connect;
mod delivery;
mod handlers;
mod handshake;
pub mod presence;
mod roster;
mod session;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

pub use roster::Roster;

use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use futures::future::BoxFuture;
use socketioxide_postgres::{CustomPostgresAdapter, PostgresAdapterConfig, PostgresAdapterCtr};

use crate::config::Namespace;
use crate::state::AppState;
use crate::store::Store;
use adapter::ResilientDriver;

/// Stops every socket (so HTTP can drain), used at shutdown.
pub type CloseSockets = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// Adds the Socket.IO feed to `api`: over the PostgreSQL adapter, which
/// carries presence and typing between nodes, or the local one for the
/// single-process embedded store. Returns what closes the sockets at shutdown.
pub async fn serve(api: Router, state: &AppState, namespaces: &[Namespace]) -> anyhow::Result<(Router, CloseSockets)> {
    // A socket message may carry one event at the size limit, plus its envelope.
    let max_message = state.config.max_event_bytes + 64 * 1024;
    let builder = SocketIo::builder()
        .with_state(state.clone())
        .max_buffer_size(1024)
        .max_payload(max_message as u64)
        .ws_max_message_size(max_message)
        .ws_max_frame_size(max_message);
    match &state.store {
        Store::Postgres(pg) => {
            let driver = ResilientDriver::new(pg.adapter_options(), state.adapter.clone());
            let adapter = PostgresAdapterCtr::new_with_driver(driver, PostgresAdapterConfig::default());
            let (layer, io) = builder.with_adapter::<CustomPostgresAdapter<_, ResilientDriver>>(adapter).build_layer();
            for init in attach(&io, namespaces, &state.roster) {
                init.await.context("cannot start the PostgreSQL socket adapter")?;
            }
            Ok((api.layer(layer), closer(io)))
        }
        Store::Sqlite(_) => {
            let (layer, io) = builder.build_layer();
            attach(&io, namespaces, &state.roster);
            Ok((api.layer(layer), closer(io)))
        }
    }
}

/// Announces who leaves while the adapter still reaches the other nodes
/// (bounded: a stuck database must not hold shutdown), then closes the sockets.
fn closer<A: Adapter>(io: SocketIo<A>) -> CloseSockets {
    Box::new(move || {
        Box::pin(async move {
            if tokio::time::timeout(Duration::from_secs(5), presence::depart(&io)).await.is_err() {
                tracing::warn!("presence announcements unfinished at shutdown");
            }
            io.close().await
        })
    })
}

/// Serves the feed on every configured namespace and binds the roster to
/// them. Each result must be awaited (or spawned) to start the adapter of
/// that namespace.
fn attach<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, namespaces: &[Namespace], roster: &Roster) -> Vec<A::InitRes> {
    roster.bind(io, namespaces.iter().map(|ns| ns.path.clone()).collect());
    namespaces
        .iter()
        .map(|ns| io.ns(ns.path.clone(), connect::on_connect::<A>.with(connect::authenticate::<A>)))
        .collect()
}
