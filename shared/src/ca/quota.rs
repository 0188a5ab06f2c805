//! Transition-level allocation (`[ca] allocation = "transitions"`, docs/design.md §5):
//! the number of cells of every (from, to) conversion is fixed, and the CA meets every
//! pair's quota exactly. A cell changes at most once per run, so the conversions the CA
//! makes are exactly the cross-tabulation of the start map against the final map.
//!
//! Acceptance generalises the class thresholds of net mode to one threshold per pair:
//! proposals are accepted as if visited in ascending (key, cell) order, and pair (c, k)
//! closes at the proposal that fills its quota. Nothing else refuses a proposal, so the
//! thresholds follow from the merged per-(bucket, from, to) histograms and the exact
//! keys of the buckets where a pair fills.

use super::acceptance::{KeyRequest, Thresholds};
use super::inertia::InertiaState;
use super::params::CaParams;
use super::step::{Proposal, StepParams};
use super::{successor, Key, BUCKETS, CLOSED, INVALID, OPEN};
use crate::{Error, Result};

/// The class totals a run reaches when it meets `quota` (K x K, row-major, diagonal
/// ignored) from `start` cells per class: start - outflow + inflow.
pub fn demand_of(quota: &[u64], start: &[u64]) -> Vec<i64> {
    let k = start.len();
    let mut d: Vec<i64> = start.iter().map(|&c| c as i64).collect();
    for c in 0..k {
        for to in 0..k {
            if c != to {
                let q = quota[c * k + to] as i64;
                d[c] -= q;
                d[to] += q;
            }
        }
    }
    d
}

/// Checks quotas before any work: K x K entries, none on a conversion the matrix forbids,
/// no class asked to give more cells than it has unrestricted (`free`; a cell changes
/// at most once). Errors name the classes.
pub fn check_quotas(params: &CaParams, quota: &[u64], free: &[u64]) -> Result<()> {
    let k = params.k;
    if quota.len() != k * k {
        return Err(Error::Data(format!(
            "transition quotas: {} values, expected {k} x {k}",
            quota.len()
        )));
    }
    let mut problems = Vec::new();
    for c in 0..k {
        for to in 0..k {
            let q = quota[c * k + to];
            if c != to && q > 0 && params.cost[c][to] <= 0.0 {
                problems.push(format!(
                    "{} -> {}: quota {q} cells but the conversion matrix forbids it",
                    params.label(c),
                    params.label(to)
                ));
            }
        }
        let out: u64 = (0..k)
            .filter(|&to| to != c)
            .map(|to| quota[c * k + to])
            .sum();
        if out > free[c] {
            problems.push(format!(
                "{} must give {out} cells but has only {} unrestricted",
                params.label(c),
                free[c]
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Data(format!(
            "infeasible transition quotas: {}",
            problems.join("; ")
        )));
    }
    Ok(())
}

/// Errors unless the class totals that `quota` leads to from `counts` equal `demand`.
pub fn check_quota_demand(quota: &[u64], counts: &[u64], demand: &[i64]) -> Result<()> {
    let want = demand_of(quota, counts);
    if want != demand {
        return Err(Error::Data(format!(
            "transition quotas lead to class totals {want:?} but the demand is {demand:?}"
        )));
    }
    Ok(())
}

/// Quotas and conversions done so far, held by the coordinator (K x K, row-major).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaState {
    k: usize,
    quota: Vec<u64>,
    done: Vec<u64>,
}

impl QuotaState {
    /// The state of a run from `start` (the run's start map) now at `current` (the
    /// same map at the start, a checkpoint's map on resume).
    pub fn new(k: usize, quota: &[u64], start: &[u8], current: &[u8]) -> Result<Self> {
        if quota.len() != k * k || start.len() != current.len() {
            return Err(Error::Data(format!(
                "transition quotas: {} values for {k} classes, maps of {} and {} cells",
                quota.len(),
                start.len(),
                current.len()
            )));
        }
        let mut quota = quota.to_vec();
        (0..k).for_each(|c| quota[c * k + c] = 0);
        let mut s = Self {
            k,
            quota,
            done: vec![0; k * k],
        };
        for (&a, &b) in start.iter().zip(current) {
            if a != b && a != INVALID && b != INVALID {
                s.record(a, b)?;
            }
        }
        Ok(s)
    }

    /// Cells still to convert from `c` to `to`.
    #[inline]
    pub fn remaining(&self, c: usize, to: usize) -> u64 {
        self.quota[c * self.k + to] - self.done[c * self.k + to]
    }

    /// Cells still to convert over all pairs.
    pub fn left(&self) -> u64 {
        self.quota.iter().sum::<u64>() - self.done.iter().sum::<u64>()
    }

    /// Conversions done per pair (K x K, row-major).
    pub fn done(&self) -> &[u64] {
        &self.done
    }

    /// Counts one conversion `from -> to`; errors when it exceeds the pair's quota.
    pub fn record(&mut self, from: u8, to: u8) -> Result<()> {
        let (c, t) = (from as usize, to as usize);
        if c >= self.k || t >= self.k || c == t || self.remaining(c, t) == 0 {
            return Err(Error::Data(format!(
                "transition allocation: a conversion of class index {from} to {to} beyond its quota"
            )));
        }
        self.done[c * self.k + t] += 1;
        Ok(())
    }

    /// Cells still to leave class `c`.
    fn out_left(&self, c: usize) -> u64 {
        (0..self.k).map(|to| self.remaining(c, to)).sum()
    }

    /// Cells still to enter class `to`.
    fn in_left(&self, to: usize) -> u64 {
        (0..self.k).map(|c| self.remaining(c, to)).sum()
    }

    /// The counts and demand the class inertia follows in transition mode: each class
    /// as a class that must shrink by the cells it has still to give (count = cells
    /// left to give, demand 0), so that a class slow to give its cells sees its
    /// inertia fall as in net mode (docs/design.md §5).
    pub fn inertia_inputs(&self) -> (Vec<u64>, Vec<i64>) {
        (
            (0..self.k).map(|c| self.out_left(c)).collect(),
            vec![0; self.k],
        )
    }

    /// The step parameters of iteration `t`: the inertia of `inertia`; a class closed
    /// for leaving (entering) when no pair from (to) it has cells left, a pair closed
    /// when its quota is met.
    pub fn step_params(&self, t: u32, inertia: &InertiaState) -> StepParams {
        let k = self.k;
        StepParams {
            iteration: t,
            inertia: inertia.inertia.clone(),
            closed_in: (0..k).map(|c| self.in_left(c) == 0).collect(),
            closed_out: (0..k).map(|c| self.out_left(c) == 0).collect(),
            closed_pairs: (0..k * k)
                .map(|i| i / k != i % k && self.remaining(i / k, i % k) == 0)
                .collect(),
            transitions: true,
            patch_level: 0,
        }
    }

    /// The conversion matrix of this iteration: `cost` with the pairs whose quota is
    /// met set to 0, so that the roulette never draws them.
    pub fn cost(&self, cost: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let k = self.k;
        (0..k)
            .map(|c| {
                (0..k)
                    .map(|to| {
                        if c != to && self.remaining(c, to) == 0 {
                            0.0
                        } else {
                            cost[c][to]
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The acceptance walk of this iteration.
    pub fn walk(&self) -> PairWalk {
        let k = self.k;
        let left: Vec<u64> = (0..k * k).map(|i| self.remaining(i / k, i % k)).collect();
        PairWalk {
            k,
            open: left.iter().map(|&l| l > 0).collect(),
            t_pair: left
                .iter()
                .map(|&l| if l > 0 { OPEN } else { CLOSED })
                .collect(),
            left,
            bucket: 0,
            pending: None,
            accepted: 0,
        }
    }
}

/// The coordinator's walk over the key buckets of one iteration in transition mode;
/// used like [`BucketWalk`](super::acceptance::BucketWalk).
#[derive(Clone, Debug)]
pub struct PairWalk {
    k: usize,
    left: Vec<u64>,
    open: Vec<bool>,
    t_pair: Vec<Key>,
    bucket: usize,
    /// The pairs that may fill in the pending bucket.
    pending: Option<(usize, Vec<bool>)>,
    accepted: u64,
}

impl PairWalk {
    /// Proposals accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Walks whole buckets of `hist` (index `(bucket * K + from) * K + to`) while no
    /// pair fills inside them; returns the request for the next bucket where one may
    /// (its `touch` marks the from classes of those pairs), or `None` at the end.
    pub fn next_request(&mut self, hist: &[u64]) -> Option<KeyRequest> {
        assert!(self.pending.is_none(), "resolve the pending request first");
        let kk = self.k * self.k;
        while self.bucket < BUCKETS {
            let b = self.bucket;
            let h = &hist[b * kk..(b + 1) * kk];
            let fills: Vec<bool> = (0..kk)
                .map(|i| self.open[i] && h[i] > 0 && h[i] >= self.left[i])
                .collect();
            if fills.iter().any(|&f| f) {
                let mut touch = vec![false; self.k];
                for i in (0..kk).filter(|&i| fills[i]) {
                    touch[i / self.k] = true;
                }
                self.pending = Some((b, fills));
                return Some(KeyRequest { bucket: b, touch });
            }
            self.accept_pairs(h, None);
            self.bucket += 1;
        }
        None
    }

    /// Finishes the pending bucket exactly from `proposals`: all proposals of that
    /// bucket (from any tile, any order) whose from or to class was requested.
    pub fn resolve(&mut self, hist: &[u64], proposals: &mut [Proposal]) {
        let (b, fills) = self.pending.take().expect("no pending request");
        let (k, kk) = (self.k, self.k * self.k);
        let h = &hist[b * kk..(b + 1) * kk];
        self.accept_pairs(h, Some(&fills));
        proposals.sort_unstable_by_key(|p| p.order());
        for p in proposals.iter() {
            debug_assert_eq!(p.bucket(), b);
            let i = p.from as usize * k + p.to as usize;
            if !fills[i] || !self.open[i] {
                continue;
            }
            self.accepted += 1;
            self.left[i] -= 1;
            if self.left[i] == 0 {
                self.open[i] = false;
                self.t_pair[i] = successor(p.order());
            }
        }
        self.bucket += 1;
    }

    /// The thresholds of the iteration (class thresholds all open).
    pub fn finish(self) -> Thresholds {
        assert!(self.pending.is_none() && self.bucket == BUCKETS);
        Thresholds {
            t_in: vec![OPEN; self.k],
            t_out: vec![OPEN; self.k],
            t_pair: self.t_pair,
        }
    }

    /// Accepts whole the bucket's open pairs, except those marked in `skip`.
    fn accept_pairs(&mut self, h: &[u64], skip: Option<&[bool]>) {
        for (i, &n) in h.iter().enumerate() {
            if n > 0 && self.open[i] && !skip.is_some_and(|s| s[i]) {
                self.accepted += n;
                self.left[i] -= n;
            }
        }
    }
}

/// The reference semantics, for tests: visits `proposals` in (key, cell) order and
/// accepts each while its pair has quota left (`left`, K x K). Returns whether each
/// proposal (in the given order) is accepted.
pub fn pair_reference(k: usize, left: &[u64], proposals: &[Proposal]) -> Vec<bool> {
    let mut left = left.to_vec();
    let mut order: Vec<usize> = (0..proposals.len()).collect();
    order.sort_by_key(|&i| proposals[i].order());
    let mut accepted = vec![false; proposals.len()];
    for i in order {
        let pair = proposals[i].from as usize * k + proposals[i].to as usize;
        if left[pair] > 0 {
            left[pair] -= 1;
            accepted[i] = true;
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::super::commit::commit;
    use super::super::BUCKET_SHIFT;
    use super::*;
    use crate::rng::CounterRng;

    #[test]
    fn demand_of_quotas_by_hand() {
        // start 10 forest, 5 cropland, 1 built; forest -> cropland 3, cropland -> built
        // 2, forest -> built 0: forest 7, cropland 5 - 2 + 3 = 6, built 3.
        let q = [0, 3, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(demand_of(&q, &[10, 5, 1]), vec![7, 6, 3]);
    }

    #[test]
    fn quota_checks_name_the_forbidden_pair_and_the_short_class() {
        let mut params = CaParams::new(vec![1.0; 3], vec![vec![1.0; 3]; 3], 1);
        params.names = vec!["forest".into(), "cropland".into(), "built".into()];
        params.cost[0][2] = 0.0;
        let q = [0, 3, 1, 0, 0, 2, 0, 0, 0];
        let e = check_quotas(&params, &q, &[10, 5, 1]).unwrap_err();
        assert!(
            e.to_string()
                .contains("class \"forest\" -> class \"built\": quota 1 cells but the conversion matrix forbids it"),
            "{e}"
        );
        let q = [0, 3, 0, 0, 0, 2, 0, 0, 0];
        let e = check_quotas(&params, &q, &[10, 1, 1]).unwrap_err();
        assert!(
            e.to_string()
                .contains("class \"cropland\" must give 2 cells but has only 1 unrestricted"),
            "{e}"
        );
        check_quotas(&params, &q, &[10, 5, 1]).unwrap();
        check_quota_demand(&q, &[10, 5, 1], &[7, 6, 3]).unwrap();
        let e = check_quota_demand(&q, &[10, 5, 1], &[7, 5, 4]).unwrap_err();
        assert!(e.to_string().contains("[7, 6, 3]"), "{e}");
    }

    #[test]
    fn the_state_counts_the_changes_between_start_and_current_map() {
        let q = [0, 2, 1, 0, 0, 1, 0, 0, 0];
        let start = [0u8, 0, 0, 1, 1, 2, INVALID];
        let now = [1u8, 0, 2, 1, 2, 2, INVALID];
        let s = QuotaState::new(3, &q, &start, &now).unwrap();
        assert_eq!(s.done(), &[0, 1, 1, 0, 0, 1, 0, 0, 0]);
        assert_eq!((s.left(), s.remaining(0, 1), s.remaining(0, 2)), (1, 1, 0));
        let p = s.step_params(4, &InertiaState::new(3, 0.1));
        assert_eq!(p.closed_out, vec![false, true, true]);
        assert_eq!(p.closed_in, vec![true, false, true]);
        assert!(p.closed_pairs[2] && p.closed_pairs[5] && !p.closed_pairs[1]);
        assert_eq!(s.cost(&vec![vec![1.0; 3]; 3])[0], vec![1.0, 1.0, 0.0]);
        // a conversion beyond the quota is refused
        let e = QuotaState::new(3, &q, &start, &[2, 2, 2, 1, 1, 2, INVALID]).unwrap_err();
        assert!(e.to_string().contains("beyond its quota"), "{e}");
    }

    #[test]
    fn pair_walk_equals_a_sequential_walk_over_sorted_proposals() {
        let rng = CounterRng::new(77);
        let mut draw = 0u64;
        let mut next = |n: u64| {
            draw += 1;
            rng.below(98, 0, draw, 0, n)
        };
        let mut requests = 0;
        for case in 0..300 {
            let k = 2 + next(5) as usize;
            let left: Vec<u64> = (0..k * k)
                .map(|i| if i / k == i % k { 0 } else { next(12) })
                .collect();
            let n = next(400) as usize;
            let buckets = [1u64, 2, 5, 1024][next(4) as usize];
            let low = [4u64, 1 << 22][next(2) as usize];
            // only proposals of open pairs reach the histograms (closed ones are
            // refused in the tile step)
            let ps: Vec<Proposal> = (0..n)
                .map(|i| {
                    let from = next(k as u64) as u8;
                    let to = ((from as u64 + 1 + next(k as u64 - 1)) % k as u64) as u8;
                    let key = ((next(buckets) as u32) << BUCKET_SHIFT) | next(low) as u32;
                    Proposal {
                        cell: (i as u64 * 7919) % 100_003,
                        key,
                        from,
                        to,
                    }
                })
                .filter(|p| left[p.from as usize * k + p.to as usize] > 0)
                .collect();
            let want = pair_reference(k, &left, &ps);
            let mut hist = vec![0u64; BUCKETS * k * k];
            for q in &ps {
                hist[(q.bucket() * k + q.from as usize) * k + q.to as usize] += 1;
            }
            let quota_state = QuotaState {
                k,
                quota: left.clone(),
                done: vec![0; k * k],
            };
            let mut w = quota_state.walk();
            while let Some(req) = w.next_request(&hist) {
                requests += 1;
                let mut sel: Vec<Proposal> = ps
                    .iter()
                    .copied()
                    .filter(|q| {
                        q.bucket() == req.bucket
                            && (req.touch[q.from as usize] || req.touch[q.to as usize])
                    })
                    .collect();
                w.resolve(&hist, &mut sel);
            }
            let accepted = w.accepted();
            let th = w.finish();
            let got: Vec<bool> = ps.iter().map(|q| th.accepts(q)).collect();
            assert_eq!(got, want, "case {case}: k={k} left={left:?}");
            let mut changed = Vec::new();
            assert_eq!(commit(&ps, &th, &mut changed), accepted, "case {case}");
            // every pair takes min(quota, proposals)
            for i in 0..k * k {
                let offered = ps
                    .iter()
                    .filter(|q| q.from as usize * k + q.to as usize == i)
                    .count() as u64;
                let took = ps
                    .iter()
                    .zip(&got)
                    .filter(|(q, a)| **a && q.from as usize * k + q.to as usize == i)
                    .count() as u64;
                assert_eq!(took, offered.min(left[i]), "case {case} pair {i}");
            }
        }
        assert!(
            requests > 100,
            "the exact path was exercised ({requests} requests)"
        );
    }
}
