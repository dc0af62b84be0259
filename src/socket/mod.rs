//! The Socket.IO feed (docs/protocol.md): authentication at connect, replay
//! then live delivery, the client events, and presence announcements.
//!
//! Generic over the adapter: the PostgreSQL adapter carries typing relays
//! between the processes that share a store; a store that serves one
//! process gets the local one.

pub mod adapter;
mod connect;
mod delivery;
mod handlers;
mod handshake;
pub mod presence;
mod session;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use anyhow::Context as _;
use axum::Router;
use futures::future::BoxFuture;
use socketioxide_postgres::{CustomPostgresAdapter, PostgresAdapterConfig, PostgresAdapterCtr};

use crate::config::Namespace;
use crate::state::AppState;
use adapter::ResilientDriver;

/// Each WebSocket's read buffer, allocated at the connect and kept for the
/// socket's life (4 KiB by default). Clients send little (acks, typing,
/// the odd append): a larger message only takes more reads.
const WS_READ_BUFFER: usize = 1024;

/// How long closing waits for Socket.IO handshakes already on the wire.
const HANDSHAKES_IN_FLIGHT: std::time::Duration = std::time::Duration::from_millis(250);

/// Closes every socket at the Engine.IO level, so clients reconnect (to
/// another node) at once; used at shutdown. Resolves to how many there were.
pub type CloseSockets = Box<dyn FnOnce() -> BoxFuture<'static, usize> + Send>;

/// Adds the Socket.IO feed to `api`: over the PostgreSQL adapter when other
/// processes share the store (its bus carries typing relays between nodes),
/// else the local one; and starts the presence announcer.
/// Returns what closes the sockets at shutdown.
pub async fn serve(api: Router, state: &AppState, namespaces: &[Namespace]) -> anyhow::Result<(Router, CloseSockets)> {
    // A socket message may carry one event at the size limit, plus its envelope.
    let max_message = state.config.max_event_bytes + 64 * 1024;
    let builder = SocketIo::builder()
        .with_state(state.clone())
        .max_buffer_size(1024)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .max_payload(max_message as u64)
        .ws_max_message_size(max_message)
        .ws_max_frame_size(max_message);
    match state.store.shared_bus() {
        Some(bus) => {
            let driver = ResilientDriver::new(bus, state.adapter.clone());
            let adapter = PostgresAdapterCtr::new_with_driver(driver, PostgresAdapterConfig::default());
            let (layer, io) = builder.with_adapter::<CustomPostgresAdapter<_, ResilientDriver>>(adapter).build_layer();
            for init in attach(&io, namespaces) {
                init.await.context("cannot start the PostgreSQL socket adapter")?;
            }
            Ok((api.layer(layer), started(io, state)))
        }
        None => {
            let (layer, io) = builder.build_layer();
            attach(&io, namespaces);
            Ok((api.layer(layer), started(io, state)))
        }
    }
}

/// Starts the presence announcer, and returns what closes the sockets.
fn started<A: Adapter>(io: SocketIo<A>, state: &AppState) -> CloseSockets {
    let announcer = presence::announce(io.clone(), state.presence.clone(), state.shutdown.clone());
    state.tasks.spawn(announcer);
    Box::new(move || {
        Box::pin(async move {
            // A client whose transport opened just before the stop sends its
            // Socket.IO CONNECT next; once the namespaces are closed it would
            // be refused ("Invalid namespace"), which socket.io-client does
            // not retry. Let those in first, to be closed with the rest.
            tokio::time::sleep(HANDSHAKES_IN_FLIGHT).await;
            let sockets = io.nsps().iter().map(|ns| ns.clone().local().sockets().len()).sum();
            io.close().await;
            sockets
        })
    })
}

/// Serves the feed on every configured namespace. Each result must be
/// awaited (or spawned) to start the adapter of that namespace.
fn attach<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, namespaces: &[Namespace]) -> Vec<A::InitRes> {
    namespaces
        .iter()
        .map(|ns| io.ns(ns.path.clone(), connect::on_connect::<A>.with(connect::authenticate::<A>)))
        .collect()
}
