//! The global adaptive inertia and locks (docs/design.md §4), held by the coordinator.

use super::step::StepParams;
use super::{CLOSED, OPEN};

/// Lower clamp of the inertia.
pub const INERTIA_MIN: f64 = 1e-6;
/// Upper clamp of the inertia.
pub const INERTIA_MAX: f64 = 1e6;
/// A class is locked while it is further from its goal than its best by this share of
/// its initial gap.
pub const LOCK_SHARE: f64 = 0.05;

/// Per-class state of the self-adaptive inertia, updated once per iteration from the
/// global class counts, before the sweep (including at t = 0).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InertiaState {
    /// Degree of acceleration `a`.
    pub accelerate: f64,
    /// Gap demand - count at t = 0.
    pub init: Vec<i64>,
    /// The dynamic reference gap `dyn_k`.
    pub dyn_gap: Vec<f64>,
    /// The best (smallest in magnitude) gap seen so far.
    pub best: Vec<i64>,
    /// The inertia I_k, within [1e-6, 1e6].
    pub inertia: Vec<f64>,
    /// Locks: set while a class is more than 5 % of its initial gap worse than its best.
    pub locks: Vec<bool>,
    /// The gaps of the last update.
    pub gaps: Vec<i64>,
}

impl InertiaState {
    /// An empty state for `k` classes; the first [`update`](Self::update) (t = 0) fills it.
    pub fn new(k: usize, accelerate: f64) -> Self {
        Self {
            accelerate,
            init: vec![0; k],
            dyn_gap: vec![0.0; k],
            best: vec![0; k],
            inertia: vec![1.0; k],
            locks: vec![false; k],
            gaps: vec![0; k],
        }
    }

    /// The update of iteration `t` from the global `counts` and `demand` (docs/design.md §4).
    pub fn update(&mut self, counts: &[u64], demand: &[i64], t: u32) {
        let a = self.accelerate;
        for k in 0..self.init.len() {
            let gap = demand[k] - counts[k] as i64;
            self.gaps[k] = gap;
            if t == 0 {
                self.init[k] = gap;
                self.dyn_gap[k] = 1.01 * gap as f64;
                self.best[k] = gap;
                self.inertia[k] = 1.0;
                self.locks[k] = false;
            }
            let init = self.init[k];
            if init == 0 {
                continue;
            }
            if self.best[k].abs() > gap.abs() {
                self.best[k] = gap;
            }
            self.locks[k] =
                (gap.abs() - self.best[k].abs()) as f64 / init.abs() as f64 > LOCK_SHARE;
            let r = gap as f64 / self.dyn_gap[k];
            let mut i = self.inertia[k];
            if r > 0.0 && r < 1.0 {
                self.dyn_gap[k] = gap as f64;
                if r > 1.0 - a {
                    if init > 0 {
                        i *= r + a;
                    } else {
                        i /= r + a;
                    }
                }
            } else if r > 1.0 {
                // Moving away from the goal: measured against a reference gap of at
                // least the lock band (5 % of the initial gap), so that a class that
                // passes cells on after reaching its demand (dyn_k near 0) does not
                // see r explode (docs/design.md §4 deviation, see docs/ca-rules.md).
                let floor = LOCK_SHARE * init.abs() as f64;
                let reference = self.dyn_gap[k].abs().max(floor);
                let r = gap.abs() as f64 / reference;
                if r > 1.0 {
                    if init > 0 {
                        i *= r * r;
                    } else {
                        i /= r * r;
                    }
                }
            }
            if gap == 0 {
                i = 1.0;
            }
            self.inertia[k] = i.clamp(INERTIA_MIN, INERTIA_MAX);
        }
    }

    /// Whether class `k` may not receive cells from the start of this iteration: its
    /// initial gap is 0, it was to grow and is full, or it is locked and was to shrink.
    pub fn closed_in(&self, k: usize) -> bool {
        let init = self.init[k];
        init == 0 || (init > 0 && self.gaps[k] == 0) || (self.locks[k] && init < 0)
    }

    /// Whether class `c` may not lose cells from the start of this iteration: its initial
    /// gap is 0, it was to shrink and is at its floor, or it is locked and was to grow.
    pub fn closed_out(&self, c: usize) -> bool {
        let init = self.init[c];
        init == 0 || (init < 0 && self.gaps[c] == 0) || (self.locks[c] && init > 0)
    }

    /// Whether class `k` is short of its demand (growing, gap > 0).
    fn short(&self, k: usize) -> bool {
        self.init[k] > 0 && self.gaps[k] > 0
    }

    /// Whether class `c` has a surplus (shrinking, gap < 0).
    fn surplus(&self, c: usize) -> bool {
        self.init[c] < 0 && self.gaps[c] < 0
    }

    /// The conversions `from -> to` refused for the whole iteration (row-major K x K),
    /// from the gaps at its start:
    /// - a conversion that moves both classes away from their demand (`to` is not short
    ///   and `from` has no surplus);
    /// - a conversion out of a class that is at its demand into a class that a class
    ///   with a surplus may feed directly (`cost[s][to] > 0`): a class at its demand
    ///   passes cells on only where nothing else can (built-up reached through cropland
    ///   when forest -> built-up is forbidden).
    pub fn closed_pairs(&self, cost: &[Vec<f64>]) -> Vec<bool> {
        let k = self.init.len();
        let fed_directly: Vec<bool> = (0..k)
            .map(|to| {
                (0..k)
                    .any(|s| s != to && self.surplus(s) && !self.closed_out(s) && cost[s][to] > 0.0)
            })
            .collect();
        let mut pairs = vec![false; k * k];
        for from in 0..k {
            let at_goal = self.init[from] != 0 && self.gaps[from] == 0;
            for to in 0..k {
                if from == to {
                    continue;
                }
                pairs[from * k + to] =
                    (!self.short(to) && !self.surplus(from)) || (at_goal && fed_directly[to]);
            }
        }
        pairs
    }

    /// The step parameters of iteration `t` broadcast to the tiles (`cost` is the
    /// scenario's conversion matrix, rows = from).
    pub fn step_params(&self, t: u32, cost: &[Vec<f64>]) -> StepParams {
        let k = self.init.len();
        StepParams {
            iteration: t,
            inertia: self.inertia.clone(),
            closed_in: (0..k).map(|c| self.closed_in(c)).collect(),
            closed_out: (0..k).map(|c| self.closed_out(c)).collect(),
            closed_pairs: self.closed_pairs(cost),
            patch_level: 0,
            transitions: false,
        }
    }

    /// Thresholds at the start of the acceptance walk: `CLOSED` in the closed
    /// directions, `OPEN` elsewhere.
    pub(crate) fn start_thresholds(&self) -> (Vec<super::Key>, Vec<super::Key>) {
        let k = self.init.len();
        let t_in = (0..k)
            .map(|c| if self.closed_in(c) { CLOSED } else { OPEN })
            .collect();
        let t_out = (0..k)
            .map(|c| if self.closed_out(c) { CLOSED } else { OPEN })
            .collect();
        (t_in, t_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    /// Class 0 must grow by 100 cells, class 1 shrink by 100, class 2 stays (gap 0).
    /// Demand [600, 300, 100]; the counts of each iteration give gaps 100, 95, 50, 60,
    /// 52, 0 for class 0 (and the opposite for class 1). a = 0.1.
    #[test]
    fn inertia_update_follows_a_hand_trace_over_six_iterations() {
        let demand = [600i64, 300, 100];
        let mut s = InertiaState::new(3, 0.1);
        let gaps0 = [100i64, 95, 50, 60, 52, 0];
        // t = 0: init 100, dyn 101, best 100; r = 100/101 = 0.990099 in (0.9, 1):
        //   dyn = 100, I0 = 1 * (0.990099 + 0.1) = 1.0900990099, I1 = 1 / 1.0900990099.
        // t = 1: gap 95, best 95, r = 0.95 in (0.9, 1): dyn = 95, I0 *= 1.05 = 1.1446039604.
        // t = 2: gap 50, best 50, r = 50/95 = 0.526 <= 0.9: dyn = 50, I unchanged.
        // t = 3: gap 60, best 50: (60 - 50) / 100 = 0.10 > 0.05 -> lock;
        //   r = 60/50 = 1.2 > 1: I0 *= 1.44 = 1.6482297030, dyn stays 50.
        // t = 4: gap 52: (52 - 50) / 100 = 0.02 -> lock cleared; r = 1.04:
        //   I0 *= 1.0816 = 1.7827252467.
        // t = 5: gap 0: best 0, r = 0 (no change), gap 0 -> I = 1.
        let want_i0 = [
            1.0900990099009902,
            1.1446039603960398,
            1.1446039603960398,
            1.6482297029702973,
            1.7827252467326737,
            1.0,
        ];
        let want_i1 = [
            0.9173478655767483,
            0.8736646338826174,
            0.8736646338826174,
            0.6067115513073732,
            0.5609389342708702,
            1.0,
        ];
        let want_lock = [false, false, false, true, false, false];
        let want_dyn = [100.0, 95.0, 50.0, 50.0, 50.0, 50.0];
        for (t, &g) in gaps0.iter().enumerate() {
            let counts = [(600 - g) as u64, (300 + g) as u64, 100];
            s.update(&counts, &demand, t as u32);
            assert_eq!(s.init, vec![100, -100, 0], "t={t}");
            assert_eq!(s.gaps, vec![g, -g, 0]);
            assert!(
                close(s.inertia[0], want_i0[t]),
                "t={t}: I0 = {}",
                s.inertia[0]
            );
            assert!(
                close(s.inertia[1], want_i1[t]),
                "t={t}: I1 = {}",
                s.inertia[1]
            );
            assert_eq!(s.inertia[2], 1.0, "a class with init 0 keeps I = 1");
            assert_eq!(s.locks, vec![want_lock[t], want_lock[t], false], "t={t}");
            assert!(close(s.dyn_gap[0], want_dyn[t]) && close(s.dyn_gap[1], -want_dyn[t]));
        }
        assert_eq!(s.best, vec![0, 0, 0]);
    }

    #[test]
    fn moving_away_from_a_reference_near_zero_is_measured_against_the_lock_band() {
        // Class 0 grows by 100 (class 1 shrinks by 100). Gaps 100, 99, 2, 0, 8, 3.
        // t = 0: r = 100/101 in (0.9, 1): dyn = 100, I0 = 1.0900990099.
        // t = 1: r = 0.99: dyn = 99, I0 *= 1.09 = 1.1882079208.
        // t = 2: r = 2/99 <= 0.9: dyn = 2, I0 unchanged.
        // t = 3: gap 0: r = 0, I0 = 1.
        // t = 4: gap 8 (the class passed cells on): r = 8/2 = 4 would give I0 *= 16;
        //   against the band max(2, 0.05 * 100 = 5): r = 1.6, I0 = 1 * 2.56.
        // t = 5: gap 3: r = 3/2 = 1.5 > 1, against the band r = 0.6: unchanged.
        let demand = [600i64, 300];
        let mut s = InertiaState::new(2, 0.1);
        let gaps = [100i64, 99, 2, 0, 8, 3];
        let want = [
            1.0900990099009902,
            1.1882079207920793,
            1.1882079207920793,
            1.0,
            2.56,
            2.56,
        ];
        for (t, &g) in gaps.iter().enumerate() {
            s.update(&[(600 - g) as u64, (300 + g) as u64], &demand, t as u32);
            assert!(close(s.inertia[0], want[t]), "t={t}: I0 = {}", s.inertia[0]);
            assert!(
                close(s.inertia[1], 1.0 / want[t]),
                "t={t}: I1 = {}",
                s.inertia[1]
            );
        }
        assert!(
            close(s.dyn_gap[0], 2.0),
            "dyn only follows gaps in (0, dyn)"
        );
    }

    #[test]
    fn locks_close_the_wrong_direction_and_init_zero_closes_both() {
        let mut s = InertiaState::new(3, 0.1);
        s.update(&[500, 400, 100], &[600, 300, 100], 0);
        // Class 0 grows, class 1 shrinks, class 2 is fixed.
        assert!(!s.closed_in(0) && !s.closed_out(0));
        assert!(!s.closed_in(1) && !s.closed_out(1));
        assert!(s.closed_in(2) && s.closed_out(2));
        // Both moved away from their goal by 20 % of the initial gap: locked.
        s.update(&[480, 420, 100], &[600, 300, 100], 1);
        assert_eq!(s.locks, vec![true, true, false]);
        assert!(
            s.closed_out(0) && !s.closed_in(0),
            "a growing class may not shrink"
        );
        assert!(
            s.closed_in(1) && !s.closed_out(1),
            "a shrinking class may not grow"
        );
        // Demand met: class 0 full, class 1 at its floor.
        s.update(&[600, 300, 100], &[600, 300, 100], 2);
        assert!(s.closed_in(0) && s.closed_out(1));
        assert_eq!(s.locks, vec![false, false, false]);
    }

    #[test]
    fn inertia_is_clamped_to_its_bounds() {
        // Growing class: gap 10 at t = 0 (dyn -> 10), then 10000: r = 1000, I *= 1e6
        // would give 1.09e6 -> clamped to 1e6. The shrinking class: I /= 1e6 -> 1e-6.
        let mut s = InertiaState::new(2, 0.1);
        let demand = [10_000, 10_000];
        s.update(&[9_990, 10_010], &demand, 0);
        s.update(&[0, 20_000], &demand, 1);
        assert_eq!(s.inertia, vec![INERTIA_MAX, INERTIA_MIN]);
    }
}
