//! A PostgreSQL primary and a streaming replica of its own, for the replica
//! tests: `initdb` and `pg_basebackup -R` into a temporary directory, on free
//! ports, run as the `postgres` user when the tests run as root. Never the
//! shared cluster. Stopped and deleted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::{Connection, Executor, PgConnection};

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    pub primary_port: u16,
    pub replica_port: u16,
}

/// The database the tests' servers use on the primary (and so on the replica).
pub const DB: &str = "eventfeed";

impl Cluster {
    /// A primary with database `DB`, and a replica streaming from it, both running.
    pub async fn start() -> Cluster {
        let cluster = tokio::task::spawn_blocking(Cluster::start_blocking).await.expect("cluster start-up");
        let mut admin = PgConnection::connect(&cluster.primary_url("postgres")).await.expect("the new primary");
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DB}"))).await.expect("create database");
        cluster
    }

    fn start_blocking() -> Cluster {
        let bin = PathBuf::from(output(Command::new("pg_config").arg("--bindir")).trim());
        let dir =
            PathBuf::from(output(as_postgres(Path::new("mktemp")).args(["-d", "/tmp/ef_replicas.XXXXXX"])).trim());
        let cluster = Cluster { dir, bin, primary_port: free_port(), replica_port: free_port() };
        let primary = cluster.dir.join("primary");
        run(cluster.tool("initdb").args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"]).arg(&primary));
        cluster.pg_ctl_start("primary", cluster.primary_port);
        run(cluster
            .tool("pg_basebackup")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-R", "--checkpoint=fast", "-p"])
            .arg(cluster.primary_port.to_string())
            .arg("-D")
            .arg(cluster.dir.join("replica")));
        cluster.pg_ctl_start("replica", cluster.replica_port);
        cluster
    }

    fn tool(&self, name: &str) -> Command {
        as_postgres(&self.bin.join(name))
    }

    fn pg_ctl_start(&self, node: &str, port: u16) {
        run(&mut self.pg_ctl_start_cmd(node, port));
    }

    fn pg_ctl_start_cmd(&self, node: &str, port: u16) -> Command {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={dir} -c fsync=off \
             -c wal_level=replica -c max_connections=60",
            dir = self.dir.display()
        );
        let data = self.dir.join(node);
        let log = self.dir.join(format!("{node}.log"));
        let mut cmd = self.tool("pg_ctl");
        cmd.args(["-w", "-o", &options, "-l"]).arg(log).arg("-D").arg(data).arg("start");
        cmd
    }

    pub fn primary_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.primary_port)
    }

    pub fn replica_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.replica_port)
    }

    /// Stops the replica (fast: its connections are closed).
    pub async fn stop_replica(&self) {
        let mut cmd = self.pg_ctl_stop("replica", "fast");
        tokio::task::spawn_blocking(move || run(&mut cmd)).await.unwrap();
    }

    pub async fn start_replica(&self) {
        let mut cmd = self.pg_ctl_start_cmd("replica", self.replica_port);
        tokio::task::spawn_blocking(move || run(&mut cmd)).await.unwrap();
    }

    fn pg_ctl_stop(&self, node: &str, mode: &str) -> Command {
        let mut cmd = self.tool("pg_ctl");
        cmd.args(["-w", "-m", mode, "-D"]).arg(self.dir.join(node)).arg("stop");
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in ["replica", "primary"] {
            let _ = self.pg_ctl_stop(node, "immediate").output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a program as the `postgres` user when this process is root
/// (PostgreSQL refuses to run as root), else as this user.
fn as_postgres(program: &Path) -> Command {
    if output(Command::new("id").arg("-u")).trim() == "0" {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn run(cmd: &mut Command) {
    output(cmd);
}
