//! PLUS's suitability (Liang et al. 2021, CEUS 85: 101569): a seeded random forest per
//! class and LEAS, the land expansion analysis strategy (docs/design.md §3a).
//!
//! - [`tree`]: one CART classification tree (Gini splits over `mtry` drawn features).
//! - [`ensemble`]: the forest: bootstrap per tree, out-of-bag permutation importance;
//!   tree `t` is a pure function of (samples, settings, seed, forest key, t).
//! - [`contribution`]: PLUS's driver contribution (error growth when a driver is noised,
//!   as shares).
//! - [`leas`]: per class, expansion cells against the others, the development
//!   probability of every cell and `driver_contributions.csv`.
//!
//! No I/O besides the CSV writer; every random draw is counter-based ([`crate::rng`]), so
//! results are bit-identical for any thread or worker count.

pub mod contribution;
pub mod ensemble;
pub mod leas;
pub mod tree;

/// Runs `f` in a pool of `threads` threads (tests of thread-count independence).
#[cfg(test)]
pub(crate) fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

pub use ensemble::{fit, fit_tree, FittedTree, Forest, ForestSettings};
pub use leas::{
    development_probability, expansion_sample, leas, leas_with, write_contributions, ClassForest,
    ClassSample, FitForest, Leas, LeasData, LeasSettings,
};
pub use tree::{grow, Node, Samples, Tree, TreeSettings, MAX_FEATURES};
