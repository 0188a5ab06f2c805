//! One CA run of a session ([`RunLane`]): its lane on every tile of the workers, the
//! run's own state between the phases of an iteration, and the [`Backend`] its
//! `run_loop` steps through. Several runs of one session run at once, each on its own
//! thread and lane; the session ([`Remote`]) is shared behind a mutex that a run holds
//! only to build its calls and to account for their replies, never while it waits.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use flus_proto::v1::{
    CarbonRequest, CommitRequest, ExactKeysRequest, ProposeRequest, ResetRequest,
};
use flus_shared::ca::{
    self, Backend, CaParams, KeyRequest, MapView, Proposal, StepSummary, Thresholds, BUCKETS,
};

use super::{Remote, Traffic, WorkerTraffic};
use crate::cluster::fanout::{join, request, rpc, Calls};
use crate::cluster::wire::ca as wire;

/// A lane never set on a tile.
const UNSET: u64 = u64::MAX;

/// The session behind its mutex (a run that panicked leaves the session usable: its
/// state is only counters and placements, each consistent at every unlock).
fn lock<'g, 'a>(session: &'g Mutex<Remote<'a>>) -> MutexGuard<'g, Remote<'a>> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// One CA run of a session: the backend of its `run_loop`, on its own lane of every tile.
/// Its lane is given back to the session when it is dropped.
pub struct RunLane<'s, 'a> {
    session: &'s Mutex<Remote<'a>>,
    st: LaneState,
}

/// The run's state, apart from the session.
struct LaneState {
    lane: u32,
    label: String,
    k: usize,
    last: Option<(CaParams, ca::StepParams)>,
    /// The changes of the last commit, sorted by cell.
    pending: Vec<(u64, u8)>,
    /// Per tile, the positions in `pending` of the changes in its halo ring.
    pending_halo: Vec<Vec<u32>>,
    stepped: Vec<bool>,
    counted: Vec<bool>,
    /// Per tile, whether it committed in the current iteration (its own core changes are
    /// applied in its lane on its worker).
    committed: Vec<bool>,
    /// The changes committed so far in the current Commit phase. The run's map gets them
    /// only when the phase ends, so a committed tile whose lane is set again in the same
    /// phase (its worker lost after committing) gets them on top of the map
    /// ([`LaneState::restore`]); without them it would lose its own changes.
    commit_changes: Vec<(u64, u8)>,
    /// Transition mode: the cells where the run's start map differs from the session's
    /// (a later stage of staged years), sent with every ResetClasses of the lane.
    run_start: Vec<(u64, u8)>,
    /// Per tile, the session epoch its lane was last set on ([`UNSET`]: never).
    epoch: Vec<u64>,
    /// What this run sent and received.
    traffic: Traffic,
}

/// A round's replies: per worker that answered, what `make` kept for its call, and its
/// replies in call order.
type Answered<T, M> = Vec<(usize, M, Vec<T>)>;

/// What a call of a round is built from: the calls, the tiles they name, and what the
/// caller keeps to read the replies.
type Built<T, M> = Option<(Calls<T>, Vec<u32>, M)>;

impl<'s, 'a> RunLane<'s, 'a> {
    /// A run `label` of `session` on the smallest lane no other run of it holds. Its
    /// lane is set on every tile from the map of its first call.
    pub fn new(session: &'s Mutex<Remote<'a>>, label: &str) -> Self {
        let mut s = lock(session);
        let lane = (0u32..)
            .find(|l| !s.lanes.contains(l))
            .expect("fewer runs than lanes");
        s.lanes.insert(lane);
        let n = s.rects.len();
        let per_worker = s
            .workers
            .iter()
            .map(|w| WorkerTraffic {
                addr: w.conn.addr.clone(),
                ..Default::default()
            })
            .collect();
        let k = s.k;
        drop(s);
        Self {
            session,
            st: LaneState {
                lane,
                label: label.to_string(),
                k,
                last: None,
                pending: Vec::new(),
                pending_halo: vec![Vec::new(); n],
                stepped: vec![false; n],
                counted: vec![false; n],
                committed: vec![false; n],
                commit_changes: Vec::new(),
                run_start: Vec::new(),
                epoch: vec![UNSET; n],
                traffic: Traffic {
                    per_worker,
                    ..Default::default()
                },
            },
        }
    }

    /// Transition mode: the run starts from `start` (the grid's classes, row-major),
    /// which may differ from the session's start map (a later stage of staged years).
    /// Its lane is set with it as the run's start window on every tile, for the rule
    /// that a cell changes at most once per run. Call before the run's first step.
    pub fn set_run_start(&mut self, start: &[u8]) {
        let s = lock(self.session);
        self.st.run_start = start
            .iter()
            .zip(s.layers.start)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (&a, _))| (i as u64, a))
            .collect();
    }

    /// The lane this run holds.
    pub fn lane(&self) -> u32 {
        self.st.lane
    }

    /// What this run sent and received so far.
    pub fn traffic(&mut self) -> &mut Traffic {
        &mut self.st.traffic
    }

    /// Runs `f` with the session locked, this run's traffic counters in place of the
    /// session's (so that failovers and rejoins count where they were caused) and the
    /// run named as the work under way.
    fn locked<R>(&mut self, f: impl FnOnce(&mut Remote<'a>, &mut LaneState) -> R) -> R {
        let mut s = lock(self.session);
        let st = &mut self.st;
        std::mem::swap(&mut s.traffic, &mut st.traffic);
        s.current = Some((st.label.clone(), st.iteration()));
        let r = f(&mut s, st);
        s.current = None;
        std::mem::swap(&mut s.traffic, &mut st.traffic);
        r
    }

    /// One round of calls of this run: under the lock, its lane is set on the tiles that
    /// need it and `make` builds the calls of each live tile holder; the calls are waited
    /// for without the lock; their replies are accounted under the lock, and workers that
    /// failed are dropped and their tiles re-sent. With `needs_step`, a round that finds
    /// a tile not stepped (its lane set again) makes no calls and gives None: the caller
    /// steps first. Otherwise the replies of the workers that answered, and whether every
    /// call was answered.
    fn round<T: Send + 'static, M>(
        &mut self,
        map: &MapView,
        needs_step: bool,
        make: impl Fn(&Remote<'a>, &LaneState, usize, Vec<u32>) -> Built<T, M>,
    ) -> flus_shared::Result<Option<(Answered<T, M>, bool)>> {
        let prepared = self.locked(|s, st| -> flus_shared::Result<_> {
            st.restore(s, map)?;
            if needs_step && (0..st.stepped.len()).any(|t| !st.stepped[t] && !st.committed[t]) {
                return Ok(None);
            }
            let (mut calls, mut kept) = (Vec::new(), Vec::new());
            for (w, tiles) in s.holders() {
                if let Some((c, tiles, m)) = make(s, st, w, tiles) {
                    calls.push(c);
                    kept.push((tiles, m));
                }
            }
            Ok(Some((s.start(calls), kept, s.rt.clone())))
        })?;
        let Some((flight, kept, rt)) = prepared else {
            return Ok(None);
        };
        let joined = join(&rt, flight);
        self.locked(|s, st| {
            let results = s.account(joined);
            s.check_refused()?;
            let (mut failed, mut out, mut all) = (Vec::new(), Vec::new(), true);
            for ((w, r), (tiles, m)) in results.into_iter().zip(kept) {
                match r {
                    Ok(v) => out.push((w, m, v)),
                    Err(()) => {
                        all = false;
                        // a tile of the call moved meanwhile (another run dropped its
                        // worker, or it went back to a re-admitted one): the call failed
                        // for that, not for the worker; the next round sets the lane anew
                        let moved = tiles
                            .iter()
                            .any(|&t| s.epoch[t as usize] != st.epoch[t as usize]);
                        if !moved {
                            failed.push(w);
                        }
                    }
                }
            }
            if !failed.is_empty() {
                s.recover(&failed)?;
            }
            Ok(Some((out, all)))
        })
    }

    /// Steps every tile that does not hold this iteration's proposals, on every worker at
    /// once; histograms of tiles not yet counted go into `sum` (integer sums, added in
    /// worker order).
    fn step_all(&mut self, map: &MapView, sum: &mut StepSummary) -> flus_shared::Result<()> {
        let (params, step) = self.st.last.clone().ok_or_else(|| {
            flus_shared::Error::Data("remote CA: a step was asked for before Propose".into())
        })?;
        loop {
            let started = Instant::now();
            let r = self.round(map, false, |s, st, w, tiles| {
                let (mut rpcs, mut parts, mut named, mut halo) =
                    (Vec::new(), Vec::new(), Vec::new(), 0);
                for count in [true, false] {
                    let ids: Vec<u32> = tiles
                        .iter()
                        .copied()
                        .filter(|&t| {
                            let t = t as usize;
                            // a committed tile needs no proposals (one whose lane is set
                            // again in the Commit phase holds the iteration's new map)
                            !st.stepped[t] && !st.committed[t] && st.counted[t] != count
                        })
                        .collect();
                    if ids.is_empty() {
                        continue;
                    }
                    let (req, bytes) = st.propose_request(s, &params, &step, ids.clone());
                    halo += bytes;
                    let req = request(s.deadline, req);
                    let client = &s.workers[w].conn.client;
                    rpcs.push(rpc(client, |mut c| async move { c.propose(req).await }));
                    named.extend(&ids);
                    parts.push((ids, count));
                }
                let what = "Propose".to_string();
                (!rpcs.is_empty()).then(|| (Calls { w, what, rpcs }, named, (parts, halo)))
            })?;
            let Some((out, all)) = r else { continue };
            let called = !out.is_empty() || !all;
            let st = &mut self.st;
            for (w, (parts, halo), replies) in out {
                st.traffic.halo_bytes += halo;
                for ((tiles, count), reply) in parts.into_iter().zip(replies) {
                    st.traffic.per_worker[w].step_seconds += reply.step_seconds;
                    if count {
                        let h = reply.histogram.unwrap_or_default();
                        st.traffic.reply_bytes += h.index.len() as u64 * 12;
                        for (i, c) in h.index.iter().zip(&h.counts) {
                            if let Some(v) = sum.histogram.get_mut(*i as usize) {
                                *v += c;
                            }
                        }
                        sum.proposals += reply.proposals;
                        sum.cells += reply.cells_visited;
                    }
                    for t in tiles {
                        st.stepped[t as usize] = true;
                        st.counted[t as usize] = true;
                    }
                }
            }
            st.traffic.seconds.propose += started.elapsed().as_secs_f64();
            // done once a round finds nothing left to step (a tile moved meanwhile has its
            // lane set again and is stepped again by the next round)
            if !called {
                return Ok(());
            }
        }
    }

    /// Cell counts per (zone, class) of this run's lane, summed over the workers; `map`
    /// is the run's current map (padded), which lanes set again are set from.
    pub fn carbon_counts(&mut self, map: &MapView) -> flus_shared::Result<BTreeMap<i64, Vec<u64>>> {
        let replies = loop {
            let started = Instant::now();
            let r = self.round(map, false, |s, st, w, tiles| {
                let req = request(
                    s.deadline,
                    CarbonRequest {
                        run_id: s.run_id.clone(),
                        tile_ids: tiles.clone(),
                        lane: st.lane,
                    },
                );
                let c = Calls {
                    w,
                    what: "CarbonSums".into(),
                    rpcs: vec![rpc(&s.workers[w].conn.client, |mut c| async move {
                        c.carbon_sums(req).await
                    })],
                };
                Some((c, tiles, ()))
            })?;
            self.st.traffic.seconds.carbon += started.elapsed().as_secs_f64();
            if let Some((out, true)) = r {
                break out;
            }
        };
        let mut total: BTreeMap<i64, Vec<u64>> = Default::default();
        for r in replies.into_iter().flat_map(|(_, _, v)| v) {
            let k = r.classes as usize;
            for (zi, z) in r.zones.iter().enumerate() {
                let e = total.entry(*z).or_insert_with(|| vec![0; k]);
                for c in 0..k {
                    e[c] += r.counts[zi * k + c];
                }
            }
        }
        Ok(total)
    }

    /// Test builds: holds at `{label}-{what}-{iteration}` of this run (see
    /// `flus_shared::hooks`), so that a fault test acts at an exact point of a phase.
    fn hold(&self, what: &str) {
        if let Some((_, step)) = &self.st.last {
            let label = &self.st.label;
            flus_shared::hooks::hold(|| format!("{label}-{what}-{}", step.iteration));
        }
    }
}

impl Drop for RunLane<'_, '_> {
    fn drop(&mut self) {
        let lane = self.st.lane;
        lock(self.session).lanes.remove(&lane);
    }
}

impl LaneState {
    /// The iteration under way (0 before the first).
    fn iteration(&self) -> u32 {
        self.last.as_ref().map(|l| l.1.iteration).unwrap_or(0)
    }

    /// The Propose request of `tiles`, with the halo changes that fall in their windows,
    /// and the bytes of those changes.
    fn propose_request(
        &self,
        s: &Remote<'_>,
        params: &CaParams,
        step: &ca::StepParams,
        tiles: Vec<u32>,
    ) -> (ProposeRequest, u64) {
        // in the order of `pending` (sorted by cell), each change once
        let mut at: Vec<u32> = tiles
            .iter()
            .flat_map(|&t| self.pending_halo[t as usize].iter().copied())
            .collect();
        at.sort_unstable();
        at.dedup();
        let changes: Vec<(u64, u8)> = at.iter().map(|&i| self.pending[i as usize]).collect();
        let req = ProposeRequest {
            run_id: s.run_id.clone(),
            tile_ids: tiles,
            params: Some(wire::step_message(params, step)),
            halo_changes: Some(wire::changes(&changes)),
            lane: self.lane,
        };
        (req, changes.len() as u64 * 9)
    }

    /// Sets this run's lane on every tile whose lane was set on an older epoch of the
    /// tile, or never: the workers restore the session's start map in the lane and apply
    /// the differences of `map` (plus, for tiles that committed in this phase, the changes
    /// committed so far), sent to each worker for its tiles' windows only. Such tiles are
    /// stepped again. Holds the session throughout (no tile moves meanwhile).
    fn restore(&mut self, s: &mut Remote<'_>, map: &MapView) -> flus_shared::Result<()> {
        loop {
            let todo: Vec<bool> = (0..self.epoch.len())
                .map(|t| self.epoch[t] != s.epoch[t])
                .collect();
            if !todo.contains(&true) {
                return Ok(());
            }
            for (t, _) in todo.iter().enumerate().filter(|(_, &d)| d) {
                self.stepped[t] = false;
            }
            let diff = diff_from_start(map, s.layers.start, s.height);
            let mut with_commits = diff.clone();
            with_commits.extend_from_slice(&self.commit_changes);
            let epochs = s.epoch.clone();
            let (mut calls, mut sent) = (Vec::new(), Vec::new());
            for (w, tiles) in s.holders() {
                let mine: Vec<u32> = tiles.into_iter().filter(|&t| todo[t as usize]).collect();
                let mut rpcs = Vec::new();
                for committed in [false, true] {
                    let ids: Vec<u32> = mine
                        .iter()
                        .copied()
                        .filter(|&t| self.committed[t as usize] == committed)
                        .collect();
                    if ids.is_empty() {
                        continue;
                    }
                    let src = if committed { &with_commits } else { &diff };
                    let in_windows = |v: &[(u64, u8)]| -> Vec<(u64, u8)> {
                        v.iter()
                            .copied()
                            .filter(|&(c, _)| ids.iter().any(|&t| s.in_window(t as usize, c)))
                            .collect()
                    };
                    let changes = in_windows(src);
                    let run_start = in_windows(&self.run_start);
                    s.session.reset_bytes += (changes.len() + run_start.len()) as u64 * 9;
                    let req = request(
                        s.deadline,
                        ResetRequest {
                            run_id: s.run_id.clone(),
                            tile_ids: ids,
                            changes: Some(wire::changes(&changes)),
                            lane: self.lane,
                            start_changes: (!run_start.is_empty())
                                .then(|| wire::changes(&run_start)),
                        },
                    );
                    let client = &s.workers[w].conn.client;
                    rpcs.push(rpc(
                        client,
                        |mut c| async move { c.reset_classes(req).await },
                    ));
                }
                if !rpcs.is_empty() {
                    let what = "ResetClasses".to_string();
                    calls.push(Calls { w, what, rpcs });
                    sent.push(mine);
                }
            }
            let started = Instant::now();
            let results = s.call(calls)?;
            s.traffic.seconds.load += started.elapsed().as_secs_f64();
            let failed = Remote::failed(&results);
            for ((_, r), tiles) in results.into_iter().zip(sent) {
                if r.is_ok() {
                    for t in tiles {
                        self.epoch[t as usize] = epochs[t as usize];
                    }
                }
            }
            if !failed.is_empty() {
                s.recover(&failed)?;
            }
        }
    }
}

/// The cells where `map` (padded) differs from `start`, with their class in `map`, in
/// cell order.
fn diff_from_start(map: &MapView, start: &[u8], height: usize) -> Vec<(u64, u8)> {
    let width = start.len() / height.max(1);
    let r = map.stride.saturating_sub(width) / 2;
    let mut diff = Vec::new();
    for y in 0..height {
        let row = &map.padded[(y + r) * map.stride + r..][..width];
        let base = &start[y * width..(y + 1) * width];
        if row != base {
            diff.extend(
                row.iter()
                    .zip(base)
                    .enumerate()
                    .filter(|(_, (a, b))| a != b)
                    .map(|(x, (&a, _))| ((y * width + x) as u64, a)),
            );
        }
    }
    diff
}

impl Backend for RunLane<'_, '_> {
    fn propose(
        &mut self,
        params: &CaParams,
        step: &ca::StepParams,
        map: &MapView,
        sum: &mut StepSummary,
    ) -> flus_shared::Result<()> {
        self.st.last = Some((params.clone(), step.clone()));
        // between iterations: lost workers that answer again take their tiles back
        self.locked(|s, _| {
            if !s.loaded {
                return Err(flus_shared::Error::Data(
                    "remote CA: a run of a session that was not opened".into(),
                ));
            }
            s.readmit()
        })?;
        let (n, k) = (self.st.epoch.len(), self.st.k);
        sum.histogram.clear();
        sum.histogram.resize(BUCKETS * k * k, 0);
        self.st.stepped = vec![false; n];
        self.st.counted = vec![false; n];
        self.st.committed = vec![false; n];
        self.st.commit_changes.clear();
        self.step_all(map, sum)
    }

    fn exact(
        &mut self,
        req: &KeyRequest,
        map: &MapView,
        out: &mut Vec<Proposal>,
    ) -> flus_shared::Result<()> {
        let classes: Vec<u32> = (0..self.st.k)
            .filter(|&c| req.touch[c])
            .map(|c| c as u32)
            .collect();
        let iteration = self.st.iteration();
        let mut scratch = StepSummary::default();
        let replies = loop {
            // tiles moved after a failure are stepped again (not counted again)
            self.step_all(map, &mut scratch)?;
            let started = Instant::now();
            let r = self.round(map, true, |s, st, w, tiles| {
                let r = request(
                    s.deadline,
                    ExactKeysRequest {
                        run_id: s.run_id.clone(),
                        tile_ids: tiles.clone(),
                        iteration,
                        bucket: req.bucket as u32,
                        classes: classes.clone(),
                        lane: st.lane,
                    },
                );
                let c = Calls {
                    w,
                    what: "ExactKeys".into(),
                    rpcs: vec![rpc(&s.workers[w].conn.client, |mut c| async move {
                        c.exact_keys(r).await
                    })],
                };
                Some((c, tiles, ()))
            })?;
            self.st.traffic.seconds.exact += started.elapsed().as_secs_f64();
            if let Some((r, true)) = r {
                break r;
            }
        };
        out.clear();
        for r in replies.into_iter().flat_map(|(_, _, v)| v) {
            self.st.traffic.reply_bytes += r.proposals.len() as u64 * 20;
            out.extend(wire::proposals(r.proposals));
        }
        Ok(())
    }

    fn commit(
        &mut self,
        thresholds: &Thresholds,
        map: &MapView,
        changed: &mut Vec<(u64, u8)>,
    ) -> flus_shared::Result<()> {
        let iteration = self.st.iteration();
        let (t_in, t_out, t_pair) = (
            wire::thresholds(&thresholds.t_in),
            wire::thresholds(&thresholds.t_out),
            wire::thresholds(&thresholds.t_pair),
        );
        changed.clear();
        self.st.commit_changes.clear();
        // test builds: a fault test can stop workers before the iteration's Commit calls
        self.hold("commit");
        let mut scratch = StepSummary::default();
        loop {
            // tiles moved after a failure are stepped again (not counted again)
            self.step_all(map, &mut scratch)?;
            let started = Instant::now();
            let r = self.round(map, true, |s, st, w, tiles| {
                let tiles: Vec<u32> = tiles
                    .into_iter()
                    .filter(|&t| !st.committed[t as usize])
                    .collect();
                if tiles.is_empty() {
                    return None;
                }
                let r = request(
                    s.deadline,
                    CommitRequest {
                        run_id: s.run_id.clone(),
                        tile_ids: tiles.clone(),
                        iteration,
                        t_in: t_in.clone(),
                        t_out: t_out.clone(),
                        t_pair: t_pair.clone(),
                        lane: st.lane,
                    },
                );
                let client = &s.workers[w].conn.client;
                let c = Calls {
                    w,
                    what: "Commit".into(),
                    rpcs: vec![rpc(client, |mut c| async move { c.commit(r).await })],
                };
                Some((c, tiles.clone(), tiles))
            })?;
            self.st.traffic.seconds.commit += started.elapsed().as_secs_f64();
            let Some((out, all)) = r else { continue };
            // the committed workers' changes are kept; a failed worker's uncommitted
            // tiles get their lane set from the (old) map, are stepped and committed
            // again, its committed ones from the old map plus the changes committed so far
            let st = &mut self.st;
            for (_, tiles, replies) in out {
                for r in replies {
                    let c = r.changes.unwrap_or_default();
                    st.traffic.reply_bytes += c.cells.len() as u64 * 9;
                    st.commit_changes.extend(c.cells.into_iter().zip(c.classes));
                }
                for t in tiles {
                    st.committed[t as usize] = true;
                }
            }
            if all {
                break;
            }
        }
        // Workers applied their own core changes; the others learn them with the next
        // Propose (halo changes). Sorted so that nothing depends on reply order.
        changed.append(&mut self.st.commit_changes);
        changed.sort_unstable();
        self.st.pending = changed.clone();
        let pending_halo = lock(self.session).halo.per_tile(&self.st.pending);
        self.st.pending_halo = pending_halo;
        Ok(())
    }
}
