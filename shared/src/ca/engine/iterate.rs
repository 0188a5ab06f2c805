//! The CA iteration loop ([`run_loop`]) over a [`Backend`].

use super::{Backend, Checkpoint, MapView, StepSummary};
use crate::ca::acceptance::{BucketWalk, KeyRequest, Thresholds};
use crate::ca::driver::{CaInput, CaOutput, CaReport, IterationRecord, StopReason};
use crate::ca::feasibility::{check_demand, check_feasible, class_counts};
use crate::ca::inertia::InertiaState;
use crate::ca::params::CaParams;
use crate::ca::quota::{check_quota_demand, check_quotas, PairWalk, QuotaState};
use crate::ca::step::{Proposal, StepParams};
use crate::{Error, Result};

/// The acceptance walk of one iteration: per class (net mode) or per pair (transition
/// mode).
enum Walk {
    Net(BucketWalk),
    Pairs(PairWalk),
}

impl Walk {
    fn next_request(&mut self, hist: &[u64]) -> Option<KeyRequest> {
        match self {
            Walk::Net(w) => w.next_request(hist),
            Walk::Pairs(w) => w.next_request(hist),
        }
    }

    fn resolve(&mut self, hist: &[u64], proposals: &mut [Proposal]) {
        match self {
            Walk::Net(w) => w.resolve(hist, proposals),
            Walk::Pairs(w) => w.resolve(hist, proposals),
        }
    }

    /// The thresholds and the number of proposals accepted.
    fn finish(self) -> (Thresholds, u64) {
        match self {
            Walk::Net(w) => {
                let n = w.accepted();
                (w.finish(), n)
            }
            Walk::Pairs(w) => {
                let n = w.accepted();
                (w.finish(), n)
            }
        }
    }
}

/// Updates the inertia for iteration `t` and returns its step parameters and, in
/// transition mode, the CA parameters of the iteration (the matrix without the pairs
/// whose quota is met, so that the roulette never draws them).
fn plan_iteration(
    params: &CaParams,
    state: &mut InertiaState,
    quotas: &Option<QuotaState>,
    counts: &[u64],
    demand: &[i64],
    t: u32,
) -> (StepParams, Option<CaParams>) {
    match quotas {
        None => {
            state.update(counts, demand, t);
            (state.step_params(t, &params.cost), None)
        }
        Some(q) => {
            let (c, d) = q.inertia_inputs();
            state.update(&c, &d, t);
            let iteration = CaParams {
                cost: q.cost(&params.cost),
                ..params.clone()
            };
            (q.step_params(t, state), Some(iteration))
        }
    }
}

/// Runs `walk` over the merged histogram `hist`, asking `backend` for the exact keys of
/// the buckets it requests; returns the thresholds, the proposals accepted, the
/// requests made and the exact keys received.
fn accept(
    backend: &mut dyn Backend,
    mut walk: Walk,
    hist: &[u64],
    view: &MapView,
    exact: &mut Vec<Proposal>,
) -> Result<(Thresholds, u64, u32, u64)> {
    let (mut key_requests, mut exact_keys) = (0u32, 0u64);
    while let Some(req) = walk.next_request(hist) {
        backend.exact(&req, view, exact)?;
        key_requests += 1;
        exact_keys += exact.len() as u64;
        walk.resolve(hist, exact);
    }
    let (thresholds, walked) = walk.finish();
    Ok((thresholds, walked, key_requests, exact_keys))
}

/// The checkpoint hook of [`run_loop`]: `(iterations done, builder of the state)`.
pub type CheckpointHook<'a> = dyn FnMut(u32, &dyn Fn() -> Checkpoint) -> Result<()> + 'a;

/// Runs the CA loop over `backend`, from `input` or from `resume`. `progress(t, sum)` is
/// called after every iteration; `checkpoint(t, make)` after every iteration too, with
/// the number of iterations done and a builder of the state to resume from (the caller
/// decides how often to build and store it: building copies the whole map).
pub fn run_loop(
    params: &CaParams,
    input: &CaInput,
    backend: &mut dyn Backend,
    resume: Option<Checkpoint>,
    progress: &mut dyn FnMut(u32, u64),
    checkpoint: &mut CheckpointHook<'_>,
) -> Result<CaOutput> {
    let start = check_start(params, input)?;
    let mut run = Run::new(params, input, &start, resume)?;
    let stop_reason = loop {
        if let Some(reason) = run.stop_reason() {
            break reason;
        }
        let s = run.iterate(backend, start.net_gap)?;
        progress(run.t, s);
        run.t += 1;
        checkpoint(run.t, &|| run.checkpoint())?;
    };
    Ok(run.finish(stop_reason, &start))
}

/// The start map's figures, checked before the first iteration.
struct Start {
    /// Cells per class of the input's map.
    counts: Vec<u64>,
    /// Unrestricted cells per class.
    free: Vec<u64>,
    /// Valid cells.
    valid: u64,
    /// Σ |demand − count| of the input's map (PLUS's patch level is measured against
    /// it).
    net_gap: u64,
}

/// Checks the input's sizes, its demand and that the demand (or the pair quotas) can be
/// met; an infeasible demand is an error unless `[ca] unmet = "best_effort"`.
fn check_start(params: &CaParams, input: &CaInput) -> Result<Start> {
    params.validate()?;
    let (w, h, k) = (input.width, input.height, params.k);
    let cells = w * h;
    // an empty suitability: the backend holds its own (workers computing it)
    let own_suitability = !input.suitability.is_empty();
    if input.classes.len() != cells
        || input.restricted.len() != cells
        || (own_suitability && input.suitability.len() != cells * k)
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
    let (counts, free) = class_counts(k, input.classes, input.restricted)?;
    let valid: u64 = counts.iter().sum();
    check_demand(input.demand, k, valid)?;
    let feasible = match input.quota {
        None => check_feasible(params, &counts, &free, input.demand).map(|_| ()),
        Some(q) => {
            check_quota_demand(q, &counts, input.demand)?;
            check_quotas(params, q, &free)
        }
    };
    if let Err(e) = feasible {
        if !params.best_effort {
            return Err(e);
        }
        tracing::warn!(
            "{e}; [ca] unmet = \"best_effort\": running to max_iterations or the stall rule, the gap per class is reported"
        );
    }
    if own_suitability {
        crate::ca::driver::warn_low_suitability(params, input, &counts);
    }
    Ok(Start {
        net_gap: net_gap_sum(input.demand, &counts),
        counts,
        free,
        valid,
    })
}

/// Σ |demand − count| over the classes.
fn net_gap_sum(demand: &[i64], counts: &[u64]) -> u64 {
    demand
        .iter()
        .zip(counts)
        .map(|(d, c)| (d - *c as i64).unsigned_abs())
        .sum()
}

/// The loop's state: the authoritative map (padded by the halo), the counts, the
/// inertia, the stall bookkeeping and the records, with the buffers reused by every
/// iteration.
struct Run<'p, 'i> {
    params: &'p CaParams,
    input: &'p CaInput<'i>,
    /// The class map padded by the halo width ([`crate::ca::window::pad`]).
    padded: Vec<u8>,
    /// Transition mode: the pair quotas and the conversions done since the run's start.
    quotas: Option<QuotaState>,
    /// The next iteration.
    t: u32,
    state: InertiaState,
    best_sum: u64,
    since_best: u32,
    records: Vec<IterationRecord>,
    counts: Vec<u64>,
    sum: StepSummary,
    exact: Vec<Proposal>,
    changed: Vec<(u64, u8)>,
}

impl<'p, 'i> Run<'p, 'i> {
    /// The state at the start of the run, or at `resume`'s iteration.
    fn new(
        params: &'p CaParams,
        input: &'p CaInput<'i>,
        start: &Start,
        resume: Option<Checkpoint>,
    ) -> Result<Self> {
        let (w, h, k) = (input.width, input.height, params.k);
        let start_map = resume
            .as_ref()
            .map(|c| c.map.as_slice())
            .unwrap_or(input.classes);
        if start_map.len() != w * h {
            return Err(Error::Data(format!(
                "checkpoint map has {} cells, the grid {}",
                start_map.len(),
                w * h
            )));
        }
        let padded = crate::ca::window::pad(start_map, w, h, params.radius())?;
        let quotas = match input.quota {
            Some(q) => Some(QuotaState::new(k, q, input.classes, start_map)?),
            None => None,
        };
        let mut run = Run {
            params,
            input,
            padded,
            quotas,
            t: 0,
            state: InertiaState::new(k, params.accelerate),
            best_sum: 0,
            since_best: 0,
            records: Vec::new(),
            counts: start.counts.clone(),
            sum: StepSummary::default(),
            exact: Vec::new(),
            changed: Vec::new(),
        };
        match resume {
            Some(c) => {
                run.counts = class_counts(k, &c.map, input.restricted)?.0;
                (run.t, run.state, run.best_sum) = (c.t, c.state, c.best_sum);
                (run.since_best, run.records) = (c.since_best, c.records);
            }
            None => run.best_sum = run.gap_sum(),
        }
        Ok(run)
    }

    /// Σ |gap| now: the cells left to convert under the pair quotas, or the net gaps.
    fn gap_sum(&self) -> u64 {
        match &self.quotas {
            Some(q) => q.left(),
            None => net_gap_sum(self.input.demand, &self.counts),
        }
    }

    /// Why the loop stops before iteration `t`, if it does.
    fn stop_reason(&self) -> Option<StopReason> {
        if self.gap_sum() == 0 {
            Some(StopReason::DemandMet)
        } else if self.since_best >= self.params.stall_iterations {
            Some(StopReason::Stalled)
        } else if self.t >= self.params.max_iterations {
            Some(StopReason::MaxIterations)
        } else {
            None
        }
    }

    /// Runs iteration `t` (propose, accept, commit, apply) and records it; returns the
    /// Σ |gap| after it. `start_gap` is the net Σ |gap| of the run's start map (PLUS's
    /// patch level is measured against it).
    fn iterate(&mut self, backend: &mut dyn Backend, start_gap: u64) -> Result<u64> {
        let (params, t) = (self.params, self.t);
        let (mut step, iteration_params) = plan_iteration(
            params,
            &mut self.state,
            &self.quotas,
            &self.counts,
            self.input.demand,
            t,
        );
        if params.patches.is_some() {
            // from the records: the same level after a resume
            step.patch_level = crate::ca::patches::patch_level(
                start_gap,
                self.records.iter().map(|r| r.sum_abs_gap),
            );
        }
        let view = MapView {
            padded: &self.padded,
            stride: self.input.width + 2 * params.radius(),
        };
        self.sum = StepSummary {
            histogram: std::mem::take(&mut self.sum.histogram),
            ..Default::default()
        };
        let iteration = iteration_params.as_ref().unwrap_or(params);
        backend.propose(iteration, &step, &view, &mut self.sum)?;
        let walk = match &self.quotas {
            None => Walk::Net(BucketWalk::new(&self.state)),
            Some(q) => Walk::Pairs(q.walk()),
        };
        let (thresholds, walked, key_requests, exact_keys) =
            accept(backend, walk, &self.sum.histogram, &view, &mut self.exact)?;
        backend.commit(&thresholds, &view, &mut self.changed)?;
        if self.changed.len() as u64 != walked {
            return Err(Error::Data(format!(
                "iteration {t}: the bucket walk accepted {walked} proposals but the tiles committed {}",
                self.changed.len()
            )));
        }
        self.apply_changes()?;
        let s = self.gap_sum();
        if s < self.best_sum {
            (self.best_sum, self.since_best) = (s, 0);
        } else {
            self.since_best += 1;
        }
        self.record(s, key_requests, exact_keys);
        Ok(s)
    }

    /// Applies the iteration's committed changes to the map and the counts (double
    /// buffering: every step of the iteration saw the old map).
    fn apply_changes(&mut self) -> Result<()> {
        let (w, r) = (self.input.width, self.params.radius());
        let pw = w + 2 * r;
        for &(cell, to) in &self.changed {
            let (x, y) = (cell as usize % w, cell as usize / w);
            let p = &mut self.padded[(y + r) * pw + x + r];
            if let Some(q) = &mut self.quotas {
                if self.input.classes[cell as usize] != *p {
                    return Err(Error::Data(format!(
                        "iteration {}: transition mode, cell {cell} changed a second time",
                        self.t
                    )));
                }
                q.record(*p, to)?;
            }
            self.counts[*p as usize] -= 1;
            self.counts[to as usize] += 1;
            *p = to;
        }
        Ok(())
    }

    /// Adds the record of iteration `t`, whose Σ |gap| after it is `s`.
    fn record(&mut self, s: u64, key_requests: u32, exact_keys: u64) {
        let k = self.params.k;
        self.records.push(IterationRecord {
            t: self.t,
            inertia: self.state.inertia.clone(),
            locks: self.state.locks.clone(),
            counts: self.counts.clone(),
            gaps: (0..k)
                .map(|c| self.input.demand[c] - self.counts[c] as i64)
                .collect(),
            sum_abs_gap: s,
            raw_proposals: self.sum.raw_proposals,
            proposals: self.sum.proposals,
            accepted: self.changed.len() as u64,
            skipped_uniform: self.sum.skipped_uniform,
            skipped_closed: self.sum.skipped_closed,
            key_requests,
            exact_keys,
        });
    }

    /// The map without its halo padding.
    fn map(&self) -> Vec<u8> {
        let (w, h) = (self.input.width, self.input.height);
        crate::ca::window::unpad(&self.padded, w, h, self.params.radius())
    }

    /// The state to resume from before iteration `t`.
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            t: self.t,
            map: self.map(),
            state: self.state.clone(),
            best_sum: self.best_sum,
            since_best: self.since_best,
            records: self.records.clone(),
            identity: None,
        }
    }

    /// The run's output, stopped for `stop_reason`.
    fn finish(self, stop_reason: StopReason, start: &Start) -> CaOutput {
        let k = self.params.k;
        let final_gap: Vec<i64> = (0..k)
            .map(|c| self.input.demand[c] - self.counts[c] as i64)
            .collect();
        let map = self.map();
        CaOutput {
            map,
            records: self.records,
            report: CaReport {
                iterations: self.t,
                stop_reason,
                demand_met: match &self.quotas {
                    Some(q) => q.left() == 0,
                    None => final_gap.iter().all(|g| *g == 0),
                },
                transitions_done: self.quotas.as_ref().map(|q| q.done().to_vec()),
                final_gap,
                valid_cells: start.valid,
                free_cells: start.free.iter().sum(),
            },
        }
    }
}
