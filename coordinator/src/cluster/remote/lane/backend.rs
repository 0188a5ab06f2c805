//! The [`Backend`] of a run's `run_loop`: Propose, ExactKeys and Commit of one iteration
//! over the session's tiles, on the run's lane.

use flus_proto::v1::{CommitRequest, ExactKeysRequest};
use flus_shared::ca::{
    self, Backend, CaParams, KeyRequest, MapView, Proposal, StepSummary, Thresholds, BUCKETS,
};
use std::time::Instant;

use super::{lock, wire, RunLane};
use crate::cluster::fanout::{request, rpc, Calls};

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
