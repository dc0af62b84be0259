//! Typed configuration, loaded once from flags and environment variables
//! (docs/configuration.md). Secrets never print in `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// The server's settings. Each subcommand takes only the groups it uses.
#[derive(Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub store: StoreConfig,

    /// Address to listen on. Port 0 picks a free port and prints it.
    #[arg(long, env = "EVENTFEED_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub jwt: JwtConfig,

    /// Largest serialized `data` of one event, in bytes.
    #[arg(long, env = "EVENTFEED_MAX_EVENT_BYTES", default_value_t = 256 * 1024)]
    pub max_event_bytes: usize,

    /// Delete events older than this (e.g. 90d, 12h, 30m). Unset: keep forever.
    #[arg(long, env = "EVENTFEED_RETENTION", value_parser = parse_retention)]
    pub retention: Option<Duration>,

    /// Comma list of allowed browser origins, or `*`. Unset: no CORS headers.
    #[arg(long, env = "EVENTFEED_CORS_ORIGINS", value_parser = parse_origins)]
    pub cors_origins: Option<Origins>,

    /// Socket.IO namespaces to serve, each with an optional default type
    /// filter: `/,/dashboard=kpi:*|metrics:*`.
    #[arg(long, env = "EVENTFEED_NAMESPACES", default_value = "/")]
    pub namespaces: String,

    /// How long a user whose last socket closed stays online, so that a
    /// reconnect (to any node) within it announces nothing.
    #[arg(long, env = "EVENTFEED_PRESENCE_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub presence_grace: Duration,

    /// Above this many users online in a tenant, presence diffs carry only
    /// the count, and `user:online` / `user:offline` are not sent.
    #[arg(long, env = "EVENTFEED_PRESENCE_LIST_MAX", default_value_t = 200)]
    pub presence_list_max: usize,

    /// After SIGTERM, `/ready` answers 503 while the node keeps serving this
    /// long (0: not at all); then it answers what it has received and exits.
    #[arg(long, env = "EVENTFEED_DRAIN", default_value = "5s", value_parser = parse_duration)]
    pub drain: Duration,

    #[command(flatten)]
    pub schemas: SchemasConfig,
}

/// The event type catalog: a directory of JSON Schemas, one per type.
#[derive(Args, Clone, Debug, Default)]
pub struct SchemasConfig {
    /// Directory of JSON Schema (2020-12) files, one per event type:
    /// `invoice.paid.json` describes `invoice:paid`. Read at start and on SIGHUP.
    #[arg(long = "schemas", env = "EVENTFEED_SCHEMAS")]
    pub dir: Option<PathBuf>,

    /// Refuse appends of types that have no schema.
    #[arg(long = "schemas-closed", env = "EVENTFEED_SCHEMAS_CLOSED")]
    pub closed: bool,
}

/// Where events are stored.
#[derive(Args, Clone, Debug)]
pub struct StoreConfig {
    /// PostgreSQL URL (postgres://…). Unset: the embedded SQLite store in --data-file.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// The embedded store's file, used when DATABASE_URL is unset.
    #[arg(long, env = "EVENTFEED_DATA_FILE", default_value = "eventfeed.db")]
    pub data_file: PathBuf,

    /// Comma list of PostgreSQL streaming replicas of DATABASE_URL that serve reads of history.
    #[arg(long, env = "EVENTFEED_REPLICA_URLS", hide_env_values = true, value_parser = parse_replica_urls)]
    pub replica_urls: Option<ReplicaUrls>,

    /// A replica further behind the primary than this is skipped until it catches up.
    #[arg(long, env = "EVENTFEED_REPLICA_MAX_LAG", default_value = "10s", value_parser = parse_duration)]
    pub replica_max_lag: Duration,

    /// On PostgreSQL, the span of time each partition of the events table holds.
    #[arg(long, env = "EVENTFEED_PARTITION", value_enum, default_value_t = PartitionStep::Month)]
    pub partition: PartitionStep,
}

/// The span of one partition of the events table.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionStep {
    Month,
    Week,
    Day,
}

impl PartitionStep {
    /// The name `date_trunc` knows it by.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionStep::Month => "month",
            PartitionStep::Week => "week",
            PartitionStep::Day => "day",
        }
    }
}

/// The replicas' URLs, each a valid `postgres://` URL. Never printed: they
/// may hold passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplicaUrls(pub Vec<String>);

impl fmt::Debug for ReplicaUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplicaUrls({} hidden)", self.0.len())
    }
}

/// Parses a comma list of `postgres://` URLs; names (by place, not by
/// content, which may hold a password) the first one that is not.
pub fn parse_replica_urls(s: &str) -> Result<ReplicaUrls, String> {
    let urls: Vec<String> = s.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
    for (i, url) in urls.iter().enumerate() {
        let scheme = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !scheme || url.parse::<sqlx::postgres::PgConnectOptions>().is_err() {
            return Err(format!("replica URL number {} is not a valid postgres:// URL", i + 1));
        }
    }
    Ok(ReplicaUrls(urls))
}

/// Logging, for every command.
#[derive(Args, Clone, Debug)]
pub struct LogConfig {
    /// Log filter, e.g. `info` or `eventfeed=debug,sqlx=warn`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", global = true)]
    pub filter: String,

    /// Log format.
    #[arg(long = "log-format", env = "EVENTFEED_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub format: LogFormat,
}

#[derive(Args, Clone, Debug)]
pub struct JwtConfig {
    /// Shared secret for HS256 tokens.
    #[arg(long = "jwt-secret", env = "EVENTFEED_JWT_SECRET", hide_env_values = true)]
    pub secret: Option<Secret>,

    /// PEM file with the public key for RS256 or ES256 tokens.
    #[arg(long = "jwt-public-key", env = "EVENTFEED_JWT_PUBLIC_KEY")]
    pub public_key: Option<PathBuf>,

    /// The one accepted algorithm. Default: HS256 with a secret, RS256 with a public key.
    #[arg(long = "jwt-alg", env = "EVENTFEED_JWT_ALG", value_enum, ignore_case = true)]
    pub alg: Option<JwtAlg>,

    /// The claim that names the tenant.
    #[arg(long = "jwt-tenant-claim", env = "EVENTFEED_JWT_TENANT_CLAIM", default_value = "tenant_id")]
    pub tenant_claim: String,

    /// Required `iss`, when set.
    #[arg(long = "jwt-issuer", env = "EVENTFEED_JWT_ISSUER")]
    pub issuer: Option<String>,

    /// Required `aud`, when set.
    #[arg(long = "jwt-audience", env = "EVENTFEED_JWT_AUDIENCE")]
    pub audience: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "UPPER")]
pub enum JwtAlg {
    HS256,
    RS256,
    ES256,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A string that does not show itself in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// One namespace and the type patterns it delivers by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub path: String,
    pub default_types: crate::event::TypeFilter,
}

impl Config {
    /// Parses `EVENTFEED_NAMESPACES`.
    pub fn namespaces(&self) -> Result<Vec<Namespace>, String> {
        let mut out: Vec<Namespace> = Vec::new();
        for item in self.namespaces.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (path, types) = item.split_once('=').unwrap_or((item, ""));
            if !path.starts_with('/') {
                return Err(format!("namespace {path:?} must start with '/'"));
            }
            let default_types =
                crate::event::TypeFilter::parse(types.split('|').map(str::trim).filter(|s| !s.is_empty()))
                    .map_err(|e| format!("namespace {path}: {e}"))?;
            if out.iter().any(|n| n.path == path) {
                return Err(format!("namespace {path} is listed twice"));
            }
            out.push(Namespace { path: path.to_owned(), default_types });
        }
        if out.is_empty() {
            return Err("EVENTFEED_NAMESPACES lists no namespace".into());
        }
        Ok(out)
    }
}

/// Parses `90d`, `12h`, `30m`, `45s`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a duration like 90d, 12h, 30m, 45s or 500ms"))?;
    let millis = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" | "" => 1_000,
        "ms" => 1,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use d, h, m, s or ms)")),
    };
    n.checked_mul(millis).map(Duration::from_millis).ok_or_else(|| format!("{s:?} is too long"))
}

/// Longest retention: events older than a century are not a thing to prune.
const MAX_RETENTION: Duration = Duration::from_secs(36_500 * 86_400);

/// A retention period: a duration of at most 36500d.
pub fn parse_retention(s: &str) -> Result<Duration, String> {
    let keep = parse_duration(s)?;
    if keep.is_zero() || keep > MAX_RETENTION {
        return Err(format!("{s:?} is out of range (1s to 36500d)"));
    }
    Ok(keep)
}

/// The browser origins allowed by CORS and at Socket.IO handshakes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origins {
    Any,
    /// Each `scheme://host[:port]`, lower-case, as browsers send `Origin`.
    List(Vec<String>),
}

impl Origins {
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// Parses `*` or a comma list of origins; names the first one that is not.
pub fn parse_origins(s: &str) -> Result<Origins, String> {
    if s.trim() == "*" {
        return Ok(Origins::Any);
    }
    let list = s.split(',').map(str::trim).filter(|o| !o.is_empty());
    let origins = list.map(|o| parse_origin(o).map(|()| o.to_ascii_lowercase())).collect::<Result<Vec<_>, _>>()?;
    if origins.is_empty() {
        return Err("no origin listed (use * or a comma list of https://host[:port])".into());
    }
    Ok(Origins::List(origins))
}

/// An origin is `http` or `https`, `://`, a host and an optional port; nothing else.
fn parse_origin(o: &str) -> Result<(), String> {
    let bad = || format!("{o:?} is not an origin like https://app.example.com or http://localhost:8080");
    let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")).ok_or_else(bad)?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok =
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    if host_ok && port_ok { Ok(()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
    }

    #[test]
    fn retention_is_bounded() {
        assert_eq!(parse_retention("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert!(parse_retention("100000000d").is_err());
        assert!(parse_retention("0s").is_err());
    }

    #[test]
    fn origins() {
        assert_eq!(parse_origins("*"), Ok(Origins::Any));
        let list = parse_origins("https://App.example.com, http://localhost:8080,http://[::1]:3000").unwrap();
        assert!(list.allows("https://app.example.com"));
        assert!(list.allows("http://localhost:8080"));
        assert!(!list.allows("http://localhost:8081"));
        assert!(!list.allows("null"));
        for bad in
            ["not an origin,@@", "@@", "ftp://x", "https://x/path", "https://", "http://h:99999", "https://a b", ""]
        {
            let err = parse_origins(bad).unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
        assert!(parse_origins("not an origin,@@").unwrap_err().contains("not an origin"));
    }

    #[test]
    fn replica_urls() {
        let urls = parse_replica_urls("postgres://u:pw@r1:5432/db, postgresql://r2/db,").unwrap();
        assert_eq!(urls.0.len(), 2);
        assert!(!format!("{urls:?}").contains("pw"));
        let err = parse_replica_urls("postgres://r1/db,mysql://u:pw@r2/db").unwrap_err();
        assert!(err.contains("number 2") && !err.contains("pw"), "{err}");
        assert_eq!(parse_replica_urls("").unwrap().0.len(), 0);
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "Secret(***)");
    }
}
