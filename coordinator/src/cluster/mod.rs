//! The cluster side of the coordinator: local worker processes, connections with the
//! token and deadlines, and the CA backend whose tiles live on the workers.

pub mod busy;
pub mod cause;
pub mod gwr_remote;
pub mod halo;
pub mod local;
pub mod pool;
pub mod remote;
pub mod train_remote;
