//! `flus-shared`: the core library of flus-cluster.
//!
//! Domain model and algorithms, no networking: the study grid, GDAL raster I/O, the
//! strict study config, Markov demand, accuracy metrics, and (in later modules) the FLUS
//! model, carbon storage and GWR. The coordinator and the worker only move data and call
//! these functions.

#![warn(missing_docs)]

pub mod error;
pub mod grid;
pub mod gwr;
pub mod raster;
pub mod rng;

pub use error::{Error, Result};
pub use grid::Grid;
