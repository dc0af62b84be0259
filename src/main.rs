//! Boots: reads `.env` and flags, sets up logging, and runs a command.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use eventfeed::cli::{Cli, Command};
use eventfeed::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// jemalloc, with its background threads: less CPU per request than glibc's
/// malloc, and memory freed after a burst of connections goes back to the
/// system (glibc kept it: RSS stayed at the peak after 10,000 sockets closed).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    init_tracing(cli.log.format, &cli.log.filter);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("eventfeed: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            None => serve(cli.config).await,
            Some(Command::Serve(config)) => serve(*config).await,
            Some(other) => eventfeed::cli::run(other).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the problem and the fix; no backtrace.
            eprintln!("eventfeed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (is the port in use? set EVENTFEED_ADDR)"))?;
    let server = eventfeed::build(config).await?;
    server.state.store.announce();
    let local = listener.local_addr()?;
    // The one line on stdout: tests and scripts wait for it.
    println!("listening on {local}");
    tracing::info!(%local, "serving");
    eventfeed::run(listener, server, stop_signals()).await
}

/// SIGTERM and SIGINT (Ctrl-C), each time one arrives: the first starts the
/// drain, a second ends it early.
fn stop_signals() -> impl futures::Stream<Item = ()> + Send + Unpin + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let term = async {
                match term.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let term = std::future::pending::<()>();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

fn init_tracing(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("eventfeed: RUST_LOG {filter:?} is not a log filter ({e}); using info");
        EnvFilter::new("info")
    });
    // Colour codes only for a person at a terminal, not in files and log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
