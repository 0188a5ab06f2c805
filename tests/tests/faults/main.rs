//! The fault matrix of the cluster (issue #9): real coordinator and worker processes on a
//! 300 x 300 window of Ben Cat. Each case ends with the class map of the undisturbed
//! single-process run (same SHA-256), or stops with a clear error and a checkpoint that
//! `flus run --resume` finishes with that same map.
//!
//! Every disturbance happens at a hold point of the test build (`flus_e2e::hold`): the
//! coordinator stops after iteration k (or inside a checkpoint write) until the test has
//! acted, so no case depends on how fast the machine is.
//!
//! The cases are grouped by what is disturbed, one module each; `common` holds the study,
//! the runs with hold points and the checks every case shares.

mod assembly;
mod checkpoints;
mod common;
mod network;
mod scenarios;
mod training;
mod workers;
