//! A TCP load balancer inside the benchmark, as in front of a cluster: each
//! new connection goes to the next node in turn; a node that refuses the
//! connection (it stopped accepting) is skipped for the next one. Bytes are
//! copied both ways until either side closes, so a node's Engine.IO close
//! reaches the client as it would through a real balancer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Copy buffer per direction: presence packets are small, and a list
/// answer simply takes more reads.
const BUFFER: usize = 4096;

/// One node behind the balancer.
pub struct Node {
    pub addr: SocketAddr,
    /// Connections to it open now.
    open: AtomicUsize,
    /// Connections it has been given in all.
    given: AtomicU64,
    /// Connections it refused.
    refused: AtomicU64,
}

impl Node {
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn given(&self) -> u64 {
        self.given.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The balancer; it stops when dropped.
pub struct Balancer {
    pub addr: SocketAddr,
    pub nodes: Arc<Vec<Node>>,
    /// Client connections dropped because every node refused.
    unplaced: Arc<AtomicU64>,
    accepting: JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free loopback port in front of `nodes`.
    pub async fn start(nodes: &[SocketAddr]) -> anyhow::Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let nodes: Arc<Vec<Node>> = Arc::new(
            nodes
                .iter()
                .map(|&addr| Node {
                    addr,
                    open: AtomicUsize::new(0),
                    given: AtomicU64::new(0),
                    refused: AtomicU64::new(0),
                })
                .collect(),
        );
        let unplaced = Arc::new(AtomicU64::new(0));
        let accepting = tokio::spawn(accept(listener, nodes.clone(), unplaced.clone()));
        Ok(Balancer { addr, nodes, unplaced, accepting })
    }

    pub fn unplaced(&self) -> u64 {
        self.unplaced.load(Ordering::Relaxed)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, nodes: Arc<Vec<Node>>, unplaced: Arc<AtomicU64>) {
    let mut turn = 0;
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors, most likely: some will close.
                eprintln!("# balancer: cannot accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let first = turn;
        turn = (turn + 1) % nodes.len();
        let (nodes, unplaced) = (nodes.clone(), unplaced.clone());
        tokio::spawn(async move {
            match place(&nodes, first).await {
                Some((index, upstream)) => proxy(client, upstream, &nodes[index]).await,
                None => {
                    unplaced.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// Connects to the node whose turn it is, or to the next that accepts.
async fn place(nodes: &[Node], first: usize) -> Option<(usize, TcpStream)> {
    for k in 0..nodes.len() {
        let index = (first + k) % nodes.len();
        match TcpStream::connect(nodes[index].addr).await {
            Ok(upstream) => return Some((index, upstream)),
            Err(_) => {
                nodes[index].refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    None
}

async fn proxy(mut client: TcpStream, mut upstream: TcpStream, node: &Node) {
    node.given.fetch_add(1, Ordering::Relaxed);
    node.open.fetch_add(1, Ordering::Relaxed);
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let _ = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, BUFFER, BUFFER).await;
    node.open.fetch_sub(1, Ordering::Relaxed);
}
