//! What every benchmark stands on: a fresh database, the release server
//! started on it as a child process, tokens, and the teardown of both.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, PgPool};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// Where the server binary and PostgreSQL are; shared by every benchmark.
#[derive(clap::Args, Clone, Debug)]
pub struct Setup {
    /// The server binary (built with `cargo build --release`).
    #[arg(long, global = true, default_value = "target/release/eventfeed")]
    pub server_bin: PathBuf,
    /// PostgreSQL URL of a database to connect to for CREATE/DROP DATABASE;
    /// each run creates its own `ef_bench_<random>` next to it.
    #[arg(
        long,
        global = true,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// Keep the benchmark database afterwards (its name is printed).
    #[arg(long, global = true)]
    pub keep_db: bool,
    /// RUST_LOG for the server (its log goes to a file in the temp directory).
    #[arg(long, global = true, default_value = "warn")]
    pub server_log: String,
}

/// One run's database and server. Call `finish` to tear both down.
pub struct Env {
    pub db_url: String,
    pub db_name: String,
    pub pool: PgPool,
    pub server: Server,
    secret: String,
    setup: Setup,
    /// Extra environment of every server started (`EVENTFEED_…` settings).
    vars: Vec<(String, String)>,
}

impl Env {
    /// Starts a server on a fresh database, measures with `f`, and cleans up
    /// whatever `f` returned.
    pub async fn run<T>(setup: &Setup, f: impl AsyncFnOnce(&Env) -> anyhow::Result<T>) -> anyhow::Result<T> {
        Env::run_with(setup, Vec::new(), f).await
    }

    /// [`Env::run`] with extra environment `vars` for the server (and for
    /// any other node started with [`Env::another_server`]).
    pub async fn run_with<T>(
        setup: &Setup,
        vars: Vec<(String, String)>,
        f: impl AsyncFnOnce(&Env) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        Env::run_named(setup, fresh_db_name(), vars, f).await
    }

    /// [`Env::run_with`] on a database of a name chosen beforehand (from
    /// [`fresh_db_name`]), for settings that name it.
    pub async fn run_named<T>(
        setup: &Setup,
        db_name: String,
        vars: Vec<(String, String)>,
        f: impl AsyncFnOnce(&Env) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let env = Env::start(setup, db_name, vars).await?;
        let result = f(&env).await;
        env.finish().await;
        result
    }

    /// Creates the database `db_name`, starts the server on it (which
    /// migrates it), and opens a small pool for the benchmark's own SQL.
    pub async fn start(setup: &Setup, db_name: String, vars: Vec<(String, String)>) -> anyhow::Result<Env> {
        let db_url = with_database(&setup.database_url, &db_name)?;
        let mut admin = PgConnection::connect(&setup.database_url).await.with_context(|| {
            format!("cannot connect to {} (is PostgreSQL running? --database-url)", setup.database_url)
        })?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {db_name}"))).execute(&mut admin).await?;
        admin.close().await?;
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let server = match Server::start(setup, &db_url, &secret, &vars).await {
            Ok(server) => server,
            Err(e) => {
                drop_database(setup, &db_name).await;
                return Err(e);
            }
        };
        println!("# database {db_name}, server pid {}, server log {}", server.pid, server.log.display());
        let pool = PgPoolOptions::new().max_connections(4).connect(&db_url).await?;
        Ok(Env { db_url, db_name, pool, server, secret, setup: setup.clone(), vars })
    }

    /// One more server on the same database, as another node of the cluster.
    /// The caller stops it.
    pub async fn another_server(&self) -> anyhow::Result<Server> {
        let server = Server::start(&self.setup, &self.db_url, &self.secret, &self.vars).await?;
        println!("# another server: pid {}, log {}", server.pid, server.log.display());
        Ok(server)
    }

    /// Base URL of the server's HTTP API.
    pub fn http(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// An HS256 token for `user` of `tenant`, valid for a day.
    pub fn token(&self, tenant: &str, user: &str, roles: &[&str]) -> String {
        let exp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() + 86_400);
        let claims = json!({ "sub": user, "tenant_id": tenant, "exp": exp, "roles": roles, "name": user });
        let key = EncodingKey::from_secret(self.secret.as_bytes());
        // Encoding a JSON object with an HMAC key cannot fail.
        jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap_or_default()
    }

    /// `SHOW synchronous_commit` on a fresh connection to the benchmark database.
    pub async fn synchronous_commit(&self) -> anyhow::Result<String> {
        Ok(sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&self.pool).await?)
    }

    /// Stops the server and drops the database (unless `--keep-db`).
    pub async fn finish(self) {
        self.pool.close().await;
        self.server.stop().await;
        if self.setup.keep_db {
            println!("# kept database {}", self.db_name);
        } else {
            drop_database(&self.setup, &self.db_name).await;
        }
    }
}

/// A new `ef_bench_<random>` database name.
pub fn fresh_db_name() -> String {
    format!("ef_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn drop_database(setup: &Setup, name: &str) {
    let dropped = async {
        let mut admin = PgConnection::connect(&setup.database_url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut admin)
            .await?;
        admin.close().await
    };
    if let Err(e) = dropped.await {
        eprintln!("# could not drop database {name}: {e}");
    }
}

/// `postgres://u@h:p/x?o` with the database `x` replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let Some((scheme, rest)) = base.split_once("://") else { bail!("--database-url {url:?} is not a postgres:// URL") };
    let authority = rest.split('/').next().unwrap_or(rest);
    Ok(match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

/// The release server as a child process.
pub struct Server {
    child: Child,
    pub addr: std::net::SocketAddr,
    pub pid: u32,
    pub log: PathBuf,
    /// Held open: the server may print again, and a closed pipe would kill it.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    async fn start(setup: &Setup, db_url: &str, secret: &str, vars: &[(String, String)]) -> anyhow::Result<Server> {
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let bin = std::fs::canonicalize(&setup.server_bin).with_context(|| {
            format!("no server binary at {} (run `cargo build --release`, or --server-bin)", setup.server_bin.display())
        })?;
        // The first server's log is named for this process; later ones get a number.
        let log = match STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
            0 => format!("eventfeed-bench-server-{}.log", std::process::id()),
            n => format!("eventfeed-bench-server-{}-{}.log", std::process::id(), n + 1),
        };
        let log = std::env::temp_dir().join(log);
        let mut command = Command::new(&bin);
        // Run from the temp directory so that no `.env` of the caller applies.
        command.arg("serve").current_dir(std::env::temp_dir());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("EVENTFEED_") || key == "DATABASE_URL" {
                command.env_remove(key);
            }
        }
        command
            .env("DATABASE_URL", db_url)
            .env("EVENTFEED_ADDR", "127.0.0.1:0")
            .env("EVENTFEED_JWT_SECRET", secret)
            .env("RUST_LOG", &setup.server_log)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let addr = tokio::time::timeout(Duration::from_secs(60), listening(&mut stdout))
            .await
            .map_err(|_| anyhow::anyhow!("the server did not print `listening on` within 60 s; see {}", log.display()))?
            .with_context(|| format!("the server did not start; see {}", log.display()))?;
        Ok(Server { child, addr, pid, log, _stdout: stdout })
    }

    /// The server's resident memory, in KiB, from /proc/<pid>/status.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
        Ok(line.split_whitespace().nth(1).context("bad VmRSS")?.parse()?)
    }

    /// Sends SIGTERM, as a deploy does: the server drains, then stops.
    pub fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// Waits up to `limit` for the server to exit; whether it did.
    pub async fn exited(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.child.wait()).await.is_ok()
    }

    /// SIGTERM (a graceful shutdown), then SIGKILL after 10 s.
    pub async fn stop(mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            eprintln!("# the server had already exited ({status}); see {}", self.log.display());
            return;
        }
        self.terminate();
        if !self.exited(Duration::from_secs(10)).await {
            eprintln!("# the server did not stop within 10 s of SIGTERM; killing it");
            let _ = self.child.kill().await;
        }
    }
}

async fn listening(stdout: &mut BufReader<ChildStdout>) -> anyhow::Result<std::net::SocketAddr> {
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).await? == 0 {
            bail!("the server exited before listening");
        }
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            return Ok(addr.parse()?);
        }
    }
}

/// Raises the open-file limit to its hard maximum (10,000 sockets need it);
/// the server, started later, inherits it.
pub fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

/// A file in the temp directory, named for this process.
pub fn temp_file(name: &str) -> PathBuf {
    Path::new(&std::env::temp_dir()).join(format!("eventfeed-bench-{}-{name}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x").unwrap(), "postgres://u@h:5432/x");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x").unwrap(),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x").unwrap(), "postgres://u@h/x");
        assert!(with_database("nope", "x").is_err());
    }
}
