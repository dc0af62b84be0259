//! The command line: `serve` (the default), `migrate`, `token`, `append`, `tail`.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::auth::Verifier;
use crate::config::{Config, parse_duration};

#[derive(Parser, Debug)]
#[command(
    name = "eventfeed",
    version,
    about = "A durable event store with a realtime Socket.IO feed that clients can replay"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply the store's migrations and exit.
    Migrate,
    /// Print a development JWT signed with EVENTFEED_JWT_SECRET.
    Token {
        #[command(flatten)]
        who: Identity,
        /// How long the token lives (e.g. 24h, 30m).
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
    },
    /// Append one event through a running server's HTTP API.
    Append {
        #[command(flatten)]
        client: Client,
        #[arg(long)]
        stream: String,
        #[arg(long = "type")]
        event_type: String,
        /// The event's data, a JSON object.
        #[arg(long, default_value = "{}")]
        data: String,
    },
    /// Print a running server's feed as JSON lines, like `tail -f`.
    Tail {
        #[command(flatten)]
        client: Client,
        /// Start after this cursor (default `0`: from the beginning).
        #[arg(long, default_value = "0")]
        after: String,
        /// Comma list of type patterns, e.g. `invoice:*,expense:approved`.
        #[arg(long)]
        types: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct Identity {
    #[arg(long, default_value = "acme")]
    pub tenant: String,
    #[arg(long, default_value = "dev")]
    pub user: String,
    /// Display name (the `name` claim).
    #[arg(long)]
    pub name: Option<String>,
    /// Comma list of roles: publisher, auditor, admin, service.
    #[arg(long, value_delimiter = ',', default_value = "publisher")]
    pub roles: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Client {
    #[command(flatten)]
    pub who: Identity,
    /// The server's base URL. Default: http://EVENTFEED_ADDR.
    #[arg(long)]
    pub url: Option<String>,
    /// A token to send. Default: one minted with EVENTFEED_JWT_SECRET.
    #[arg(long, env = "EVENTFEED_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Client {
    fn base(&self, config: &Config) -> String {
        self.url.clone().unwrap_or_else(|| format!("http://{}", config.addr)).trim_end_matches('/').to_owned()
    }

    fn token(&self, config: &Config) -> anyhow::Result<String> {
        match &self.token {
            Some(token) => Ok(token.clone()),
            None => mint(config, &self.who, Duration::from_secs(3600)),
        }
    }
}

fn mint(config: &Config, who: &Identity, ttl: Duration) -> anyhow::Result<String> {
    Verifier::from_config(&config.jwt)?.mint(
        &who.tenant,
        &who.user,
        who.name.as_deref(),
        &who.roles,
        ttl.as_secs() as i64,
    )
}

/// Runs the commands that are not `serve`.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => unreachable!("serve is run by main"),
        Command::Migrate => {
            let store = crate::store::open(&config).await?;
            println!("migrations applied ({} store)", store.kind());
            store.close().await;
        }
        Command::Token { who, ttl } => println!("{}", mint(&config, &who, ttl)?),
        Command::Append { client, stream, event_type, data } => {
            let data: Value = serde_json::from_str(&data).context("--data is not JSON")?;
            let body = serde_json::json!({ "stream": stream, "type": event_type, "data": data });
            let response = reqwest::Client::new()
                .post(format!("{}/api/events", client.base(&config)))
                .bearer_auth(client.token(&config)?)
                .json(&body)
                .send()
                .await
                .context("cannot reach the server: is it running? (--url)")?;
            let status = response.status();
            let text = response.text().await?;
            anyhow::ensure!(status.is_success(), "the server answered {status}: {text}");
            println!("{text}");
        }
        Command::Tail { client, after, types } => tail(&config, &client, after, types).await?,
    }
    Ok(())
}

async fn tail(config: &Config, client: &Client, mut after: String, types: Option<String>) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("{}/api/events", client.base(config));
    let token = client.token(config)?;
    loop {
        let mut query = vec![("after", after.clone()), ("wait", "30".to_owned()), ("limit", "1000".to_owned())];
        if let Some(types) = &types {
            query.push(("types", types.clone()));
        }
        let response = http
            .get(&url)
            .bearer_auth(&token)
            .query(&query)
            .send()
            .await
            .context("cannot reach the server: is it running? (--url)")?;
        let status = response.status();
        let page: Value = response.json().await.context("the server's answer is not JSON")?;
        anyhow::ensure!(status.is_success(), "the server answered {status}: {page}");
        for event in page["events"].as_array().into_iter().flatten() {
            println!("{event}");
        }
        if let Some(cursor) = page["cursor"].as_str() {
            after = cursor.to_owned();
        }
    }
}
