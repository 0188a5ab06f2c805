//! A single-process driver: runs the whole grid as any R x C tiling, with rayon over
//! tiles, through exactly the cluster's protocol (tile step, bucket walk, exact-key
//! requests, commit). The output is a pure function of (inputs, parameters): identical
//! bits for every tiling and thread count.

use serde::Serialize;

use super::params::CaParams;
use super::step::TileRect;
use super::INVALID;
use crate::{Error, Result};

/// The inputs of a CA run on a whole grid.
#[derive(Clone, Copy, Debug)]
pub struct CaInput<'a> {
    /// Grid columns.
    pub width: usize,
    /// Grid rows.
    pub height: usize,
    /// Start class map, row-major: class index 0..K-1, or 255 for an invalid cell.
    pub classes: &'a [u8],
    /// Cell-major suitability: `cell * K + k`, each valid cell summing to 1. Empty when
    /// the backend holds its own (gRPC workers computing it from the ANN): the loop then
    /// leaves the low-suitability warning to the caller ([`warn_low_max_suitability`]).
    pub suitability: &'a [f32],
    /// Restricted cells (they never change), row-major.
    pub restricted: &'a [bool],
    /// Demand in cells per class, summing to the number of valid cells.
    pub demand: &'a [i64],
    /// Transition allocation (`[ca] allocation = "transitions"`): the cells of every
    /// (from, to) conversion, K x K row-major (diagonal ignored), which `demand` must
    /// follow from; `None` in net mode.
    pub quota: Option<&'a [u64]>,
}

/// An R x C tiling of the grid (rows of tiles, columns of tiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiling {
    /// Tile rows.
    pub rows: usize,
    /// Tile columns.
    pub cols: usize,
}

impl Tiling {
    /// The tile rectangles, row-major, splitting rows and columns as evenly as possible.
    pub fn rects(&self, width: usize, height: usize) -> Result<Vec<TileRect>> {
        if self.rows == 0 || self.cols == 0 || self.rows > height || self.cols > width {
            return Err(Error::Data(format!(
                "tiling {}x{} does not fit a grid of {width}x{height} cells (expected 1..={height} rows, 1..={width} columns of tiles)",
                self.rows, self.cols
            )));
        }
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            let (y0, y1) = (i * height / self.rows, (i + 1) * height / self.rows);
            for j in 0..self.cols {
                let (x0, x1) = (j * width / self.cols, (j + 1) * width / self.cols);
                out.push(TileRect {
                    x0,
                    y0,
                    width: x1 - x0,
                    height: y1 - y0,
                    grid_width: width,
                });
            }
        }
        Ok(out)
    }
}

/// Why the iterations stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// sum |gap| reached 0.
    DemandMet,
    /// sum |gap| did not decrease for `stall_iterations` iterations.
    Stalled,
    /// `max_iterations` were run.
    MaxIterations,
}

/// What happened in one iteration.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct IterationRecord {
    /// Iteration t (0-based).
    pub t: u32,
    /// Inertia per class used in this iteration.
    pub inertia: Vec<f64>,
    /// Locks per class in this iteration.
    pub locks: Vec<bool>,
    /// Class counts after the iteration.
    pub counts: Vec<u64>,
    /// Gaps (demand - count) after the iteration.
    pub gaps: Vec<i64>,
    /// sum |gap| after the iteration (transition mode: the cells left over all pair
    /// quotas).
    pub sum_abs_gap: u64,
    /// Proposals that passed roulette and gate.
    pub raw_proposals: u64,
    /// Proposals not refused by a lock or a class closed at the start (the histograms).
    pub proposals: u64,
    /// Accepted proposals (changed cells).
    pub accepted: u64,
    /// Cells skipped because their whole neighbourhood is their own class.
    pub skipped_uniform: u64,
    /// Cells skipped because their class may not lose cells in this iteration.
    pub skipped_closed: u64,
    /// Buckets whose exact keys were requested.
    pub key_requests: u32,
    /// Exact proposals shipped for those requests.
    pub exact_keys: u64,
}

/// The final report of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaReport {
    /// Iterations run.
    pub iterations: u32,
    /// Why the run stopped.
    pub stop_reason: StopReason,
    /// Residual gap (demand - count) per class.
    pub final_gap: Vec<i64>,
    /// Every class exactly at its demand (transition mode: every pair at its quota).
    pub demand_met: bool,
    /// Transition mode: conversions done per (from, to) pair, K x K row-major.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitions_done: Option<Vec<u64>>,
    /// Valid cells.
    pub valid_cells: u64,
    /// Valid unrestricted cells.
    pub free_cells: u64,
}

/// The result of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct CaOutput {
    /// Final class map, row-major (255 = invalid).
    pub map: Vec<u8>,
    /// One record per iteration.
    pub records: Vec<IterationRecord>,
    /// The final report.
    pub report: CaReport,
}

/// Runs the CA on the whole grid as `tiling`, on the current rayon pool; `progress` is
/// called after every iteration with (iteration, sum |gap|). The tiles live in this
/// process ([`LocalTiles`](super::engine::LocalTiles)); the iteration loop is the one
/// the cluster runs ([`run_loop`](super::engine::run_loop)).
pub fn run(
    params: &CaParams,
    input: &CaInput,
    tiling: Tiling,
    mut progress: impl FnMut(u32, u64),
) -> Result<CaOutput> {
    params.validate()?;
    let rects = tiling.rects(input.width, input.height)?;
    let mut backend = super::engine::LocalTiles::new(rects, input, params.k);
    super::engine::run_loop(
        params,
        input,
        &mut backend,
        None,
        &mut progress,
        &mut |_, _| Ok(()),
    )
}

/// Warns when a class that must grow has max suitability below 1/K (the gate would hold
/// it back until late iterations).
pub(crate) fn warn_low_suitability(params: &CaParams, input: &CaInput, counts: &[u64]) {
    let k = params.k;
    let mut max = vec![0f32; k];
    for (i, &c) in input.classes.iter().enumerate() {
        if c == INVALID || input.restricted[i] {
            continue;
        }
        for (m, &s) in max.iter_mut().zip(&input.suitability[i * k..(i + 1) * k]) {
            *m = m.max(s);
        }
    }
    warn_low_max_suitability(params, input.demand, counts, &max);
}

/// Warns about every class that must grow (`demand` above its start `counts`) while its
/// largest suitability over the cells that may change (`max`, one per class) stays below
/// 1/K: the CA's gate will hold it back.
pub fn warn_low_max_suitability(params: &CaParams, demand: &[i64], counts: &[u64], max: &[f32]) {
    let k = params.k;
    for c in 0..k.min(max.len()).min(demand.len()).min(counts.len()) {
        if demand[c] > counts[c] as i64 && (max[c] as f64) < 1.0 / k as f64 {
            tracing::warn!(
                class = c,
                max_suitability = max[c],
                "{} must grow but its suitability never reaches 1/K = {:.3} \
                 (max {:.4}): the CA gate will hold it back; consider uniform sampling for the ANN",
                params.label(c),
                1.0 / k as f64,
                max[c]
            );
        }
    }
}
