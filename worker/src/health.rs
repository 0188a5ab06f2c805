//! The `flus.v1.Health` service: liveness, version and protocol revision.

use flus_proto::v1::health_server::Health;
use flus_proto::v1::{HealthRequest, HealthResponse};
use tonic::{Request, Response, Status};

/// Answers health checks.
pub struct HealthService {
    threads: usize,
    store: std::sync::Arc<std::sync::Mutex<crate::tiles::TileStore>>,
}

impl HealthService {
    /// A health service reporting `threads` worker threads.
    pub fn new(
        threads: usize,
        store: std::sync::Arc<std::sync::Mutex<crate::tiles::TileStore>>,
    ) -> Self {
        Self { threads, store }
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _req: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        Ok(Response::new(HealthResponse {
            status: "SERVING".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: flus_proto::PROTOCOL_REVISION,
            threads: self.threads as u32,
            tiles: self.store.lock().map(|s| s.count() as u32).unwrap_or(0),
        }))
    }
}
