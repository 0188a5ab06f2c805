//! The CA iteration loop (docs/design.md §4, §5, §9), generic over where the tiles live:
//! in this process ([`LocalTiles`]) or on gRPC workers (the coordinator's backend). The
//! loop holds the authoritative class map, the global counts and the inertia state; a
//! backend only runs tile steps, answers exact-key requests and commits. The output is
//! a pure function of the inputs, whatever the backend, tiling, thread count or
//! failure history. A checkpoint of the loop's state lets a run resume with the same
//! result.

mod checkpoint;
mod iterate;
mod local;

pub use checkpoint::Checkpoint;
pub use iterate::{run_loop, CheckpointHook};
pub use local::LocalTiles;

use super::acceptance::{KeyRequest, Thresholds};
use super::params::CaParams;
use crate::ca::step::{Proposal, StepParams};
use crate::Result;

/// The class map padded by the halo width on every side with [`INVALID`].
#[derive(Clone, Copy, Debug)]
pub struct MapView<'a> {
    /// Padded map, row-major.
    pub padded: &'a [u8],
    /// Cells per padded row (grid width + 2r).
    pub stride: usize,
}

/// What the tile steps of one iteration add up to.
#[derive(Clone, Debug, Default)]
pub struct StepSummary {
    /// Merged key histogram, index `(bucket * K + from) * K + to`.
    pub histogram: Vec<u64>,
    /// Proposals in the histogram.
    pub proposals: u64,
    /// Proposals that passed roulette and gate (before locks and closed classes).
    pub raw_proposals: u64,
    /// Valid unrestricted cells visited.
    pub cells: u64,
    /// Cells skipped: whole neighbourhood of their own class.
    pub skipped_uniform: u64,
    /// Cells skipped: their class may not lose cells.
    pub skipped_closed: u64,
}

/// Where the tiles of a CA run live.
pub trait Backend {
    /// Runs the tile step of `step` on every tile against `map` (the map of the previous
    /// iteration); fills `sum` (histogram sized `BUCKETS * K * K`).
    fn propose(
        &mut self,
        params: &CaParams,
        step: &StepParams,
        map: &MapView,
        sum: &mut StepSummary,
    ) -> Result<()>;
    /// The proposals of every tile in `req.bucket` that touch `req.touch`.
    fn exact(&mut self, req: &KeyRequest, map: &MapView, out: &mut Vec<Proposal>) -> Result<()>;
    /// Applies `thresholds` on every tile; fills `changed` with (cell, new class),
    /// sorted by cell.
    fn commit(
        &mut self,
        thresholds: &Thresholds,
        map: &MapView,
        changed: &mut Vec<(u64, u8)>,
    ) -> Result<()>;
}
