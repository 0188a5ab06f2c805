//! The `flus.v1` protocol between the flus coordinator and its workers.
//!
//! Generated at build time from `proto/flus/v1/*.proto`; see that folder for the
//! message documentation.

/// Protocol revision carried in every health answer; coordinator and worker must agree.
pub const PROTOCOL_REVISION: u32 = 7;

/// Package `flus.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("flus.v1");
}
