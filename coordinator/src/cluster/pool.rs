//! Connections to the workers: one gRPC channel per worker with the cluster token on
//! every call, deadlines, and a health check before any work.

use std::time::Duration;

use anyhow::Context;
use flus_proto::v1::gwr_worker_client::GwrWorkerClient;
use flus_proto::v1::health_client::HealthClient;
use flus_proto::v1::trainer_client::TrainerClient;
use flus_proto::v1::worker_client::WorkerClient;
use flus_proto::v1::{HealthRequest, HealthResponse};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Adds `authorization: Bearer TOKEN` to every request.
#[derive(Clone)]
pub struct AddToken(pub MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for AddToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// A Worker client that sends the token.
pub type Client = WorkerClient<InterceptedService<Channel, AddToken>>;

/// A GwrWorker client that sends the token.
pub type GwrClient = GwrWorkerClient<InterceptedService<Channel, AddToken>>;

/// A Trainer client that sends the token.
pub type TrainClient = TrainerClient<InterceptedService<Channel, AddToken>>;

/// Largest message either side accepts (tile data is streamed in smaller chunks).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// One connected worker.
#[derive(Clone)]
pub struct WorkerConn {
    /// Its address as given.
    pub addr: String,
    /// The client.
    pub client: Client,
    /// The client of its GWR service.
    pub gwr: GwrClient,
    /// The client of its Trainer service.
    pub train: TrainClient,
    /// Threads it reported.
    pub threads: u32,
    /// The token interceptor, kept to reconnect after the worker was lost.
    pub auth: AddToken,
    /// TLS settings, kept to reconnect.
    pub tls: Tls,
}

impl WorkerConn {
    /// A fresh connection to the same address with the same token: health and protocol
    /// checked again within `timeout` (used to re-admit a lost worker).
    pub async fn reconnect(&self, timeout: Duration) -> anyhow::Result<WorkerConn> {
        let (channel, h) = check_health(&self.addr, timeout, &self.tls).await?;
        Ok(with_channel(
            &self.addr,
            channel,
            self.auth.clone(),
            h.threads,
            &self.tls,
        ))
    }
}

fn with_channel(
    addr: &str,
    channel: Channel,
    auth: AddToken,
    threads: u32,
    tls: &Tls,
) -> WorkerConn {
    let gwr = GwrWorkerClient::with_interceptor(channel.clone(), auth.clone())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let train = TrainerClient::with_interceptor(channel.clone(), auth.clone())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let client = WorkerClient::with_interceptor(channel, auth.clone())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    WorkerConn {
        addr: addr.to_string(),
        client,
        gwr,
        train,
        threads,
        auth,
        tls: tls.clone(),
    }
}

/// TLS towards the workers: the CA that signed their certificates and the name to
/// expect in them.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// PEM file of the CA to trust (TLS is off without it).
    pub ca: Option<std::path::PathBuf>,
    /// Server name expected in the workers' certificates (default: the host of each
    /// worker address).
    pub domain: Option<String>,
}

/// Command-line flags of TLS towards the workers (`flus run`, `flus ping`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Talk TLS to the workers, trusting the CA certificate in this PEM file.
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Server name to expect in the workers' certificates (default: each worker's host).
    #[arg(long, requires = "tls_ca")]
    pub tls_domain: Option<String>,
}

impl TlsArgs {
    /// The TLS settings.
    pub fn tls(&self) -> Tls {
        Tls {
            ca: self.tls_ca.clone(),
            domain: self.tls_domain.clone(),
        }
    }
}

/// The one rule of every phase for a failed call: an answer that any worker would give
/// as well (bad input, a refused token or path) stops the run with the worker's
/// message, since moving the work to another worker cannot help; any other failure
/// (unreachable, deadline, a restarted worker without the tiles, an internal error)
/// drops the worker and moves its work to the others.
pub fn is_refusal(e: &tonic::Status) -> bool {
    matches!(
        e.code(),
        tonic::Code::InvalidArgument | tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
    )
}

/// Normalises `host:port` to `http://host:port` (`https://` with TLS).
pub fn endpoint_url(addr: &str, tls: bool) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else if tls {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

/// Opens a channel to `addr` (TLS when `tls.ca` is set) and checks its health and
/// protocol revision.
pub async fn check_health(
    addr: &str,
    timeout: Duration,
    tls: &Tls,
) -> anyhow::Result<(Channel, HealthResponse)> {
    let mut endpoint = Endpoint::from_shared(endpoint_url(addr, tls.ca.is_some()))
        .with_context(|| format!("bad worker address {addr:?}"))?
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    if let Some(ca) = &tls.ca {
        let pem =
            std::fs::read(ca).with_context(|| format!("TLS CA certificate {}", ca.display()))?;
        let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        if let Some(d) = &tls.domain {
            cfg = cfg.domain_name(d.clone());
        }
        endpoint = endpoint
            .tls_config(cfg)
            .with_context(|| format!("worker {addr}: TLS settings"))?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("worker {addr}: cannot connect"))?;
    let mut health = HealthClient::new(channel.clone());
    let mut req = tonic::Request::new(HealthRequest {});
    req.set_timeout(timeout);
    let h = health
        .check(req)
        .await
        .with_context(|| {
            format!(
                "worker {addr}: health check failed within {} s (--deadline)",
                timeout.as_secs_f64()
            )
        })?
        .into_inner();
    if h.protocol != flus_proto::PROTOCOL_REVISION {
        anyhow::bail!(
            "worker {addr}: protocol revision {} but this flus speaks {}",
            h.protocol,
            flus_proto::PROTOCOL_REVISION
        );
    }
    Ok((channel, h))
}

/// Connects to `addr`, checks health and protocol revision.
pub async fn connect(
    addr: &str,
    token: &str,
    timeout: Duration,
    tls: &Tls,
) -> anyhow::Result<WorkerConn> {
    // the whole handshake within the deadline: a port that accepts connections but
    // never answers fails as soon as the deadline says
    let (channel, h) = tokio::time::timeout(timeout, check_health(addr, timeout, tls))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "worker {addr}: no answer to the health check within {} s (--deadline)",
                timeout.as_secs_f64()
            )
        })??;
    let value: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .context("the token must be printable ASCII")?;
    Ok(with_channel(addr, channel, AddToken(value), h.threads, tls))
}
