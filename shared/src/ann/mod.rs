//! ANN suitability of FLUS (docs/design.md §3): a back-propagation network with one hidden
//! layer of sigmoid units and a softmax output, trained on a sample of cells to give,
//! for every valid cell p and class k, the suitability sp(p, k) (sum over k = 1).
//!
//! - [`normalise`]: min-max normalisation of the drivers over the valid cells.
//! - [`sample`]: the training sample (uniform or proportional) and its held-out part.
//! - [`network`]: the network, its forward pass and gradient.
//! - [`train`]: [`train()`] = [`prepare()`] (reads the grid: normalisation, sample, rows)
//!   then [`fit()`] (reads only the rows: can run on a worker), settings and report.
//! - [`suitability`]: per-cell inference (whole grid or a window), band-major output,
//!   writing and reading K-band suitability GeoTIFFs, the max-suitability warning.
//!
//! Everything is deterministic: the same inputs and seed give the same bits whatever
//! the thread count or the split of the grid into windows.

pub mod network;
pub mod normalise;
pub mod sample;
pub mod suitability;
pub mod train;

pub use network::Network;
pub use normalise::Normalisation;
pub use sample::{draw_sample, Sample, Sampling, INVALID_CLASS};
pub use suitability::{
    low_suitability_classes, max_free_suitability, max_suitability_per_class, read_suitability,
    suitability, suitability_fixed, suitability_window, to_band_major, write_suitability,
    write_suitability_from_network, SuitabilityCheck,
};
pub use train::{
    fit, prepare, train, AnnSettings, SampleRows, TrainReport, TrainedAnn, TrainingData,
    TrainingSet,
};
