//! The CA iteration loop (docs/design.md §4, §5, §9), generic over where the tiles live:
//! in this process ([`LocalTiles`]) or on gRPC workers (the coordinator's backend). The
//! loop holds the authoritative class map, the global counts and the inertia state; a
//! backend only runs tile steps, answers exact-key requests and commits. The output is
//! a pure function of the inputs, whatever the backend, tiling, thread count or
//! failure history. A checkpoint of the loop's state lets a run resume with the same
//! result.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::acceptance::{BucketWalk, KeyRequest, Thresholds};
use super::commit::commit;
use super::driver::{CaInput, CaOutput, CaReport, IterationRecord, StopReason};
use super::feasibility::{check_demand, check_feasible, class_counts};
use super::inertia::InertiaState;
use super::params::CaParams;
use super::quota::{check_quota_demand, check_quotas, PairWalk, QuotaState};
use super::step::{
    tile_step, ClassWindow, Proposal, StepParams, TileProposals, TileRect, TileStatic,
};
use super::{BUCKETS, INVALID};
use crate::{Error, Result};

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

/// The tiles in this process, stepped in parallel with rayon.
pub struct LocalTiles<'a> {
    rects: Vec<TileRect>,
    outs: Vec<TileProposals>,
    /// The input's suitability in fixed point ([`super::suitability_fixed`]).
    suitability: Vec<u16>,
    restricted: &'a [bool],
    width: usize,
    k: usize,
    /// The run's start map, kept to pad it for transition mode.
    classes: &'a [u8],
    height: usize,
    /// The start map padded like the class map (transition mode only; built at the
    /// first step that needs it).
    start: Vec<u8>,
}

impl<'a> LocalTiles<'a> {
    /// Local tiles `rects` over `input`'s static layers.
    pub fn new(rects: Vec<TileRect>, input: &CaInput<'a>, k: usize) -> Self {
        let n = rects.len();
        Self {
            rects,
            outs: (0..n).map(|_| TileProposals::default()).collect(),
            suitability: super::step::suitability_fixed(input.suitability),
            restricted: input.restricted,
            width: input.width,
            k,
            classes: input.classes,
            height: input.height,
            start: Vec::new(),
        }
    }
}

impl Backend for LocalTiles<'_> {
    fn propose(
        &mut self,
        params: &CaParams,
        step: &StepParams,
        map: &MapView,
        sum: &mut StepSummary,
    ) -> Result<()> {
        let (w, k) = (self.width, self.k);
        if step.transitions && self.start.is_empty() {
            self.start = super::window::pad(self.classes, w, self.height, params.radius())?;
        }
        let (suit, restricted, start) = (&self.suitability[..], self.restricted, &self.start);
        if suit.len() != restricted.len() * k {
            return Err(Error::Data(format!(
                "local tiles: {} suitability values for {} cells x {k} classes",
                suit.len(),
                restricted.len()
            )));
        }
        self.rects
            .par_iter()
            .zip(self.outs.par_iter_mut())
            .for_each(|(rect, out)| {
                let window = ClassWindow {
                    data: &map.padded[rect.y0 * map.stride + rect.x0..],
                    stride: map.stride,
                };
                let origin = rect.y0 * w + rect.x0;
                let stat = TileStatic {
                    suitability: &suit[origin * k..],
                    restricted: &restricted[origin..],
                    stride: w,
                    start_classes: if start.is_empty() {
                        &[]
                    } else {
                        &start[rect.y0 * map.stride + rect.x0..]
                    },
                };
                tile_step(params, step, rect, &window, &stat, out);
            });
        sum.histogram.clear();
        sum.histogram.resize(BUCKETS * k * k, 0);
        for out in &self.outs {
            for (a, &b) in sum.histogram.iter_mut().zip(&out.histogram) {
                *a += b as u64;
            }
            sum.proposals += out.proposals.len() as u64;
            sum.raw_proposals += out.raw_proposals;
            sum.cells += out.cells;
            sum.skipped_uniform += out.skipped_uniform;
            sum.skipped_closed += out.skipped_closed;
        }
        Ok(())
    }

    fn exact(&mut self, req: &KeyRequest, _map: &MapView, out: &mut Vec<Proposal>) -> Result<()> {
        out.clear();
        for o in &self.outs {
            o.in_bucket(req.bucket, &req.touch, out);
        }
        Ok(())
    }

    fn commit(
        &mut self,
        thresholds: &Thresholds,
        _map: &MapView,
        changed: &mut Vec<(u64, u8)>,
    ) -> Result<()> {
        let parts: Vec<Vec<(u64, u8)>> = self
            .outs
            .par_iter()
            .map(|o| {
                let mut ch = Vec::new();
                commit(&o.proposals, thresholds, &mut ch);
                ch
            })
            .collect();
        changed.clear();
        for p in parts {
            changed.extend(p);
        }
        changed.sort_unstable();
        Ok(())
    }
}

/// The state of the loop between iterations: enough to resume a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// Next iteration to run.
    pub t: u32,
    /// Class map (unpadded, row-major); stored as raw bytes after the JSON of the rest
    /// ([`Checkpoint::write`]).
    #[serde(skip)]
    pub map: Vec<u8>,
    /// Inertia, locks and reference gaps.
    pub state: InertiaState,
    /// Smallest sum |gap| so far and iterations since it.
    pub best_sum: u64,
    /// Iterations since `best_sum` last decreased.
    pub since_best: u32,
    /// Records of the iterations run so far.
    pub records: Vec<IterationRecord>,
    /// The run it belongs to (set by the caller that stores it; a checkpoint without one
    /// is never resumed).
    #[serde(default)]
    pub identity: Option<super::resume::RunIdentity>,
}

impl Checkpoint {
    /// Writes the checkpoint: one line of JSON (everything but the map), a newline, then
    /// the map's bytes, one per cell. A 130 M-cell map is written as it is held, where
    /// text (a JSON array, then a hex string) took a core for seconds and several times
    /// the map's memory.
    pub fn write(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, self)?;
        w.write_all(b"\n")?;
        w.write_all(&self.map)
    }

    /// Reads what [`Self::write`] wrote (`bytes` become the map, without a copy);
    /// `source` names the file in errors.
    pub fn read(mut bytes: Vec<u8>, source: &std::path::Path) -> Result<Self> {
        let bad = |what: String| {
            Error::Data(format!(
                "{}: not a flus checkpoint ({what}); expected a line of JSON, then the map",
                source.display()
            ))
        };
        let line = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no end of line".into()))?;
        let mut c: Checkpoint =
            serde_json::from_slice(&bytes[..line]).map_err(|e| bad(e.to_string()))?;
        bytes.drain(..=line);
        c.map = bytes;
        Ok(c)
    }
}

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
    let (start_counts, free) = class_counts(k, input.classes, input.restricted)?;
    let valid: u64 = start_counts.iter().sum();
    check_demand(input.demand, k, valid)?;
    let feasible = match input.quota {
        None => check_feasible(params, &start_counts, &free, input.demand).map(|_| ()),
        Some(q) => {
            check_quota_demand(q, &start_counts, input.demand)?;
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
        super::driver::warn_low_suitability(params, input, &start_counts);
    }

    let r = params.radius();
    let pw = w + 2 * r;
    let start_map = resume
        .as_ref()
        .map(|c| c.map.as_slice())
        .unwrap_or(input.classes);
    if start_map.len() != cells {
        return Err(Error::Data(format!(
            "checkpoint map has {} cells, the grid {cells}",
            start_map.len()
        )));
    }
    let mut padded = super::window::pad(start_map, w, h, r)?;
    // transition mode: the pair quotas and the conversions done since the run's start
    let mut quotas = match input.quota {
        Some(q) => Some(QuotaState::new(k, q, input.classes, start_map)?),
        None => None,
    };
    let gap_sum = |counts: &[u64], quotas: &Option<QuotaState>| -> u64 {
        match quotas {
            Some(q) => q.left(),
            None => (0..k)
                .map(|c| (input.demand[c] - counts[c] as i64).unsigned_abs())
                .sum(),
        }
    };
    let (mut t, mut state, mut best_sum, mut since_best, mut records, mut counts) = match resume {
        Some(c) => {
            let (counts, _) = class_counts(k, &c.map, input.restricted)?;
            (c.t, c.state, c.best_sum, c.since_best, c.records, counts)
        }
        None => {
            let counts = start_counts.clone();
            (
                0,
                InertiaState::new(k, params.accelerate),
                gap_sum(&counts, &quotas),
                0,
                Vec::new(),
                counts,
            )
        }
    };
    let mut sum = StepSummary::default();
    let mut exact: Vec<Proposal> = Vec::new();
    let mut changed: Vec<(u64, u8)> = Vec::new();
    let stop_reason = loop {
        if gap_sum(&counts, &quotas) == 0 {
            break StopReason::DemandMet;
        }
        if since_best >= params.stall_iterations {
            break StopReason::Stalled;
        }
        if t >= params.max_iterations {
            break StopReason::MaxIterations;
        }
        let (mut step, iteration_params) =
            plan_iteration(params, &mut state, &quotas, &counts, input.demand, t);
        if params.patches.is_some() {
            // from the records: the same level after a resume
            step.patch_level = super::patches::patch_level(
                gap_sum(&start_counts, &None),
                records.iter().map(|r: &IterationRecord| r.sum_abs_gap),
            );
        }
        let view = MapView {
            padded: &padded,
            stride: pw,
        };
        sum = StepSummary {
            histogram: std::mem::take(&mut sum.histogram),
            ..Default::default()
        };
        backend.propose(
            iteration_params.as_ref().unwrap_or(params),
            &step,
            &view,
            &mut sum,
        )?;

        let walk = match &quotas {
            None => Walk::Net(BucketWalk::new(&state)),
            Some(q) => Walk::Pairs(q.walk()),
        };
        let (thresholds, walked, key_requests, exact_keys) =
            accept(backend, walk, &sum.histogram, &view, &mut exact)?;
        backend.commit(&thresholds, &view, &mut changed)?;
        if changed.len() as u64 != walked {
            return Err(Error::Data(format!(
                "iteration {t}: the bucket walk accepted {walked} proposals but the tiles committed {}",
                changed.len()
            )));
        }
        // double buffering: every step of this iteration saw the old map
        for &(cell, to) in &changed {
            let (x, y) = (cell as usize % w, cell as usize / w);
            let p = &mut padded[(y + r) * pw + x + r];
            if let Some(q) = &mut quotas {
                if input.classes[cell as usize] != *p {
                    return Err(Error::Data(format!(
                        "iteration {t}: transition mode, cell {cell} changed a second time"
                    )));
                }
                q.record(*p, to)?;
            }
            counts[*p as usize] -= 1;
            counts[to as usize] += 1;
            *p = to;
        }
        let s = gap_sum(&counts, &quotas);
        if s < best_sum {
            best_sum = s;
            since_best = 0;
        } else {
            since_best += 1;
        }
        records.push(IterationRecord {
            t,
            inertia: state.inertia.clone(),
            locks: state.locks.clone(),
            counts: counts.clone(),
            gaps: (0..k).map(|c| input.demand[c] - counts[c] as i64).collect(),
            sum_abs_gap: s,
            raw_proposals: sum.raw_proposals,
            proposals: sum.proposals,
            accepted: changed.len() as u64,
            skipped_uniform: sum.skipped_uniform,
            skipped_closed: sum.skipped_closed,
            key_requests,
            exact_keys,
        });
        progress(t, s);
        t += 1;
        let unpad = || {
            let mut m = vec![INVALID; cells];
            for y in 0..h {
                m[y * w..(y + 1) * w]
                    .copy_from_slice(&padded[(y + r) * pw + r..(y + r) * pw + r + w]);
            }
            m
        };
        checkpoint(t, &|| Checkpoint {
            t,
            map: unpad(),
            state: state.clone(),
            best_sum,
            since_best,
            records: records.clone(),
            identity: None,
        })?;
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
            demand_met: match &quotas {
                Some(q) => q.left() == 0,
                None => final_gap.iter().all(|g| *g == 0),
            },
            transitions_done: quotas.as_ref().map(|q| q.done().to_vec()),
            final_gap,
            valid_cells: valid,
            free_cells: free.iter().sum(),
        },
    })
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_a_line_of_json_then_its_map_and_reads_back() {
        let c = Checkpoint {
            t: 3,
            map: vec![0, 1, 255, 10, 16],
            state: InertiaState::new(2, 1.0),
            best_sum: 7,
            since_best: 1,
            records: Vec::new(),
            identity: None,
        };
        let mut bytes = Vec::new();
        c.write(&mut bytes).unwrap();
        // the map's 5 bytes as they are (10 is a newline: only the first one ends the JSON)
        assert_eq!(&bytes[bytes.len() - 6..], &[b'\n', 0, 1, 255, 10, 16]);
        let line = bytes.iter().position(|&b| b == b'\n').unwrap();
        assert_eq!(line, bytes.len() - 6);
        let head: serde_json::Value = serde_json::from_slice(&bytes[..line]).unwrap();
        assert_eq!(head["t"], 3);
        assert!(head.get("map").is_none());
        let p = std::path::Path::new("cp.ckpt");
        assert_eq!(Checkpoint::read(bytes, p).unwrap(), c);
        let e = Checkpoint::read(b"{\"t\":3}".to_vec(), p).unwrap_err();
        assert!(
            e.to_string()
                .contains("cp.ckpt: not a flus checkpoint (no end of line)"),
            "{e}"
        );
        let e = Checkpoint::read(b"[1,2]\n\x01".to_vec(), p).unwrap_err();
        assert!(
            e.to_string().contains("cp.ckpt: not a flus checkpoint"),
            "{e}"
        );
    }
}
