//! PLUS's CA with multi-type random patch seeds (CARS, Liang et al. 2021), as a variant
//! of the tile step (docs/design.md §4a, `[ca] patches`).
//!
//! The score of class k at a cell is PLUS's overall probability OP(p, k) = sp(p, k) x
//! Omega(p, k) x cost[c][k] x D_k for every class, the current one included, with D_k
//! the class's self-adaptive inertia (docs/design.md §4; PLUS's D_k follows the same
//! rule), and without FLUS's own-class factor I_c x 10 K. Where the neighbourhood term
//! of a class k is zero at a cell (no cell of k in its window, or w_k = 0), k could
//! never appear there. With patches, a cell is a random seed in an iteration with
//! probability `seeds` (a draw keyed by seed, the scenario's CARS stream, iteration and
//! cell); at a seed, a uniform draw r_k per class stands in for the zero term:
//! Omega(p, k) = r_k * mu when r_k < sp(p, k), else 0, with mu = `decay` (PLUS's
//! expansion coefficient: the higher, the more new patches). When the roulette picks
//! such a class, FLUS's gate is replaced by PLUS's decreasing threshold: the seed is
//! proposed when sp(p, k) > tau_l * r1, tau_l = threshold^l (PLUS's patch generation
//! threshold: the higher, the more conservative), r1 = 2 * U2 (mean 1, range 0-2), and
//! l the number of iterations so far in which the total gap did not fall
//! ([`patch_level`]). The roles are those PLUS's user manual gives the two settings
//! (docs/design.md §4a). Growth next to a class's cells has no gate (FLUS's gate is
//! GeoSOS-FLUS's): the roulette's winner is proposed. The acceptance in key order is
//! FLUS's, so the demand is met exactly as without patches and the numbers do not depend
//! on tiling.
//! In transition mode (`[ca] allocation = "transitions"`) the step keeps that mode's
//! two rules: a cell changes at most once per run, and a neighbour that changed counts
//! for its start class too; seeds are then proposals of their pair like any other.

use super::params::CaParams;
use super::step::{
    neighbour_counts, omega, roulette, start_counts, suitability_from_fixed, ClassWindow, Proposal,
    StepParams, TileProposals, TileRect, TileStatic,
};
use super::INVALID;
use crate::rng::{stream, CounterRng};

/// `[ca] patches`: PLUS's patch generation threshold (`threshold`), expansion
/// coefficient (`decay`) and percentage of seeds (`seeds`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Patches {
    /// delta, PLUS's patch generation threshold: the factor of the seeds' decreasing
    /// threshold tau_l = delta^l (the higher, the more conservative); in (0, 1].
    pub threshold: f64,
    /// mu, PLUS's expansion coefficient: a seed's stand-in neighbourhood term is
    /// r * mu (the higher, the more new patches); in (0, 1].
    pub decay: f64,
    /// Share of the cells that are random seeds in an iteration (PLUS's percentage of
    /// seeds, as a share); in [0, 1].
    pub seeds: f64,
}

impl Patches {
    /// PLUS's GUI defaults, as its user manual shows them (docs/design.md §4a).
    pub const PLUS_DEFAULTS: Patches = Patches {
        threshold: 0.5,
        decay: 0.1,
        seeds: 0.0001,
    };

    /// Checks the ranges; the message names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let unit = |v: f64| v.is_finite() && v > 0.0 && v <= 1.0;
        if !unit(self.threshold) {
            return Err(format!(
                "patches.threshold = {}, expected a value in (0, 1]",
                self.threshold
            ));
        }
        if !unit(self.decay) {
            return Err(format!(
                "patches.decay = {}, expected a value in (0, 1]",
                self.decay
            ));
        }
        if !(self.seeds.is_finite() && (0.0..=1.0).contains(&self.seeds)) {
            return Err(format!(
                "patches.seeds = {}, expected a value in [0, 1]",
                self.seeds
            ));
        }
        Ok(())
    }

    /// The threshold tau_l = threshold^l after `level` decay steps.
    pub fn tau(&self, level: u32) -> f64 {
        self.threshold.powi(level.min(i32::MAX as u32) as i32)
    }
}

/// The decay steps l before the next iteration: among the iterations done, those whose
/// total gap (`sums`, in order) did not fall below the one before (the first compared
/// with `start_sum`, the gap of the start map). PLUS decays when an iteration's progress
/// is below its demand step; here every accepted cell is exact, so "no progress" is the
/// analogue.
pub fn patch_level(start_sum: u64, sums: impl Iterator<Item = u64>) -> u32 {
    let mut prev = start_sum;
    let mut level = 0;
    for s in sums {
        if s >= prev {
            level += 1;
        }
        prev = s;
    }
    level
}

/// The seed's stand-in for a zero neighbourhood term: `r * mu` when `r < sp`, else 0
/// (PLUS: a cell may start a patch of k only when its draw is below its probability).
#[inline]
pub fn seed_term(r: f64, sp: f64, mu: f64) -> f64 {
    if r < sp {
        r * mu
    } else {
        0.0
    }
}

/// PLUS's decreasing threshold for a seed: `sp > tau * r1` with r1 = 2 * `u2`.
#[inline]
pub fn seed_gate(u2: f64, tau: f64, sp: f64) -> bool {
    tau * (2.0 * u2) < sp
}

/// Whether `cell` is a random seed in iteration `t` on the CA stream `ca_stream`: word 0
/// of draw block 0, uniform in (0, 1), below `seeds`.
#[inline]
pub fn is_seed(rng: &CounterRng, ca_stream: u32, t: u32, cell: u64, seeds: f64) -> bool {
    let b = rng.block(ca_stream + stream::CARS_OFFSET, t, cell, 0);
    CounterRng::unit(b[0]) < seeds
}

/// The draw r_k of class `k` at `cell` in iteration `t` on the CA stream `ca_stream`:
/// word k % 4 of draw block 1 + k / 4.
#[inline]
pub fn seed_draw(rng: &CounterRng, ca_stream: u32, t: u32, cell: u64, k: usize) -> f64 {
    let b = rng.block(ca_stream + stream::CARS_OFFSET, t, cell, (1 + k / 4) as u8);
    CounterRng::unit(b[k % 4])
}

/// PLUS's overall probability OP(p, k) = sp(p, k) * Omega(p, k) * cost[c][k] * D_k of
/// every class k (the current one included; `d`: the classes' adaptive inertia), into
/// `out`; returns their sum (in class order).
#[inline]
pub fn overall_scores(
    sp: &[f64],
    omega: &[f64],
    cost_row: &[f64],
    d: &[f64],
    out: &mut [f64],
) -> f64 {
    let mut sum = 0.0;
    for (k, o) in out.iter_mut().enumerate() {
        *o = sp[k] * omega[k] * cost_row[k] * d[k];
        sum += *o;
    }
    sum
}

/// Per-cell buffers of [`tile_step_cars`].
struct CellScratch {
    counts: [u32; 256],
    sp: Vec<f64>,
    om: Vec<f64>,
    tp: Vec<f64>,
    seed: Vec<bool>,
}

/// The tile's fixed inputs of one CARS step.
struct CarsTile<'a> {
    params: &'a CaParams,
    patches: &'a Patches,
    step: &'a StepParams,
    window: &'a ClassWindow<'a>,
    stat: &'a TileStatic<'a>,
    rng: CounterRng,
    /// The seeds' threshold tau_l of this step.
    tau: f64,
}

/// What one cell gives.
enum CellOutcome {
    /// No change drawn, or the seeds' threshold refused it.
    Nothing,
    /// A change drawn into a class or pair closed for this iteration.
    Closed,
    /// A proposal.
    Proposed(Proposal),
}

impl CarsTile<'_> {
    /// The cell's sp, its Omega with the seeds' stand-ins (and which classes came in
    /// through a seed), and PLUS's overall probabilities of the cell at (x, y) of class
    /// `cu`; returns their sum.
    fn scores(&self, (x, y): (usize, usize), cell: u64, cu: usize, s: &mut CellScratch) -> f64 {
        let (params, kk, n) = (self.params, self.params.k, self.params.neighbourhood);
        let sbase = (y * self.stat.stride + x) * kk;
        for (d, &q) in
            s.sp.iter_mut()
                .zip(&self.stat.suitability[sbase..sbase + kk])
        {
            *d = suitability_from_fixed(q);
        }
        s.counts.fill(0);
        neighbour_counts(self.window, x, y, n, &mut s.counts);
        if self.step.transitions {
            start_counts(self.window, self.stat.start_classes, x, y, n, &mut s.counts);
        }
        omega(&s.counts[..kk], n, &params.weights, &mut s.om);
        let cost_row = &params.cost[cu];
        s.seed.fill(false);
        let t = self.step.iteration;
        if is_seed(&self.rng, params.stream, t, cell, self.patches.seeds) {
            for k in 0..kk {
                if k == cu || s.om[k] != 0.0 || cost_row[k] <= 0.0 || s.sp[k] <= 0.0 {
                    continue;
                }
                let r = seed_draw(&self.rng, params.stream, t, cell, k);
                let v = seed_term(r, s.sp[k], self.patches.decay);
                s.om[k] = v;
                s.seed[k] = v > 0.0;
            }
        }
        overall_scores(&s.sp, &s.om, cost_row, &self.step.inertia, &mut s.tp)
    }

    /// The roulette (U1), the seeds' threshold (U2) when the winner came in through a
    /// seed, the classes and pairs closed for this iteration, and the key U3 of the cell
    /// of class `c`.
    fn choose(&self, s: &CellScratch, sum: f64, cell: u64, c: u8) -> CellOutcome {
        let (kk, t, cu) = (self.params.k, self.step.iteration, c as usize);
        let b = self.rng.block(self.params.stream, t, cell, 0);
        let Some(to) = roulette(&s.tp, sum, CounterRng::unit(b[0])) else {
            return CellOutcome::Nothing;
        };
        if to == cu || self.params.cost[cu][to] <= 0.0 {
            return CellOutcome::Nothing;
        }
        // PLUS has no gate for growth next to a class's cells (FLUS's (U2 + 1/K) / (t + 1)
        // < sp is GeoSOS-FLUS's): only a class that came in through a seed must pass the
        // decreasing threshold
        if s.seed[to] && !seed_gate(CounterRng::unit(b[1]), self.tau, s.sp[to]) {
            CellOutcome::Nothing
        } else if self.step.closed_in[to] || self.step.closed_pairs[cu * kk + to] {
            CellOutcome::Closed
        } else {
            CellOutcome::Proposed(Proposal {
                cell,
                key: b[2],
                from: c,
                to: to as u8,
            })
        }
    }
}

/// The tile step with patch seeds: for every valid unrestricted cell whose class may lose
/// cells (none is skipped as uniform: a cell inside a patch of its own class may seed),
/// PLUS's overall probabilities with the seeds' stand-ins, the roulette (U1), the seeds'
/// threshold (U2; growth next to a class's cells has no gate in PLUS) and the key U3,
/// from the same block as [`super::tile_step`] (stream `params.stream`, draw 0).
pub fn tile_step_cars(
    params: &CaParams,
    patches: &Patches,
    step: &StepParams,
    rect: &TileRect,
    window: &ClassWindow,
    stat: &TileStatic,
    out: &mut TileProposals,
) {
    let kk = params.k;
    let r = params.radius();
    let tile = CarsTile {
        params,
        patches,
        step,
        window,
        stat,
        rng: CounterRng::new(params.seed),
        tau: patches.tau(step.patch_level),
    };
    out.proposals.clear();
    out.histogram.clear();
    out.histogram.resize(super::BUCKETS * kk * kk, 0);
    out.cells = 0;
    out.skipped_uniform = 0;
    out.skipped_closed = 0;
    out.raw_proposals = 0;
    let mut s = CellScratch {
        counts: [0; 256],
        sp: vec![0.0; kk],
        om: vec![0.0; kk],
        tp: vec![0.0; kk],
        seed: vec![false; kk],
    };
    for y in 0..rect.height {
        for x in 0..rect.width {
            let centre = (y + r) * window.stride + x + r;
            let c = window.data[centre];
            if c == INVALID || stat.restricted[y * stat.stride + x] {
                continue;
            }
            out.cells += 1;
            let cu = c as usize;
            // transition mode: a cell changes at most once per run (docs/design.md §5)
            let moved = step.transitions && stat.start_classes[centre] != c;
            if moved || step.closed_out[cu] {
                out.skipped_closed += 1;
                continue;
            }
            let cell = ((rect.y0 + y) * rect.grid_width + rect.x0 + x) as u64;
            let sum = tile.scores((x, y), cell, cu, &mut s);
            match tile.choose(&s, sum, cell, c) {
                CellOutcome::Nothing => {}
                CellOutcome::Closed => out.raw_proposals += 1,
                CellOutcome::Proposed(p) => {
                    out.raw_proposals += 1;
                    out.histogram[(p.bucket() * kk + cu) * kk + p.to as usize] += 1;
                    out.proposals.push(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
