//! A PostgreSQL primary and a streaming replica of its own, for `replicas`:
//! `initdb` and `pg_basebackup -R` into a temporary directory, on free
//! ports, run as the `postgres` user when the benchmark runs as root. Never
//! the shared cluster. Both are stopped and the directory deleted on drop,
//! whether the benchmark succeeded or not.
//!
//! The same steps as the test suite's `tests/api/common/cluster.rs`, with
//! errors instead of panics, and PostgreSQL's default settings (fsync on)
//! apart from where it listens: the benchmark measures appends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, PgConnection};

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    as_root: bool,
    /// More `-c` settings of both nodes.
    settings: String,
    pub primary_port: u16,
    pub replica_port: u16,
}

/// The nodes, in the order they are stopped.
const NODES: [&str; 2] = ["replica", "primary"];

impl Cluster {
    /// A primary, and a replica streaming from it, both running; with
    /// `statements`, both load `pg_stat_statements`.
    pub async fn start(statements: bool) -> anyhow::Result<Cluster> {
        let settings = if statements { " -c shared_preload_libraries=pg_stat_statements" } else { "" };
        let cluster = tokio::task::spawn_blocking(move || Cluster::start_blocking(settings)).await??;
        cluster.wait_streaming().await?;
        Ok(cluster)
    }

    fn start_blocking(settings: &str) -> anyhow::Result<Cluster> {
        let bin = PathBuf::from(Command::new("pg_config").arg("--bindir").output_text()?.trim());
        let as_root = Command::new("id").arg("-u").output_text()?.trim() == "0";
        let mktemp = as_user(as_root, Path::new("mktemp")).args(["-d", "/tmp/ef_bench_replicas.XXXXXX"]).output_text();
        let dir = PathBuf::from(mktemp?.trim());
        // From here on, dropping `cluster` stops whatever started and deletes the directory.
        let (primary_port, replica_port) = (free_port()?, free_port()?);
        let cluster = Cluster { dir, bin, as_root, settings: settings.to_owned(), primary_port, replica_port };
        let primary = cluster.dir.join("primary");
        cluster
            .tool("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&primary)
            .output_text()?;
        cluster.pg_ctl_start("primary", cluster.primary_port)?;
        cluster
            .tool("pg_basebackup")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-R", "--checkpoint=fast", "-p"])
            .arg(cluster.primary_port.to_string())
            .arg("-D")
            .arg(cluster.dir.join("replica"))
            .output_text()?;
        cluster.pg_ctl_start("replica", cluster.replica_port)?;
        Ok(cluster)
    }

    fn tool(&self, name: &str) -> Command {
        as_user(self.as_root, &self.bin.join(name))
    }

    fn pg_ctl_start(&self, node: &str, port: u16) -> anyhow::Result<()> {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} -c max_connections=200{}",
            self.settings,
            dir = self.dir.display()
        );
        let log = self.log(node);
        let started = self
            .tool("pg_ctl")
            .args(["-w", "-o", &options, "-l"])
            .arg(&log)
            .arg("-D")
            .arg(self.dir.join(node))
            .arg("start")
            .output_text();
        started.map(drop).with_context(|| {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            format!(
                "the {node} did not start; its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
    }

    fn log(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.log"))
    }

    /// Waits until the primary shows its replica streaming.
    async fn wait_streaming(&self) -> anyhow::Result<()> {
        let mut primary = PgConnection::connect(&self.primary_url("postgres")).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let streaming: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                    .fetch_one(&mut primary)
                    .await?;
            if streaming > 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the replica is not streaming 30 s after it started; see {}", self.log("replica").display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn primary_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.primary_port)
    }

    pub fn replica_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.replica_port)
    }

    /// The postmaster's pid of `node` (`primary` or `replica`), from its `postmaster.pid`.
    pub fn postmaster(&self, node: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join(node).join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in NODES {
            if self.dir.join(node).join("postmaster.pid").exists() {
                let stop = self
                    .tool("pg_ctl")
                    .args(["-w", "-m", "immediate", "-D"])
                    .arg(self.dir.join(node))
                    .arg("stop")
                    .output();
                if let Err(e) = stop {
                    eprintln!("# could not stop the benchmark's {node}: {e}");
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("# could not delete {}: {e}", self.dir.display());
        }
    }
}

/// `program`, run as the `postgres` user when this process is root
/// (PostgreSQL refuses to run as root), else as this user.
fn as_user(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

trait OutputText {
    /// Runs the command; its standard output, or an error with its standard error.
    fn output_text(&mut self) -> anyhow::Result<String>;
}

impl OutputText for Command {
    fn output_text(&mut self) -> anyhow::Result<String> {
        let out = self.output().with_context(|| format!("cannot run {self:?}"))?;
        if !out.status.success() {
            bail!("{self:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
