//! `flus-worker`: the gRPC server of flus-cluster that runs tile work for a coordinator.
//!
//! `flus-worker --listen 127.0.0.1:0` binds the address (port 0: the system picks one)
//! and prints the bound address, alone, on the first line of stdout.

mod health;

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tokio_stream::wrappers::TcpListenerStream;

/// flus-worker: serves the flus.v1 protocol to a flus coordinator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on; port 0 lets the system choose (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Threads for tile work (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(cli.listen, threads))
}

async fn serve(listen: SocketAddr, threads: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // The first stdout line is the bound address: launchers and tests read it.
    println!("{addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(%addr, threads, "flus-worker listening");
    let health = health::HealthService::new(threads);
    tonic::transport::Server::builder()
        .add_service(flus_proto::v1::health_server::HealthServer::new(health))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await
        .context("gRPC server failed")?;
    Ok(())
}
