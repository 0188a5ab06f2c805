//! `flus-shared`: the core library of flus-cluster.
//!
//! Domain model and algorithms, no networking: the study grid, GDAL raster I/O, the
//! strict study config, Markov demand, accuracy metrics, and (in later modules) the FLUS
//! model, carbon storage and GWR. The coordinator and the worker only move data and call
//! these functions.

#![warn(missing_docs)]

pub mod analysis;
pub mod ann;
pub mod area;
pub mod ca;
pub mod carbon;
pub mod change_maps;
pub mod cog;
pub mod config;
pub mod counts;
pub mod ensemble;
pub mod error;
pub mod files;
pub mod forest;
pub mod grid;
pub mod gwr;
pub mod hooks;
pub mod json;
pub mod landscape;
pub mod layers;
pub mod make_study;
pub mod markov;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod notices;
pub mod outputs;
pub mod prepare;
pub mod raster;
pub mod rng;
pub mod select;
pub mod stack;
pub mod synth;
pub mod tables;
pub mod zones;

pub use error::{Error, Result};
pub use grid::Grid;
