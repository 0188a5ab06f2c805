//! Connections to the workers: one gRPC channel per worker with the cluster token on
//! every call, deadlines, and a health check before any work.

use std::time::Duration;

use anyhow::Context;
use flus_proto::v1::gwr_worker_client::GwrWorkerClient;
use flus_proto::v1::health_client::HealthClient;
use flus_proto::v1::worker_client::WorkerClient;
use flus_proto::v1::{HealthRequest, HealthResponse};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

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
    /// Threads it reported.
    pub threads: u32,
    /// The token interceptor, kept to reconnect after the worker was lost.
    pub auth: AddToken,
}

impl WorkerConn {
    /// A fresh connection to the same address with the same token: health and protocol
    /// checked again within `timeout` (used to re-admit a lost worker).
    pub async fn reconnect(&self, timeout: Duration) -> anyhow::Result<WorkerConn> {
        let (channel, h) = check_health(&self.addr, timeout).await?;
        Ok(with_channel(
            &self.addr,
            channel,
            self.auth.clone(),
            h.threads,
        ))
    }
}

fn with_channel(addr: &str, channel: Channel, auth: AddToken, threads: u32) -> WorkerConn {
    let gwr = GwrWorkerClient::with_interceptor(channel.clone(), auth.clone())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let client = WorkerClient::with_interceptor(channel, auth.clone())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    WorkerConn {
        addr: addr.to_string(),
        client,
        gwr,
        threads,
        auth,
    }
}

/// Normalises `host:port` to `http://host:port`.
pub fn endpoint_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Opens a channel to `addr` and checks its health and protocol revision.
pub async fn check_health(
    addr: &str,
    timeout: Duration,
) -> anyhow::Result<(Channel, HealthResponse)> {
    let channel = Endpoint::from_shared(endpoint_url(addr))
        .with_context(|| format!("bad worker address {addr:?}"))?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("worker {addr}: cannot connect"))?;
    let mut health = HealthClient::new(channel.clone());
    let mut req = tonic::Request::new(HealthRequest {});
    req.set_timeout(timeout);
    let h = health
        .check(req)
        .await
        .with_context(|| format!("worker {addr}: health check failed"))?
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
pub async fn connect(addr: &str, token: &str, timeout: Duration) -> anyhow::Result<WorkerConn> {
    let (channel, h) = check_health(addr, timeout).await?;
    let value: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .context("the token must be printable ASCII")?;
    Ok(with_channel(addr, channel, AddToken(value), h.threads))
}
