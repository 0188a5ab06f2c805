//! The flus-worker library: the gRPC services of a worker (tile store, CA steps, health)
//! and the cluster-token check, usable without a network (the fuzz targets and tests
//! call the handlers directly). The `flus-worker` binary serves them.

pub mod auth;
pub mod data_root;
pub mod fuzz_input;
pub mod gwr;
pub mod health;
pub mod service;
pub mod tiles;
pub mod train;
