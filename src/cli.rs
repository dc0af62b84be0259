//! The command line: `serve` (the default), `migrate`, `token`, `append`,
//! `tail`, and `types check` / `types typescript`.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::auth::Verifier;
use crate::config::{Config, JwtConfig, LogConfig, SchemasConfig, StoreConfig, parse_duration};
use crate::schemas::Catalog;

#[derive(Parser, Debug)]
#[command(
    name = "eventfeed",
    version,
    about = "A durable event store with a realtime Socket.IO feed that clients can replay",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The server's settings, when no command is given.
    #[command(flatten)]
    pub config: Config,
    #[command(flatten)]
    pub log: LogConfig,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<Config>),
    /// Apply the store's migrations (and on PostgreSQL the SQL API, sql/api.sql) and exit.
    Migrate(StoreConfig),
    /// Print a development JWT signed with EVENTFEED_JWT_SECRET.
    Token {
        #[command(flatten)]
        who: Identity,
        /// How long the token lives (e.g. 24h, 30m).
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        ttl: Duration,
        #[command(flatten, next_help_heading = "Signing")]
        jwt: JwtConfig,
    },
    /// Append one event through a running server's HTTP API.
    Append {
        /// The stream the event is about, e.g. `invoice-42`.
        #[arg(long)]
        stream: String,
        /// The event's type, `domain:action`, e.g. `invoice:paid`.
        #[arg(long = "type")]
        event_type: String,
        /// The event's data, a JSON object.
        #[arg(long, default_value = "{}")]
        data: String,
        #[command(flatten, next_help_heading = "Server")]
        client: Client,
    },
    /// Print a running server's feed as JSON lines, like `tail -f`.
    Tail {
        /// Start after this cursor (default `0`: from the beginning).
        #[arg(long, default_value = "0")]
        after: String,
        /// Comma list of type patterns, e.g. `invoice:*,expense:approved`.
        #[arg(long)]
        types: Option<String>,
        #[command(flatten, next_help_heading = "Server")]
        client: Client,
    },
    /// The event type catalog (EVENTFEED_SCHEMAS).
    #[command(subcommand)]
    Types(TypesCommand),
}

#[derive(Subcommand, Debug)]
pub enum TypesCommand {
    /// Check every stored event, those appended with SQL included, against its
    /// type's schema; print each one that does not conform, and exit non-zero if any.
    Check {
        #[command(flatten)]
        schemas: SchemasConfig,
        #[command(flatten, next_help_heading = "Store")]
        store: StoreConfig,
    },
    /// Print the catalog as a TypeScript event map, for the client library's
    /// `EventFeed<Events>`.
    Typescript {
        #[command(flatten)]
        schemas: SchemasConfig,
    },
}

/// Who a minted token is for.
#[derive(Args, Debug)]
pub struct Identity {
    /// The tenant (the `tenant_id` claim).
    #[arg(long, default_value = "acme")]
    pub tenant: String,
    /// The user id (the `sub` claim).
    #[arg(long, default_value = "dev")]
    pub user: String,
    /// Display name (the `name` claim).
    #[arg(long)]
    pub name: Option<String>,
    /// Comma list of roles: publisher, auditor, admin, service.
    #[arg(long, value_delimiter = ',', default_value = "publisher")]
    pub roles: Vec<String>,
}

/// How to reach a running server, and as whom.
#[derive(Args, Debug)]
pub struct Client {
    /// The server's base URL. Default: http://EVENTFEED_ADDR.
    #[arg(long)]
    pub url: Option<String>,
    /// The address the server listens on, when --url is not given.
    #[arg(long, env = "EVENTFEED_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: std::net::SocketAddr,
    /// A token to send. Default: one minted with EVENTFEED_JWT_SECRET for --tenant and --user.
    #[arg(long, env = "EVENTFEED_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub who: Identity,
    #[command(flatten)]
    pub jwt: JwtConfig,
}

impl Client {
    fn base(&self) -> String {
        self.url.clone().unwrap_or_else(|| format!("http://{}", self.addr)).trim_end_matches('/').to_owned()
    }

    fn token(&self) -> anyhow::Result<String> {
        match &self.token {
            Some(token) => Ok(token.clone()),
            None => mint(&self.jwt, &self.who, Duration::from_secs(3600)),
        }
    }
}

fn mint(jwt: &JwtConfig, who: &Identity, ttl: Duration) -> anyhow::Result<String> {
    Verifier::from_config(jwt)?.mint(&who.tenant, &who.user, who.name.as_deref(), &who.roles, ttl.as_secs() as i64)
}

/// Runs the commands that are not `serve`.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => anyhow::bail!("serve is run by main"),
        Command::Migrate(store) => {
            let store = crate::store::open(&store).await?;
            println!("migrations applied ({} store)", store.kind());
            store.close().await;
        }
        Command::Token { who, ttl, jwt } => println!("{}", mint(&jwt, &who, ttl)?),
        Command::Append { client, stream, event_type, data } => {
            let data: Value = serde_json::from_str(&data).context("--data is not JSON")?;
            let body = serde_json::json!({ "stream": stream, "type": event_type, "data": data });
            let response = reqwest::Client::new()
                .post(format!("{}/api/events", client.base()))
                .bearer_auth(client.token()?)
                .json(&body)
                .send()
                .await
                .context("cannot reach the server: is it running? (--url)")?;
            let status = response.status();
            let text = response.text().await?;
            anyhow::ensure!(status.is_success(), "the server answered {status}: {text}");
            println!("{text}");
        }
        Command::Tail { client, after, types } => tail(&client, after, types).await?,
        Command::Types(TypesCommand::Typescript { schemas }) => {
            print!("{}", crate::schemas::typescript::render(&catalog(&schemas)?))
        }
        Command::Types(TypesCommand::Check { schemas, store }) => check(&catalog(&schemas)?, &store).await?,
    }
    Ok(())
}

/// The catalog a `types` command works on: the directory must be named.
fn catalog(schemas: &SchemasConfig) -> anyhow::Result<Catalog> {
    let dir = schemas.dir.as_deref().context("name the schema directory with --schemas or EVENTFEED_SCHEMAS")?;
    Catalog::load(dir, schemas.closed).map_err(|e| anyhow::anyhow!("EVENTFEED_SCHEMAS: {e}"))
}

async fn check(catalog: &Catalog, store: &StoreConfig) -> anyhow::Result<()> {
    let store = crate::store::open(store).await?;
    let walked = crate::schemas::check::walk(&store, catalog, &mut std::io::stdout().lock()).await;
    store.close().await;
    let tally = walked?;
    anyhow::ensure!(
        tally.nonconforming == 0,
        "{} of {} stored events do not conform to their type's schema",
        tally.nonconforming,
        tally.checked
    );
    println!("all {} stored events conform to their type's schema", tally.checked);
    Ok(())
}

async fn tail(client: &Client, mut after: String, types: Option<String>) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("{}/api/events", client.base());
    let token = client.token()?;
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn help(sub: &str) -> String {
        Cli::command().find_subcommand_mut(sub).unwrap().render_long_help().to_string()
    }

    #[test]
    fn each_command_shows_only_the_settings_it_uses() {
        for (sub, absent) in [
            ("token", &["--addr", "--database-url", "--cors-origins"][..]),
            ("migrate", &["--jwt-secret", "--addr", "--retention"]),
            ("append", &["--database-url", "--retention", "--namespaces"]),
            ("tail", &["--database-url", "--max-event-bytes"]),
        ] {
            let text = help(sub);
            for flag in absent {
                assert!(!text.contains(flag), "{sub} --help shows {flag}:\n{text}");
            }
        }
        // Its own flags come first.
        let append = help("append");
        assert!(append.find("--stream").unwrap() < append.find("--url").unwrap());
    }

    #[test]
    fn the_algorithm_ignores_case_and_the_server_takes_its_flags_without_serve() {
        let cli = Cli::try_parse_from(["eventfeed", "--addr", "127.0.0.1:0", "--jwt-alg", "hs256"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.config.jwt.alg, Some(crate::config::JwtAlg::HS256));
        assert!(Cli::try_parse_from(["eventfeed", "serve", "--addr", "127.0.0.1:0"]).is_ok());
    }
}
