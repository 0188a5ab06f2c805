//! Whole-run tests of the driver on synthetic grids: stop rules, determinism over
//! tilings and thread counts, feasibility, the random baseline.

use sha2::{Digest, Sha256};

use super::feasibility::{check_feasible, class_counts};
use super::*;
use crate::rng::CounterRng;

pub(crate) struct Synthetic {
    pub w: usize,
    pub h: usize,
    pub classes: Vec<u8>,
    pub suit: Vec<f32>,
    pub restricted: Vec<bool>,
    pub demand: Vec<i64>,
}

/// A 61 x 47 grid of 4 classes in blocks with 10 % noise, an invalid corner, a
/// restricted rectangle, random suitability biased toward a shifted block pattern, and a
/// demand moving 120 cells out of class 0 and 20 out of class 3 into classes 1 and 2.
pub(crate) fn synthetic() -> Synthetic {
    let (w, h, k) = (61usize, 47usize, 4usize);
    let rng = CounterRng::new(77);
    let mut classes = vec![0u8; w * h];
    let mut suit = vec![0f32; w * h * k];
    let mut restricted = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let b = rng.block(1000, 0, i as u64, 0);
            let mut c = ((x / 9 + 2 * (y / 7)) % k) as u8;
            if b[0].is_multiple_of(10) {
                c = (b[1] % k as u32) as u8;
            }
            classes[i] = if x + y < 6 { INVALID } else { c };
            restricted[i] = (20..30).contains(&x) && (10..14).contains(&y);
            let target = ((x + 4) / 9 + 2 * ((y + 3) / 7)) % k;
            let mut s: Vec<f32> = (0..k)
                .map(|j| {
                    (b[j] >> 8) as f32 / (1u32 << 24) as f32 + if j == target { 1.0 } else { 0.0 }
                })
                .collect();
            let sum: f32 = s.iter().sum();
            s.iter_mut().for_each(|v| *v /= sum);
            suit[i * k..(i + 1) * k].copy_from_slice(&s);
        }
    }
    let (counts, _) = class_counts(k, &classes, &restricted).unwrap();
    let demand = vec![
        counts[0] as i64 - 120,
        counts[1] as i64 + 80,
        counts[2] as i64 + 60,
        counts[3] as i64 - 20,
    ];
    Synthetic {
        w,
        h,
        classes,
        suit,
        restricted,
        demand,
    }
}

pub(crate) fn all_allowed(k: usize) -> Vec<Vec<f64>> {
    vec![vec![1.0; k]; k]
}

impl Synthetic {
    pub(crate) fn input(&self) -> CaInput<'_> {
        CaInput {
            width: self.w,
            height: self.h,
            classes: &self.classes,
            suitability: &self.suit,
            restricted: &self.restricted,
            demand: &self.demand,
            quota: None,
        }
    }
}

/// SHA-256 of the final map, the records and the report.
pub(crate) fn output_hash(out: &CaOutput) -> String {
    let mut h = Sha256::new();
    h.update(&out.map);
    h.update(serde_json::to_vec(&out.records).unwrap());
    h.update(serde_json::to_vec(&out.report).unwrap());
    hex::encode(h.finalize())
}

/// Runs on a local pool of `threads` threads.
pub(crate) fn run_on(
    params: &CaParams,
    input: &CaInput,
    tiling: Tiling,
    threads: usize,
) -> CaOutput {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| run(params, input, tiling, |_, _| {}))
        .unwrap()
}

pub(crate) fn counts_of(map: &[u8], k: usize) -> Vec<i64> {
    let mut c = vec![0i64; k];
    for &v in map {
        if v != INVALID {
            c[v as usize] += 1;
        }
    }
    c
}

#[test]
fn synthetic_run_meets_demand_bit_identically_for_every_tiling_and_thread_count() {
    let s = synthetic();
    let params = CaParams::new(vec![0.3, 1.0, 0.6, 0.2], all_allowed(4), 5);
    let input = s.input();
    let runs = [
        (Tiling { rows: 1, cols: 1 }, 1),
        (Tiling { rows: 1, cols: 1 }, 2),
        (Tiling { rows: 2, cols: 3 }, 1),
        (Tiling { rows: 2, cols: 3 }, 2),
        (Tiling { rows: 7, cols: 5 }, 1),
        (Tiling { rows: 7, cols: 5 }, 2),
    ];
    let outs: Vec<CaOutput> = runs
        .iter()
        .map(|&(t, n)| run_on(&params, &input, t, n))
        .collect();
    let first = output_hash(&outs[0]);
    for (o, (t, n)) in outs.iter().zip(runs) {
        assert_eq!(output_hash(o), first, "tiling {t:?}, {n} threads");
    }
    let o = &outs[0];
    assert_eq!(o.report.stop_reason, StopReason::DemandMet);
    assert!(o.report.demand_met && o.report.final_gap == vec![0; 4]);
    assert_eq!(counts_of(&o.map, 4), s.demand);
    for i in 0..s.classes.len() {
        if s.restricted[i] || s.classes[i] == INVALID {
            assert_eq!(
                o.map[i], s.classes[i],
                "restricted or invalid cell {i} changed"
            );
        }
    }
    // The records add up: accepted changes move the counts.
    let last = o.records.last().unwrap();
    assert_eq!(last.sum_abs_gap, 0);
    assert_eq!(o.records.len() as u32, o.report.iterations);
}

#[test]
fn progress_is_reported_once_per_iteration() {
    let s = synthetic();
    let params = CaParams::new(vec![0.3, 1.0, 0.6, 0.2], all_allowed(4), 5);
    let mut seen = Vec::new();
    let out = run(&params, &s.input(), Tiling { rows: 2, cols: 2 }, |t, g| {
        seen.push((t, g))
    })
    .unwrap();
    let want: Vec<(u32, u64)> = out.records.iter().map(|r| (r.t, r.sum_abs_gap)).collect();
    assert_eq!(seen, want);
}

/// 20 x 20 map of class 0 with a 4 x 4 block of class 1; class 2 absent. Demand: class 1
/// grows by 20 (weights 0.01 / 1 / 1 and sp = [0.2, 0.7, 0.1] let it grow fast), class 2
/// needs 5 cells but no cell ever has a class-2 neighbour (Omega = 0)
/// so it cannot grow; 1 -> 0 is forbidden so class 1 never gives back. Once class 1 is
/// full, sum |gap| stays at |-5| + 0 + 5 = 10.
#[test]
fn stall_stops_after_s_iterations_with_residual_gaps_and_clamped_inertia() {
    let (w, h) = (20usize, 20usize);
    let mut classes = vec![0u8; w * h];
    for y in 8..12 {
        for x in 8..12 {
            classes[y * w + x] = 1;
        }
    }
    let suit: Vec<f32> = (0..w * h).flat_map(|_| [0.2f32, 0.7, 0.1]).collect();
    let restricted = vec![false; w * h];
    let demand = vec![384 - 25, 16 + 20, 5];
    let mut cost = all_allowed(3);
    cost[1][0] = 0.0;
    let mut params = CaParams::new(vec![0.01, 1.0, 1.0], cost, 3);
    params.stall_iterations = 5;
    let input = CaInput {
        width: w,
        height: h,
        classes: &classes,
        suitability: &suit,
        restricted: &restricted,
        demand: &demand,
        quota: None,
    };
    let out = run(&params, &input, Tiling { rows: 1, cols: 1 }, |_, _| {}).unwrap();
    assert_eq!(out.report.stop_reason, StopReason::Stalled);
    assert_eq!(out.report.final_gap, vec![-5, 0, 5]);
    assert!(!out.report.demand_met);
    // The sum first reached 10 at iteration m; S = 5 more iterations without decrease.
    let m = out
        .records
        .iter()
        .position(|r| r.sum_abs_gap == 10)
        .unwrap();
    assert_eq!(out.report.iterations as usize, m + 1 + 5);
    assert!(out.records[m..].iter().all(|r| r.sum_abs_gap == 10));
    for r in &out.records {
        assert!(r.inertia.iter().all(|i| (1e-6..=1e6).contains(i)));
    }
}

#[test]
fn max_iterations_stops_the_run() {
    let s = synthetic();
    let mut params = CaParams::new(vec![0.3, 1.0, 0.6, 0.2], all_allowed(4), 5);
    params.max_iterations = 2;
    let out = run(&params, &s.input(), Tiling { rows: 1, cols: 1 }, |_, _| {}).unwrap();
    assert_eq!(out.report.stop_reason, StopReason::MaxIterations);
    assert_eq!(out.report.iterations, 2);
    assert_eq!(out.records.len(), 2);
    assert!(!out.report.demand_met);
    assert_eq!(out.report.final_gap, out.records[1].gaps);
}

#[test]
fn demand_already_met_stops_before_any_iteration() {
    let mut s = synthetic();
    let (counts, _) = class_counts(4, &s.classes, &s.restricted).unwrap();
    s.demand = counts.iter().map(|&c| c as i64).collect();
    let params = CaParams::new(vec![1.0; 4], all_allowed(4), 5);
    let out = run(&params, &s.input(), Tiling { rows: 1, cols: 1 }, |_, _| {}).unwrap();
    assert_eq!(
        (out.report.stop_reason, out.report.iterations),
        (StopReason::DemandMet, 0)
    );
    assert_eq!(out.map, s.classes);
}

/// 4 classes, every conversion allowed except into class 2 (which may stay).
fn nobody_becomes_class_2() -> Vec<Vec<f64>> {
    let mut cost = all_allowed(4);
    for row in cost.iter_mut().take(4) {
        row[2] = 0.0;
    }
    cost[2][2] = 1.0;
    cost
}

#[test]
fn infeasible_demand_names_the_class_that_nobody_may_become() {
    let s = synthetic();
    let cost = nobody_becomes_class_2();
    let params = CaParams::new(vec![1.0; 4], cost, 5);
    let err = run(&params, &s.input(), Tiling { rows: 1, cols: 1 }, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("infeasible demand") && err.contains("class index 2 gets 0 of its 60 cells"),
        "{err}"
    );
}

/// Class 2 may be reached from no class and may not change, so its +60 cells are out
/// of reach; class 0
/// gives 140 cells of which class 1 can take only its 80. By hand: class 1 reaches its
/// demand, class 2 keeps its start count (gap +60), class 0 keeps 60 cells too many
/// (gap -60), class 3 is not touched (gap 0). `unmet = "best_effort"` runs it to the
/// stall rule and returns that map; the default refuses it before the run.
#[test]
fn a_best_effort_run_of_an_unreachable_demand_ends_with_the_gap_known_by_hand() {
    let s = synthetic();
    let mut cost = nobody_becomes_class_2();
    // class 2 neither gains nor loses cells
    cost[2] = vec![0.0, 0.0, 1.0, 0.0];
    let (counts, _) = class_counts(4, &s.classes, &s.restricted).unwrap();
    let demand = vec![
        counts[0] as i64 - 140,
        counts[1] as i64 + 80,
        counts[2] as i64 + 60,
        counts[3] as i64,
    ];
    let input = CaInput {
        demand: &demand,
        quota: None,
        ..s.input()
    };
    let mut params = CaParams::new(vec![1.0; 4], cost, 5);
    assert!(run(&params, &input, Tiling { rows: 1, cols: 1 }, |_, _| {}).is_err());
    params.best_effort = true;
    let out = run(&params, &input, Tiling { rows: 1, cols: 1 }, |_, _| {}).unwrap();
    assert_eq!(out.report.final_gap, vec![-60, 0, 60, 0]);
    assert!(!out.report.demand_met);
    assert_eq!(out.report.stop_reason, StopReason::Stalled);
    let (end, _) = class_counts(4, &out.map, &s.restricted).unwrap();
    assert_eq!(end[1] as i64, demand[1]);
    assert_eq!(end[2], counts[2]);
}

#[test]
fn demand_through_an_intermediate_class_is_feasible() {
    // forest 0 shrinks by 10, cropland 1 stays (gap... must move to be an intermediate:
    // it shrinks by 1), built-up 2 grows by 11; forest -> built-up is forbidden.
    let cost = vec![
        vec![1.0, 1.0, 0.0],
        vec![1.0, 1.0, 1.0],
        vec![0.0, 0.0, 1.0],
    ];
    let params = CaParams::new(vec![1.0; 3], cost, 1);
    let plan = check_feasible(&params, &[100, 50, 20], &[100, 50, 20], &[90, 49, 31]).unwrap();
    // Flow: forest -> cropland 10, cropland -> built-up 11.
    assert_eq!(
        plan.flow,
        vec![vec![0, 10, 0], vec![0, 0, 11], vec![0, 0, 0]]
    );
    // With cropland fixed (gap 0) it cannot be an intermediate: infeasible.
    let err = check_feasible(&params, &[100, 50, 20], &[100, 50, 20], &[90, 50, 30]).unwrap_err();
    assert!(
        err.to_string()
            .contains("class index 2 gets 0 of its 10 cells"),
        "{err}"
    );
}

#[test]
fn restricted_cells_limit_what_a_shrinking_class_can_give() {
    // Class 0 must give 10 cells but only 6 are unrestricted.
    let params = CaParams::new(vec![1.0; 2], all_allowed(2), 1);
    let err = check_feasible(&params, &[20, 5], &[6, 5], &[10, 15])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class index 1 gets 6 of its 10 cells"),
        "{err}"
    );
    assert!(
        err.contains("class index 0 can give 6 of its 10 surplus cells (6 unrestricted)"),
        "{err}"
    );
}

#[test]
fn demand_not_summing_to_the_valid_cells_is_an_error_naming_the_difference() {
    let mut s = synthetic();
    s.demand[1] += 3;
    let params = CaParams::new(vec![1.0; 4], all_allowed(4), 5);
    let err = run(&params, &s.input(), Tiling { rows: 1, cols: 1 }, |_, _| {})
        .unwrap_err()
        .to_string();
    let valid = s.classes.iter().filter(|&&c| c != INVALID).count();
    assert!(
        err.contains(&format!(
            "demand sums to {} cells but the map has {valid} valid cells (difference +3)",
            valid + 3
        )),
        "{err}"
    );
}

#[test]
fn random_baseline_meets_demand_with_allowed_conversions_only() {
    let s = synthetic();
    let mut cost = all_allowed(4);
    cost[0][2] = 0.0; // class 2 must be fed through another class
    let params = CaParams::new(vec![1.0; 4], cost.clone(), 5);
    let map = random_allocation(&params, &s.classes, &s.restricted, &s.demand).unwrap();
    assert_eq!(counts_of(&map, 4), s.demand);
    let mut changed = 0;
    for i in 0..map.len() {
        if map[i] != s.classes[i] {
            changed += 1;
            assert!(!s.restricted[i] && s.classes[i] != INVALID);
            assert!(cost[s.classes[i] as usize][map[i] as usize] > 0.0);
        }
    }
    assert!(changed >= 140);
    // Deterministic, and another seed gives another allocation.
    assert_eq!(
        random_allocation(&params, &s.classes, &s.restricted, &s.demand).unwrap(),
        map
    );
    let other = CaParams { seed: 6, ..params };
    assert_ne!(
        random_allocation(&other, &s.classes, &s.restricted, &s.demand).unwrap(),
        map
    );
}
