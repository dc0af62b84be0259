//! Who is online, for callers outside the socket layer (`GET /api/presence`).
//!
//! The roster is created with the app state, before the Socket.IO server
//! exists (that server holds the state), and bound to it once it is built.
//! It asks every namespace through its adapter, so the PostgreSQL adapter
//! answers for every node.

use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, try_join_all};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::presence::{self, Online, tenant_room};
use crate::error::{Error, Result};

/// The rooms of every socket in one room, across namespaces and nodes.
type RoomsQuery = Arc<dyn Fn(String) -> BoxFuture<'static, anyhow::Result<Vec<String>>> + Send + Sync>;

#[derive(Default)]
pub struct Roster {
    rooms: Mutex<Option<RoomsQuery>>,
}

impl Roster {
    /// Binds the roster to the Socket.IO server serving these namespaces.
    pub(super) fn bind<A: Adapter>(&self, io: &SocketIo<A>, paths: Vec<String>) {
        let io = io.clone();
        let query: RoomsQuery = Arc::new(move |room: String| {
            let queries: Vec<_> =
                paths.iter().filter_map(|path| io.of(path)).map(|ns| ns.within(room.clone()).rooms()).collect();
            Box::pin(async move {
                let per_namespace = try_join_all(queries).await.map_err(|e| anyhow::anyhow!("presence query: {e}"))?;
                Ok(per_namespace.into_iter().flatten().map(|r| r.into_owned()).collect())
            })
        });
        *self.rooms.lock().unwrap_or_else(|e| e.into_inner()) = Some(query);
    }

    /// Drops the Socket.IO server handle (it holds the state that holds the
    /// roster), so a stopped server is freed.
    pub fn unbind(&self) {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Everyone connected in `tenant`, on every namespace and node.
    pub async fn online(&self, tenant: &str) -> Result<Vec<Online>> {
        let query = self.rooms.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let query = query.ok_or_else(|| Error::internal(anyhow::anyhow!("the presence roster is not bound")))?;
        let rooms = query(tenant_room(tenant)).await.map_err(Error::Internal)?;
        Ok(presence::tally(rooms.iter().map(String::as_str), tenant))
    }
}
