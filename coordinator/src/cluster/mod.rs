//! The cluster side of the coordinator: local worker processes, connections with the
//! token and deadlines, the one fan-out layer every phase's calls go through, the wire
//! conversions, and the CA backend whose tiles live on the workers.

pub mod busy;
pub mod cause;
pub(crate) mod fanout;
pub mod gwr_remote;
pub mod halo;
pub mod local;
pub mod pool;
pub mod remote;
pub mod train_remote;
pub mod wire;
