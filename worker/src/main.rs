//! `flus-worker`: the gRPC server of flus-cluster that runs tile work for a coordinator.
//!
//! `flus-worker --listen 127.0.0.1:0` binds the address (port 0: the system picks one)
//! and prints the bound address, alone, on the first line of stdout.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use flus_worker::{auth, data_root, gwr, health, service, train};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

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
    /// File holding the cluster token (else the FLUS_TOKEN environment variable).
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
    /// Most tiles this worker holds at once.
    #[arg(long, default_value_t = 4096)]
    max_tiles: usize,
    /// Largest tile accepted, MiB (all layers).
    #[arg(long, default_value_t = 2048)]
    max_tile_mib: u64,
    /// Largest gRPC message accepted, MiB (tile data arrives in 1 MiB chunks).
    #[arg(long, default_value_t = 64)]
    max_message_mib: usize,
    /// Largest GWR sample accepted, MiB (X, Y and coordinates).
    #[arg(long, default_value_t = 2048)]
    max_gwr_mib: u64,
    /// Largest training job accepted, MiB (the rows of an ANN sample or a forest's).
    #[arg(long, default_value_t = 2048)]
    max_train_mib: u64,
    /// Folder the worker may read rasters from (tiles named by relative path, on a shared
    /// filesystem); without it the worker reads no files.
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// With --data-root, also read layers named by a URL of GDAL's network file systems
    /// (/vsicurl/, /vsis3/, /vsigs/, /vsiaz/, ...): only the tile's window is fetched, with
    /// HTTP range requests; credentials come from GDAL's and AWS's environment variables.
    #[arg(long, requires = "data_root")]
    allow_urls: bool,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Accept only clients with a certificate signed by this CA (PEM): mutual TLS.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

/// The server TLS settings from the flags (None: plaintext).
fn tls_config(cli: &Cli) -> anyhow::Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) else {
        return Ok(None);
    };
    let read = |p: &PathBuf, what: &str| {
        std::fs::read(p).with_context(|| format!("{what} {}", p.display()))
    };
    let identity = Identity::from_pem(
        read(cert, "TLS certificate")?,
        read(key, "TLS private key")?,
    );
    let mut cfg = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &cli.tls_client_ca {
        cfg = cfg.client_ca_root(Certificate::from_pem(read(ca, "TLS client CA")?));
    }
    Ok(Some(cfg))
}

/// Refuses limits under which the worker could do no work, naming the flag.
fn check_limits(cli: &Cli) -> anyhow::Result<()> {
    for (flag, v) in [
        ("--max-tiles", cli.max_tiles as u64),
        ("--max-tile-mib", cli.max_tile_mib),
        ("--max-message-mib", cli.max_message_mib as u64),
        ("--max-gwr-mib", cli.max_gwr_mib),
        ("--max-train-mib", cli.max_train_mib),
        ("--threads", cli.threads.unwrap_or(1) as u64),
    ] {
        anyhow::ensure!(
            v > 0,
            "{flag} 0: expected at least 1 (a worker with a limit of 0 can do no work)"
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    check_limits(&cli)?;
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
    let token = auth::load_token(cli.token_file.as_deref())?;
    let tls = tls_config(&cli)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("rayon thread pool")?;
    let root = cli
        .data_root
        .as_deref()
        .map(data_root::DataRoot::new)
        .transpose()?
        .map(|r| r.with_urls(cli.allow_urls));
    let limits = service::Limits {
        max_tile_bytes: cli.max_tile_mib * 1024 * 1024,
        max_tiles: cli.max_tiles,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let max_message = cli.max_message_mib.max(1) * 1024 * 1024;
    let gwr = gwr::GwrService::new(cli.max_gwr_mib * 1024 * 1024, 16);
    let trainer = train::TrainService::new(cli.max_train_mib * 1024 * 1024, threads);
    rt.block_on(serve(
        cli.listen,
        threads,
        token,
        limits,
        max_message,
        tls,
        (gwr, trainer),
        root,
    ))
}

async fn serve(
    listen: SocketAddr,
    threads: usize,
    token: String,
    limits: service::Limits,
    max_message: usize,
    tls: Option<ServerTlsConfig>,
    (gwr, trainer): (gwr::GwrService, train::TrainService),
    root: Option<data_root::DataRoot>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // The first stdout line is the bound address: launchers and tests read it.
    println!("{addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    tracing::info!(%addr, threads, tls = tls.is_some(), "flus-worker listening");
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let worker = service::WorkerService::new(limits, stop.clone(), root);
    let health = health::HealthService::new(threads, worker.store());
    let check = auth::TokenCheck::new(&token);
    let gwr_check = check.clone();
    let train_check = check.clone();
    let train_server = flus_proto::v1::trainer_server::TrainerServer::new(trainer)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let gwr_server = flus_proto::v1::gwr_worker_server::GwrWorkerServer::new(gwr)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let worker_server = flus_proto::v1::worker_server::WorkerServer::new(worker)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    // The standard grpc.health.v1 service, for Kubernetes gRPC probes.
    let (reporter, std_health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<flus_proto::v1::worker_server::WorkerServer<service::WorkerService>>()
        .await;
    let mut builder = tonic::transport::Server::builder();
    if let Some(cfg) = tls {
        builder = builder.tls_config(cfg).context("TLS settings")?;
    }
    builder
        .add_service(std_health)
        .add_service(flus_proto::v1::health_server::HealthServer::new(health))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            worker_server,
            move |r| check.check(r),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            gwr_server,
            move |r| gwr_check.check(r),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            train_server,
            move |r| train_check.check(r),
        ))
        // No Nagle: every reply is one small write that the coordinator waits for (with
        // Nagle and delayed ACKs each call could wait ~40 ms).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = stop.notified() => {}
                }
                tracing::info!("shutting down");
            },
        )
        .await
        .context("gRPC server failed")?;
    Ok(())
}
