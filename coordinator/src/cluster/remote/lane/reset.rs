//! Setting a run's lane on tiles whose epoch changed (ResetClasses): the workers restore
//! the session's start map in the lane and apply the run's differences.

use std::time::Instant;

use flus_proto::v1::ResetRequest;
use flus_shared::ca::MapView;

use super::super::Remote;
use super::{wire, LaneState};
use crate::cluster::fanout::{request, rpc, Calls};

impl LaneState {
    /// Sets this run's lane on every tile whose lane was set on an older epoch of the
    /// tile, or never: the workers restore the session's start map in the lane and apply
    /// the differences of `map` (plus, for tiles that committed in this phase, the changes
    /// committed so far), sent to each worker for its tiles' windows only. Such tiles are
    /// stepped again. Holds the session throughout (no tile moves meanwhile).
    pub(super) fn restore(&mut self, s: &mut Remote<'_>, map: &MapView) -> flus_shared::Result<()> {
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
