//! The FLUS cellular automaton (self-adaptive inertia competition), docs/design.md §4 and §5.
//!
//! The pieces are kept separate and pure so that the cluster can distribute them:
//! - [`params`]: the CA parameters and the validated per-run inputs;
//! - [`inertia`]: the global inertia/lock state, updated once per iteration on the
//!   coordinator from global class counts;
//! - [`step`]: the tile step, a pure function of (class window with halo, static tile
//!   layers, step parameters) that returns proposals and their key histograms;
//! - [`acceptance`]: the bucket walk that turns merged histograms (plus the exact keys
//!   of a few buckets) into the thresholds `T_in`, `T_out`;
//! - [`patches`]: PLUS's multi-type random patch seeds (CARS), a variant of the tile step;
//! - [`commit`]: applies the thresholds to a tile's proposals;
//! - [`feasibility`]: the max-flow check of the demand before any work;
//! - [`quota`]: transition-level allocation (per-pair quotas and their walk);
//! - [`driver`]: a single-process driver running the whole grid as any tiling;
//! - [`baseline`]: the random-allocation baseline of the validation;
//! - [`bench`]: throughput measurements (memory bandwidth, tile-step rate);
//! - [`window`]: padding and tile windows of class maps (`ndarray` views).

pub mod acceptance;
pub mod baseline;
pub mod bench;
pub mod commit;
pub mod driver;
pub mod engine;
pub mod feasibility;
pub mod inertia;
pub mod params;
pub mod patches;
pub mod quota;
pub mod resume;
mod score;
mod score_avx2;
pub mod step;
pub mod window;

pub use acceptance::{BucketWalk, KeyRequest, Thresholds};
pub use baseline::random_allocation;
pub use commit::commit;
pub use driver::{
    run, warn_low_max_suitability, CaInput, CaOutput, CaReport, IterationRecord, StopReason, Tiling,
};
pub use engine::{run_loop, Backend, Checkpoint, LocalTiles, MapView, StepSummary};
pub use feasibility::{check_demand, check_feasible};
pub use inertia::InertiaState;
pub use params::CaParams;
pub use patches::Patches;
pub use quota::{PairWalk, QuotaState};
pub use resume::RunIdentity;
pub use step::{
    fixed_row_into_bands, suitability_fixed, suitability_from_fixed, suitability_to_fixed,
    tile_step, ClassWindow, Proposal, StepParams, TileProposals, TileRect, TileStatic,
    SUITABILITY_ONE,
};
pub use window::{apply_in_window, pad, padded_tile_window, tile_window};

/// Class value of an invalid cell in a class map.
pub const INVALID: u8 = 255;

/// Number of key buckets of the proposal histograms (top 10 bits of the u32 key).
pub const BUCKETS: usize = 1024;

/// Shift from a u32 key to its bucket.
pub const BUCKET_SHIFT: u32 = 22;

/// The total order of proposals: (priority key U3, global cell index).
pub type Key = (u32, u64);

/// A threshold that refuses nothing.
pub const OPEN: Key = (u32::MAX, u64::MAX);

/// A threshold that refuses everything.
pub const CLOSED: Key = (0, 0);

/// The smallest key strictly greater than `key` for any other proposal (cells are unique).
#[inline]
pub fn successor(key: Key) -> Key {
    (key.0, key.1 + 1)
}

#[cfg(test)]
mod bencat_tests;
#[cfg(test)]
mod driver_tests;
#[cfg(test)]
mod quota_tests;
