//! One CA run of a session ([`RunLane`]): its lane on every tile of the workers, the
//! run's own state between the phases of an iteration, and the [`Backend`] its
//! `run_loop` steps through. Several runs of one session run at once, each on its own
//! thread and lane; the session ([`Remote`]) is shared behind a mutex that a run holds
//! only to build its calls and to account for their replies, never while it waits.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use flus_proto::v1::{CarbonRequest, ProposeRequest};
#[cfg(doc)]
use flus_shared::ca::Backend;
use flus_shared::ca::{self, CaParams, MapView, StepSummary};

use super::{lock, Remote, Traffic, WorkerTraffic};
use crate::cluster::fanout::{join, request, rpc, Calls};
use crate::cluster::wire::ca as wire;

mod backend;
mod reset;

/// A lane never set on a tile.
const UNSET: u64 = u64::MAX;

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
}
