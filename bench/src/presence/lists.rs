//! Each node's presence list, asked directly (not through the balancer)
//! both ways a client can: `GET /api/presence` and `presence:list`.

use std::collections::HashSet;
use std::net::SocketAddr;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::harness::Env;
use crate::http::one_connection;
use crate::sio::Socket;

/// One node's answers.
pub struct Listing {
    pub node: String,
    pub http: Count,
    pub socket: Count,
}

/// One answer: its users, and how many of them are the benchmark's.
pub struct Count {
    pub users: usize,
    pub ours: usize,
}

impl Listing {
    /// Both answers hold each of the `expected` users, and nobody else.
    pub fn whole(&self, expected: usize) -> bool {
        [&self.http, &self.socket].iter().all(|c| c.users == expected && c.ours == expected)
    }

    pub fn summary(&self) -> String {
        let show = |c: &Count| match c.users == c.ours {
            true => format!("{}", c.users),
            false => format!("{} ({} of ours)", c.users, c.ours),
        };
        format!("{}: HTTP {}, presence:list {}", self.node, show(&self.http), show(&self.socket))
    }
}

/// Reads `node`'s lists as user `u-0` of `tenant` (a second socket of a
/// user already online changes nobody's presence), for `users` users.
pub async fn read(env: &Env, name: &str, node: SocketAddr, tenant: &str, users: usize) -> anyhow::Result<Listing> {
    let token = env.token(tenant, "u-0", &[]);
    let response = one_connection().get(format!("http://{node}/api/presence")).bearer_auth(&token).send().await?;
    anyhow::ensure!(response.status().is_success(), "GET /api/presence on {name}: {}", response.status());
    let http: Value = response.json().await?;
    let mut socket = Socket::connect(node, &json!({ "token": token })).await.context("presence:list socket")?;
    let listed = socket.call("presence:list", 1).await;
    socket.close().await;
    Ok(Listing { node: name.to_owned(), http: count(&http, users)?, socket: count(&listed?, users)? })
}

/// `{ users: [{ userId, … }] }`: how many, and how many distinct `u-<i>` with `i < users`.
fn count(list: &Value, users: usize) -> anyhow::Result<Count> {
    let all = list["users"].as_array().with_context(|| {
        let text = list.to_string();
        format!("not a presence list: {}", text.get(..200).unwrap_or(&text))
    })?;
    let ours: HashSet<&str> = all
        .iter()
        .filter_map(|u| u["userId"].as_str())
        .filter(|id| id.strip_prefix("u-").and_then(|i| i.parse::<usize>().ok()).is_some_and(|i| i < users))
        .collect();
    Ok(Count { users: all.len(), ours: ours.len() })
}
