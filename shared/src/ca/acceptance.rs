//! Acceptance (docs/design.md §5): proposals are accepted as if visited in ascending
//! (key, cell) order with the refusals of 2.3, and a class that reaches its bound in an
//! iteration (full when growing, at its floor when shrinking) stays closed in that
//! direction for the rest of the iteration. Acceptance is then monotone and described by
//! two thresholds per class, `T_in[k]` and `T_out[k]`, which the coordinator computes
//! from the merged key histograms and the exact keys of the few buckets where a class
//! may reach its bound.

use super::inertia::InertiaState;
use super::step::Proposal;
use super::{successor, Key, BUCKETS, OPEN};

/// Per-class acceptance thresholds of one iteration: a proposal c -> k is accepted iff
/// (key, cell) < `t_in[k]` and (key, cell) < `t_out[c]` (and, in transition mode,
/// (key, cell) < `t_pair[c * K + k]`). Locks and classes closed at the start of the
/// iteration have the threshold [`CLOSED`](super::CLOSED).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// After this (key, cell) nothing more enters the class.
    pub t_in: Vec<Key>,
    /// After this (key, cell) nothing more leaves the class.
    pub t_out: Vec<Key>,
    /// Transition mode: after this (key, cell) the pair (from, to) takes nothing more
    /// (K x K, row-major); empty in net mode.
    pub t_pair: Vec<Key>,
}

impl Thresholds {
    /// Whether the proposal is accepted.
    #[inline]
    pub fn accepts(&self, p: &Proposal) -> bool {
        let o = p.order();
        o < self.t_in[p.to as usize]
            && o < self.t_out[p.from as usize]
            && (self.t_pair.is_empty()
                || o < self.t_pair[p.from as usize * self.t_in.len() + p.to as usize])
    }
}

/// A request for the exact proposals of one bucket that come from or go to the classes
/// marked in `touch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// The key bucket.
    pub bucket: usize,
    /// Classes whose proposals are wanted (as from or to class).
    pub touch: Vec<bool>,
}

/// The coordinator's walk over the key buckets of one iteration.
///
/// Use: `next_request` until it returns `None`; for every request gather the matching
/// proposals of all tiles and pass them to `resolve`; then `finish`.
#[derive(Clone, Debug)]
pub struct BucketWalk {
    k: usize,
    init: Vec<i64>,
    gap: Vec<i64>,
    open_in: Vec<bool>,
    open_out: Vec<bool>,
    t_in: Vec<Key>,
    t_out: Vec<Key>,
    bucket: usize,
    pending: Option<KeyRequest>,
    accepted: u64,
    inflow: Vec<u64>,
    outflow: Vec<u64>,
}

impl BucketWalk {
    /// A walk from the state's gaps, initial gaps and locks (after its update for this
    /// iteration).
    pub fn new(state: &InertiaState) -> Self {
        let k = state.init.len();
        let (t_in, t_out) = state.start_thresholds();
        Self {
            k,
            init: state.init.clone(),
            gap: state.gaps.clone(),
            open_in: t_in.iter().map(|t| *t == OPEN).collect(),
            open_out: t_out.iter().map(|t| *t == OPEN).collect(),
            t_in,
            t_out,
            bucket: 0,
            pending: None,
            accepted: 0,
            inflow: vec![0; k],
            outflow: vec![0; k],
        }
    }

    /// Proposals accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Walks whole buckets of the merged histogram `hist` (index `(bucket * K + from) * K
    /// + to`) while no class can reach its bound inside them; returns the request for the
    /// next bucket where one may, or `None` when all buckets are done.
    pub fn next_request(&mut self, hist: &[u64]) -> Option<KeyRequest> {
        assert!(self.pending.is_none(), "resolve the pending request first");
        let k = self.k;
        while self.bucket < BUCKETS {
            let b = self.bucket;
            let h = &hist[b * k * k..(b + 1) * k * k];
            self.flows(h);
            let touch: Vec<bool> = (0..k)
                .map(|c| {
                    (self.init[c] > 0 && self.open_in[c] && self.inflow[c] as i64 >= self.gap[c])
                        || (self.init[c] < 0
                            && self.open_out[c]
                            && self.outflow[c] as i64 >= -self.gap[c])
                })
                .collect();
            if touch.iter().any(|&t| t) {
                let req = KeyRequest { bucket: b, touch };
                self.pending = Some(req.clone());
                return Some(req);
            }
            self.accept_pairs(h, None);
            self.bucket += 1;
        }
        None
    }

    /// Finishes the pending bucket exactly from `proposals`: all proposals of that
    /// bucket (from any tile, any order) that touch the requested classes.
    pub fn resolve(&mut self, hist: &[u64], proposals: &mut [Proposal]) {
        let req = self.pending.take().expect("no pending request");
        let k = self.k;
        let b = req.bucket;
        let h = &hist[b * k * k..(b + 1) * k * k];
        self.accept_pairs(h, Some(&req.touch));
        proposals.sort_unstable_by_key(|p| p.order());
        for p in proposals.iter() {
            let (c, to) = (p.from as usize, p.to as usize);
            debug_assert!(p.bucket() == b && (req.touch[c] || req.touch[to]));
            if !self.open_out[c] || !self.open_in[to] {
                continue;
            }
            self.accepted += 1;
            self.gap[to] -= 1;
            self.gap[c] += 1;
            // A class that reaches its demand is frozen for the rest of the iteration:
            // nothing more enters or leaves it.
            for x in [to, c] {
                if self.init[x] != 0 && self.gap[x] == 0 {
                    let after = successor(p.order());
                    if self.open_in[x] {
                        self.open_in[x] = false;
                        self.t_in[x] = after;
                    }
                    if self.open_out[x] {
                        self.open_out[x] = false;
                        self.t_out[x] = after;
                    }
                }
            }
        }
        self.bucket += 1;
    }

    /// The thresholds of the iteration.
    pub fn finish(self) -> Thresholds {
        assert!(self.pending.is_none() && self.bucket == BUCKETS);
        Thresholds {
            t_in: self.t_in,
            t_out: self.t_out,
            t_pair: Vec::new(),
        }
    }

    fn flows(&mut self, h: &[u64]) {
        let k = self.k;
        self.inflow.iter_mut().for_each(|v| *v = 0);
        self.outflow.iter_mut().for_each(|v| *v = 0);
        for c in 0..k {
            if !self.open_out[c] {
                continue;
            }
            for to in 0..k {
                let n = h[c * k + to];
                if n > 0 && self.open_in[to] {
                    self.inflow[to] += n;
                    self.outflow[c] += n;
                }
            }
        }
    }

    /// Accepts whole the bucket's open pairs, except those touching `skip` classes.
    fn accept_pairs(&mut self, h: &[u64], skip: Option<&[bool]>) {
        let k = self.k;
        for c in 0..k {
            if !self.open_out[c] || skip.is_some_and(|s| s[c]) {
                continue;
            }
            for to in 0..k {
                let n = h[c * k + to];
                if n > 0 && self.open_in[to] && !skip.is_some_and(|s| s[to]) {
                    self.accepted += n;
                    self.gap[to] -= n as i64;
                    self.gap[c] += n as i64;
                }
            }
        }
    }
}

/// Runs the whole walk, asking `fetch` for the proposals of each request.
pub fn walk(
    state: &InertiaState,
    hist: &[u64],
    mut fetch: impl FnMut(&KeyRequest) -> Vec<Proposal>,
) -> (Thresholds, u64) {
    let mut w = BucketWalk::new(state);
    while let Some(req) = w.next_request(hist) {
        let mut ps = fetch(&req);
        w.resolve(hist, &mut ps);
    }
    let accepted = w.accepted();
    (w.finish(), accepted)
}

/// The reference semantics, for tests: visits all proposals in (key, cell) order and
/// applies the refusals of docs/design.md §4 with the gaps as they change, plus the rules that
/// a class at its bound at the start of the iteration stays closed in that direction,
/// and that a class that reaches its demand during the iteration is frozen (nothing
/// enters or leaves it) for the rest of it. Conversions of `closed_pairs` (K x K,
/// row-major) are refused. Returns whether each proposal (in the given order) is
/// accepted.
pub fn sequential_reference(
    state: &InertiaState,
    closed_pairs: &[bool],
    proposals: &[Proposal],
) -> Vec<bool> {
    let k = state.init.len();
    let init = &state.init;
    let locks = &state.locks;
    let mut gap = state.gaps.clone();
    // A class at its bound at the start of the iteration has reached it: closed.
    let mut closed_in: Vec<bool> = (0..k).map(|c| init[c] >= 0 && gap[c] == 0).collect();
    let mut closed_out: Vec<bool> = (0..k).map(|c| init[c] <= 0 && gap[c] == 0).collect();
    let mut order: Vec<usize> = (0..proposals.len()).collect();
    order.sort_by_key(|&i| proposals[i].order());
    let mut accepted = vec![false; proposals.len()];
    for i in order {
        let (c, to) = (proposals[i].from as usize, proposals[i].to as usize);
        let refused = (init[to] >= 0 && gap[to] == 0)
            || (init[c] <= 0 && gap[c] == 0)
            || (locks[c] && init[c] >= 0)
            || (locks[to] && init[to] <= 0)
            || closed_in[to]
            || closed_out[c]
            || closed_pairs[c * k + to];
        if refused {
            continue;
        }
        accepted[i] = true;
        gap[to] -= 1;
        gap[c] += 1;
        for x in [to, c] {
            if init[x] != 0 && gap[x] == 0 {
                closed_in[x] = true;
                closed_out[x] = true;
            }
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::super::commit::commit;
    use super::super::{BUCKET_SHIFT, CLOSED};
    use super::*;
    use crate::rng::CounterRng;

    fn state(init: &[i64], gaps: &[i64], locks: &[bool]) -> InertiaState {
        let mut s = InertiaState::new(init.len(), 0.1);
        s.init = init.to_vec();
        s.gaps = gaps.to_vec();
        s.locks = locks.to_vec();
        s
    }

    fn p(cell: u64, key: u32, from: u8, to: u8) -> Proposal {
        Proposal {
            cell,
            key,
            from,
            to,
        }
    }

    fn all_allowed(k: usize) -> Vec<Vec<f64>> {
        vec![vec![1.0; k]; k]
    }

    /// Whether the tile step emits the proposal at all (not refused at the start).
    fn emitted(s: &InertiaState, pairs: &[bool], q: &Proposal) -> bool {
        let k = s.init.len();
        let (c, to) = (q.from as usize, q.to as usize);
        !s.closed_out(c) && !s.closed_in(to) && !pairs[c * k + to]
    }

    /// The cluster protocol: histograms of the proposals not refused at the start, the
    /// bucket walk with exact keys, then the commit over all proposals emitted.
    fn by_buckets(s: &InertiaState, ps: &[Proposal]) -> (Vec<bool>, Thresholds, u64) {
        let k = s.init.len();
        let pairs = s.closed_pairs(&all_allowed(k));
        let kept: Vec<Proposal> = ps
            .iter()
            .copied()
            .filter(|q| emitted(s, &pairs, q))
            .collect();
        let mut hist = vec![0u64; BUCKETS * k * k];
        for q in &kept {
            hist[(q.bucket() * k + q.from as usize) * k + q.to as usize] += 1;
        }
        let (th, accepted) = walk(s, &hist, |req| {
            kept.iter()
                .copied()
                .filter(|q| {
                    q.bucket() == req.bucket
                        && (req.touch[q.from as usize] || req.touch[q.to as usize])
                })
                .collect()
        });
        let flags = ps
            .iter()
            .map(|q| emitted(s, &pairs, q) && th.accepts(q))
            .collect();
        let mut changed = Vec::new();
        assert_eq!(commit(&kept, &th, &mut changed), accepted);
        (flags, th, accepted)
    }

    fn check(s: &InertiaState, ps: &[Proposal], want: &[bool]) -> Thresholds {
        let pairs = s.closed_pairs(&all_allowed(s.init.len()));
        assert_eq!(
            sequential_reference(s, &pairs, ps),
            want,
            "sequential reference"
        );
        let (got, th, _) = by_buckets(s, ps);
        assert_eq!(got, want, "bucket walk + commit");
        th
    }

    #[test]
    fn refuses_entry_into_a_full_growing_class() {
        // Class 1 was to grow by 2 and is full (gap 0): 0 -> 1 refused; 0 -> 2 accepted.
        let s = state(&[-4, 2, 2], &[-2, 0, 2], &[false; 3]);
        let th = check(&s, &[p(0, 10, 0, 1), p(1, 20, 0, 2)], &[false, true]);
        assert_eq!(th.t_in[1], CLOSED);
    }

    #[test]
    fn refuses_leaving_a_shrinking_class_at_its_floor_and_any_change_of_a_fixed_class() {
        // Class 0 was to shrink by 2 and is at its floor; class 3 has initial gap 0.
        let s = state(&[-2, 4, -2, 0], &[0, 2, -2, 0], &[false; 4]);
        let ps = [p(0, 1, 0, 1), p(1, 2, 2, 1), p(2, 3, 3, 1), p(3, 4, 2, 3)];
        let th = check(&s, &ps, &[false, true, false, false]);
        assert_eq!(
            (th.t_out[0], th.t_in[3], th.t_out[3]),
            (CLOSED, CLOSED, CLOSED)
        );
    }

    #[test]
    fn refuses_shrinking_a_locked_growing_class() {
        // Class 1 was to grow and is locked: 1 -> 2 (2 is short) refused, 0 -> 1
        // accepted.
        let s = state(&[-6, 4, 2], &[-6, 4, 2], &[false, true, false]);
        check(&s, &[p(0, 5, 1, 2), p(1, 6, 0, 1)], &[false, true]);
        // Without the lock both are accepted.
        let s = state(&[-6, 4, 2], &[-6, 4, 2], &[false; 3]);
        check(&s, &[p(0, 5, 1, 2), p(1, 6, 0, 1)], &[true, true]);
    }

    #[test]
    fn refuses_growing_a_locked_shrinking_class() {
        // Class 0 was to shrink and is locked: 2 -> 0 (2 has a surplus too) refused,
        // 0 -> 1 accepted; without the lock both are accepted.
        let s = state(&[-4, 6, -2], &[-4, 6, -2], &[true, false, false]);
        check(&s, &[p(0, 5, 2, 0), p(1, 6, 0, 1)], &[false, true]);
        let s = state(&[-4, 6, -2], &[-4, 6, -2], &[false; 3]);
        check(&s, &[p(0, 5, 2, 0), p(1, 6, 0, 1)], &[true, true]);
    }

    #[test]
    fn a_class_that_reaches_its_demand_is_frozen_for_the_rest_of_the_iteration() {
        // Keys in order: 0->1 (10) and 0->1 (20) fill class 1 (gap 2): from then on
        // nothing enters or leaves class 1, so 1->2 (30) and 0->1 (40) are refused.
        let s = state(&[-3, 2, 1], &[-3, 2, 1], &[false; 3]);
        let ps = [
            p(7, 40, 0, 1),
            p(3, 10, 0, 1),
            p(5, 20, 0, 1),
            p(9, 30, 1, 2),
        ];
        let th = check(&s, &ps, &[false, true, true, false]);
        assert_eq!(
            (th.t_in[1], th.t_out[1]),
            ((20, 6), (20, 6)),
            "successor of the proposal that filled class 1, both ways"
        );
        assert_eq!(th.t_in[2], OPEN, "class 2 still needs a cell");
        assert_eq!(th.t_out[0], OPEN, "class 0 still has to shrink by 1");
        // A shrinking class at its floor is frozen too: 0 -> 1 (10) brings class 0 to
        // its floor (gap -1), then 2 -> 0 (20) may not enter it.
        let s = state(&[-1, 2, -1], &[-1, 2, -1], &[false; 3]);
        let th = check(&s, &[p(1, 10, 0, 1), p(2, 20, 2, 0)], &[true, false]);
        assert_eq!((th.t_out[0], th.t_in[0]), ((10, 2), (10, 2)));
        // Ties on the key are broken by the cell index.
        let s = state(&[-3, 2, 1], &[-3, 2, 1], &[false; 3]);
        let ps = [p(8, 10, 0, 1), p(2, 10, 0, 1), p(4, 10, 0, 1)];
        let th = check(&s, &ps, &[false, true, true]);
        assert_eq!(th.t_in[1], (10, 5));
    }

    #[test]
    fn refuses_a_conversion_that_moves_both_classes_away_from_their_demand() {
        // Class 0 shrinks (surplus 3), class 1 grows (short 2), class 2 grows (short 1).
        // 1 -> 0: class 1 is short and class 0 has a surplus: both move away. Refused.
        // 1 -> 2: class 1 moves away, class 2 towards its demand: accepted (a class
        // may pass cells on). 0 -> 1: both towards: accepted.
        let s = state(&[-3, 2, 1], &[-3, 2, 1], &[false; 3]);
        let pairs = s.closed_pairs(&all_allowed(3));
        assert_eq!(
            pairs,
            [false, false, false, true, false, false, true, false, false],
            "refused: 1->0 and 2->0 (into the shrinking class, from classes without surplus)"
        );
        check(
            &s,
            &[p(1, 10, 1, 0), p(2, 20, 1, 2), p(3, 30, 0, 1)],
            &[false, true, true],
        );
    }

    #[test]
    fn a_class_at_its_demand_passes_cells_on_only_where_no_surplus_class_may() {
        // Forest 0 shrinks (surplus 5), cropland 1 is at its demand, built-up 2 is short
        // by 5, and forest -> built-up is forbidden: cropland may pass cells to built-up.
        let s = state(&[-10, 3, 7], &[-5, 0, 5], &[false; 3]);
        let mut cost = all_allowed(3);
        cost[0][2] = 0.0;
        let at = |from: usize, to: usize| from * 3 + to;
        let pairs = s.closed_pairs(&cost);
        assert!(!pairs[at(1, 2)], "cropland -> built-up allowed (transit)");
        assert!(pairs[at(1, 0)], "cropland -> forest refused (both away)");
        // When forest may feed built-up directly, cropland stays put.
        let pairs = s.closed_pairs(&all_allowed(3));
        assert!(
            pairs[at(1, 2)],
            "cropland -> built-up refused: forest can feed it"
        );
        assert!(!pairs[at(0, 2)] && !pairs[at(0, 1)]);
    }

    #[test]
    fn bucket_walk_equals_a_sequential_walk_over_sorted_proposals() {
        let rng = CounterRng::new(2024);
        let mut draw = 0u64;
        let mut next = |n: u64| {
            draw += 1;
            rng.below(99, 0, draw, 0, n)
        };
        let mut requests = 0;
        for case in 0..300 {
            let k = 2 + next(5) as usize;
            let init: Vec<i64> = (0..k)
                .map(|_| {
                    if next(5) == 0 {
                        0
                    } else {
                        next(61) as i64 - 30
                    }
                })
                .collect();
            let gaps: Vec<i64> = init
                .iter()
                .map(|&i| match i.signum() {
                    1 => next(i as u64 + 6) as i64,
                    -1 => -(next((-i) as u64 + 6) as i64),
                    _ => 0,
                })
                .collect();
            let locks: Vec<bool> = init.iter().map(|&i| i != 0 && next(8) == 0).collect();
            let s = state(&init, &gaps, &locks);
            let n = next(400) as usize;
            let buckets = [1u64, 2, 5, 1024][next(4) as usize];
            let low = [4u64, 1 << 22][next(2) as usize];
            let ps: Vec<Proposal> = (0..n)
                .map(|i| {
                    let from = next(k as u64) as u8;
                    let to = ((from as u64 + 1 + next(k as u64 - 1)) % k as u64) as u8;
                    let key = ((next(buckets) as u32) << BUCKET_SHIFT) | next(low) as u32;
                    p((i as u64 * 7919) % 100_003, key, from, to)
                })
                .collect();
            let pairs = s.closed_pairs(&all_allowed(k));
            let want = sequential_reference(&s, &pairs, &ps);
            let (got, _, accepted) = by_buckets(&s, &ps);
            assert_eq!(
                got, want,
                "case {case}: k={k} init={init:?} gaps={gaps:?} locks={locks:?}"
            );
            assert_eq!(accepted, want.iter().filter(|a| **a).count() as u64);
            // Demand is never overshot: growing classes stay >= 0, shrinking <= 0.
            let mut g = gaps.clone();
            for (q, a) in ps.iter().zip(&want) {
                if *a {
                    g[q.to as usize] -= 1;
                    g[q.from as usize] += 1;
                }
            }
            for c in 0..k {
                assert!(init[c].signum() * g[c] >= 0 || g[c] == 0, "case {case}");
                if init[c] == 0 {
                    assert_eq!(g[c], 0);
                }
            }
            let mut w = BucketWalk::new(&s);
            let mut hist = vec![0u64; BUCKETS * k * k];
            for q in &ps {
                if emitted(&s, &pairs, q) {
                    hist[(q.bucket() * k + q.from as usize) * k + q.to as usize] += 1;
                }
            }
            while let Some(req) = w.next_request(&hist) {
                requests += 1;
                let mut sel: Vec<Proposal> = ps
                    .iter()
                    .copied()
                    .filter(|q| {
                        q.bucket() == req.bucket
                            && emitted(&s, &pairs, q)
                            && (req.touch[q.from as usize] || req.touch[q.to as usize])
                    })
                    .collect();
                w.resolve(&hist, &mut sel);
            }
        }
        assert!(
            requests > 100,
            "the exact path was exercised ({requests} requests)"
        );
    }
}
