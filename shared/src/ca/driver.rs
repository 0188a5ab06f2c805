//! A single-process driver: runs the whole grid as any R x C tiling, with rayon over
//! tiles, through exactly the cluster's protocol (tile step, bucket walk, exact-key
//! requests, commit). The output is a pure function of (inputs, parameters): identical
//! bits for every tiling and thread count.

use rayon::prelude::*;
use serde::Serialize;

use super::acceptance::{BucketWalk, Thresholds};
use super::commit::commit;
use super::feasibility::{check_demand, check_feasible, class_counts};
use super::inertia::InertiaState;
use super::params::CaParams;
use super::step::{tile_step, ClassWindow, Proposal, TileProposals, TileRect, TileStatic};
use super::{BUCKETS, INVALID};
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
    /// Cell-major suitability: `cell * K + k`, each valid cell summing to 1.
    pub suitability: &'a [f32],
    /// Restricted cells (they never change), row-major.
    pub restricted: &'a [bool],
    /// Demand in cells per class, summing to the number of valid cells.
    pub demand: &'a [i64],
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
    /// sum |gap| after the iteration.
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
    /// Every class exactly at its demand.
    pub demand_met: bool,
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
/// called after every iteration with (iteration, sum |gap|).
pub fn run(
    params: &CaParams,
    input: &CaInput,
    tiling: Tiling,
    mut progress: impl FnMut(u32, u64),
) -> Result<CaOutput> {
    params.validate()?;
    let (w, h, k) = (input.width, input.height, params.k);
    let cells = w * h;
    if input.classes.len() != cells
        || input.restricted.len() != cells
        || input.suitability.len() != cells * k
    {
        return Err(Error::Data(format!(
            "CA input of {w}x{h} cells and {k} classes: class map has {} cells (expected {cells}), \
             restriction mask {} (expected {cells}), suitability {} values (expected {})",
            input.classes.len(),
            input.restricted.len(),
            input.suitability.len(),
            cells * k
        )));
    }
    let rects = tiling.rects(w, h)?;
    let (mut counts, free) = class_counts(k, input.classes, input.restricted)?;
    let valid: u64 = counts.iter().sum();
    check_demand(input.demand, k, valid)?;
    check_feasible(params, &counts, &free, input.demand)?;
    warn_low_suitability(params, input, &counts);

    let r = params.radius();
    let pw = w + 2 * r;
    let mut padded = vec![INVALID; pw * (h + 2 * r)];
    for y in 0..h {
        padded[(y + r) * pw + r..(y + r) * pw + r + w]
            .copy_from_slice(&input.classes[y * w..(y + 1) * w]);
    }
    let mut outs: Vec<TileProposals> = (0..rects.len()).map(|_| TileProposals::default()).collect();
    let mut changed: Vec<Vec<(u64, u8)>> = vec![Vec::new(); rects.len()];
    let mut hist = vec![0u64; BUCKETS * k * k];
    let mut state = InertiaState::new(k, params.accelerate);
    let mut records = Vec::new();
    let gap_sum = |counts: &[u64]| -> u64 {
        (0..k)
            .map(|c| (input.demand[c] - counts[c] as i64).unsigned_abs())
            .sum()
    };
    let mut best_sum = gap_sum(&counts);
    let mut since_best = 0u32;
    let mut t = 0u32;
    let stop_reason = loop {
        if gap_sum(&counts) == 0 {
            break StopReason::DemandMet;
        }
        if since_best >= params.stall_iterations {
            break StopReason::Stalled;
        }
        if t >= params.max_iterations {
            break StopReason::MaxIterations;
        }
        state.update(&counts, input.demand, t);
        let step = state.step_params(t);

        // 1. Tile steps.
        {
            let padded = &padded;
            rects
                .par_iter()
                .zip(outs.par_iter_mut())
                .for_each(|(rect, out)| {
                    let window = ClassWindow {
                        data: &padded[rect.y0 * pw + rect.x0..],
                        stride: pw,
                    };
                    let origin = rect.y0 * w + rect.x0;
                    let stat = TileStatic {
                        suitability: &input.suitability[origin * k..],
                        restricted: &input.restricted[origin..],
                        stride: w,
                    };
                    tile_step(params, &step, rect, &window, &stat, out);
                });
        }
        hist.iter_mut().for_each(|v| *v = 0);
        for out in &outs {
            for (a, &b) in hist.iter_mut().zip(&out.histogram) {
                *a += b as u64;
            }
        }

        // 2. Bucket walk with exact keys where a class may reach its bound.
        let mut walk = BucketWalk::new(&state);
        let (mut key_requests, mut exact_keys) = (0u32, 0u64);
        let mut exact: Vec<Proposal> = Vec::new();
        while let Some(req) = walk.next_request(&hist) {
            exact.clear();
            for out in &outs {
                out.in_bucket(req.bucket, &req.touch, &mut exact);
            }
            key_requests += 1;
            exact_keys += exact.len() as u64;
            walk.resolve(&hist, &mut exact);
        }
        let walked = walk.accepted();
        let thresholds: Thresholds = walk.finish();

        // 3. Commit, then apply the changes (double buffering: all steps saw the old map).
        let accepted: u64 = outs
            .par_iter()
            .zip(changed.par_iter_mut())
            .map(|(out, ch)| {
                ch.clear();
                commit(&out.proposals, &thresholds, ch)
            })
            .collect::<Vec<u64>>()
            .iter()
            .sum();
        debug_assert_eq!(accepted, walked);
        for ch in &changed {
            for &(cell, to) in ch {
                let (x, y) = (cell as usize % w, cell as usize / w);
                let p = &mut padded[(y + r) * pw + x + r];
                counts[*p as usize] -= 1;
                counts[to as usize] += 1;
                *p = to;
            }
        }

        let sum = gap_sum(&counts);
        if sum < best_sum {
            best_sum = sum;
            since_best = 0;
        } else {
            since_best += 1;
        }
        let total = |f: fn(&TileProposals) -> u64| outs.iter().map(f).sum::<u64>();
        records.push(IterationRecord {
            t,
            inertia: state.inertia.clone(),
            locks: state.locks.clone(),
            counts: counts.clone(),
            gaps: (0..k).map(|c| input.demand[c] - counts[c] as i64).collect(),
            sum_abs_gap: sum,
            raw_proposals: total(|o| o.raw_proposals),
            proposals: total(|o| o.proposals.len() as u64),
            accepted,
            skipped_uniform: total(|o| o.skipped_uniform),
            skipped_closed: total(|o| o.skipped_closed),
            key_requests,
            exact_keys,
        });
        progress(t, sum);
        t += 1;
    };

    let mut map = vec![INVALID; cells];
    for y in 0..h {
        map[y * w..(y + 1) * w].copy_from_slice(&padded[(y + r) * pw + r..(y + r) * pw + r + w]);
    }
    let final_gap: Vec<i64> = (0..k).map(|c| input.demand[c] - counts[c] as i64).collect();
    Ok(CaOutput {
        map,
        records,
        report: CaReport {
            iterations: t,
            stop_reason,
            demand_met: final_gap.iter().all(|g| *g == 0),
            final_gap,
            valid_cells: valid,
            free_cells: free.iter().sum(),
        },
    })
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
    for c in 0..k {
        if input.demand[c] > counts[c] as i64 && (max[c] as f64) < 1.0 / k as f64 {
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
