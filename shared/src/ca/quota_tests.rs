//! Whole-run tests of transition allocation (`[ca] allocation = "transitions"`): every
//! pair's quota met exactly, bit-identical for every tiling and thread count, a chain
//! through an intermediate class, resume, and quotas that cannot be met.

use super::driver_tests::{all_allowed, counts_of, output_hash, run_on, synthetic};
use super::engine::{run_loop, Checkpoint, LocalTiles};
use super::*;

/// Cells per (from, to) pair between two maps (valid in both), K x K, diagonal 0.
fn crosstab(start: &[u8], end: &[u8], k: usize) -> Vec<u64> {
    let mut n = vec![0u64; k * k];
    for (&a, &b) in start.iter().zip(end) {
        if a != b && a != INVALID && b != INVALID {
            n[a as usize * k + b as usize] += 1;
        }
    }
    n
}

#[test]
fn transition_quotas_are_met_exactly_on_a_hand_built_map_for_every_tiling() {
    // The synthetic 61 x 47 map of 4 classes (invalid corner, restricted rectangle).
    // Quotas by hand: 0 -> 1 60, 0 -> 2 40, 3 -> 1 20, 1 -> 2 15, 2 -> 0 10, 1 -> 3 5.
    let s = synthetic();
    #[rustfmt::skip]
    let quota: Vec<u64> = vec![
        0, 60, 40, 0,
        0, 0, 15, 5,
        10, 0, 0, 0,
        0, 20, 0, 0,
    ];
    let c = counts_of(&s.classes, 4);
    // class totals by hand: 0 loses 100 and gains 10; 1 gains 80, loses 20; 2 gains 55,
    // loses 10; 3 gains 5, loses 20
    let demand = vec![c[0] - 90, c[1] + 60, c[2] + 45, c[3] - 15];
    let input = CaInput {
        demand: &demand,
        quota: Some(&quota),
        ..s.input()
    };
    let params = CaParams::new(vec![0.3, 1.0, 0.6, 0.2], all_allowed(4), 5);
    let runs = [
        (Tiling { rows: 1, cols: 1 }, 1),
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
    assert!(o.report.demand_met);
    assert_eq!(crosstab(&s.classes, &o.map, 4), quota, "every pair exactly");
    assert_eq!(o.report.transitions_done.as_deref(), Some(&quota[..]));
    assert_eq!(counts_of(&o.map, 4), demand);
    // gross change = the quota sum (150 cells), each changed cell changed once
    let changed = s.classes.iter().zip(&o.map).filter(|(a, b)| a != b).count();
    assert_eq!(changed, 150);
    for i in 0..s.classes.len() {
        if s.restricted[i] || s.classes[i] == INVALID {
            assert_eq!(o.map[i], s.classes[i], "restricted or invalid cell {i}");
        }
    }
    assert_eq!(o.records.last().unwrap().sum_abs_gap, 0);
    // Net mode on the same class totals changes other cells: not the same map.
    let net = run_on(
        &params,
        &CaInput {
            quota: None,
            ..input
        },
        Tiling { rows: 1, cols: 1 },
        1,
    );
    assert!(net.report.demand_met && net.map != o.map);
}

#[test]
fn a_chain_forest_cropland_built_up_with_forest_to_built_up_forbidden() {
    // 30 x 20: forest (0) in columns 0..12, cropland (1) in 12..22, built-up (2) in
    // 22..30. Forest -> built-up is forbidden; quotas forest -> cropland 40, cropland
    // -> built-up 35 (the built-up area grows at the expense of cropland, which grows
    // into the forest): cropland ends at 200 + 40 - 35 = 205.
    let (w, h) = (30usize, 20usize);
    let classes: Vec<u8> = (0..w * h)
        .map(|i| match i % w {
            0..12 => 0,
            12..22 => 1,
            _ => 2,
        })
        .collect();
    // suitability: every class 1/3 but built-up 0.6 on cropland near it, cropland 0.6
    // on forest near it
    let suit: Vec<f32> = (0..w * h)
        .flat_map(|i| match i % w {
            0..12 => [0.2f32, 0.6, 0.2],
            12..22 => [0.2, 0.2, 0.6],
            _ => [0.1, 0.1, 0.8],
        })
        .collect();
    let restricted = vec![false; w * h];
    let quota = vec![0, 40, 0, 0, 0, 35, 0, 0, 0];
    let demand = vec![240 - 40, 200 + 40 - 35, 160 + 35];
    let cost = vec![
        vec![1.0, 1.0, 0.0],
        vec![0.0, 1.0, 1.0],
        vec![0.0, 0.0, 1.0],
    ];
    let params = CaParams::new(vec![0.5, 0.5, 0.5], cost, 11);
    let input = CaInput {
        width: w,
        height: h,
        classes: &classes,
        suitability: &suit,
        restricted: &restricted,
        demand: &demand,
        quota: Some(&quota),
    };
    let o = run_on(&params, &input, Tiling { rows: 2, cols: 2 }, 2);
    assert!(o.report.demand_met, "{:?}", o.report);
    assert_eq!(crosstab(&classes, &o.map, 3), quota);
    assert_eq!(counts_of(&o.map, 3), demand);
    assert_eq!(
        output_hash(&o),
        output_hash(&run_on(&params, &input, Tiling { rows: 1, cols: 3 }, 1))
    );
    // a quota on the forbidden pair is refused, naming it
    let bad = vec![0, 40, 5, 0, 0, 35, 0, 0, 0];
    let demand_bad = vec![240 - 45, 205, 200];
    let e = run(
        &params,
        &CaInput {
            quota: Some(&bad),
            demand: &demand_bad,
            ..input
        },
        Tiling { rows: 1, cols: 1 },
        |_, _| {},
    )
    .unwrap_err();
    assert!(
        e.to_string().contains(
            "class index 0 -> class index 2: quota 5 cells but the conversion matrix forbids it"
        ),
        "{e}"
    );
}

#[test]
fn a_quota_beyond_the_unrestricted_cells_is_refused_or_run_best_effort() {
    // all the cells of class 3 to class 1: some are restricted, the quota cannot be met
    let s = synthetic();
    let c = counts_of(&s.classes, 4);
    let free3 = (0..s.classes.len())
        .filter(|&i| s.classes[i] == 3 && !s.restricted[i])
        .count() as u64;
    assert!(free3 < c[3] as u64);
    let mut quota = vec![0u64; 16];
    quota[3 * 4 + 1] = c[3] as u64;
    let demand = vec![c[0], c[1] + c[3], c[2], 0];
    let input = CaInput {
        demand: &demand,
        quota: Some(&quota),
        ..s.input()
    };
    let mut params = CaParams::new(vec![0.3, 1.0, 0.6, 0.2], all_allowed(4), 5);
    let e = run(&params, &input, Tiling { rows: 1, cols: 1 }, |_, _| {}).unwrap_err();
    let want = format!(
        "class index 3 must give {} cells but has only {free3} unrestricted",
        c[3]
    );
    assert!(e.to_string().contains(&want), "{e}");
    params.best_effort = true;
    params.max_iterations = 40;
    let o = run_on(&params, &input, Tiling { rows: 1, cols: 1 }, 1);
    assert!(!o.report.demand_met);
    let moved = crosstab(&s.classes, &o.map, 4);
    assert!(moved[3 * 4 + 1] > 0 && moved[3 * 4 + 1] <= free3);
    assert_eq!(moved.iter().sum::<u64>(), moved[3 * 4 + 1], "only 3 -> 1");
}

#[test]
fn a_transition_run_resumed_from_a_checkpoint_ends_as_the_run_without_a_stop() {
    let s = synthetic();
    #[rustfmt::skip]
    let quota: Vec<u64> = vec![
        0, 60, 40, 0,
        0, 0, 15, 5,
        10, 0, 0, 0,
        0, 20, 0, 0,
    ];
    let c = counts_of(&s.classes, 4);
    let demand = vec![c[0] - 90, c[1] + 60, c[2] + 45, c[3] - 15];
    let input = CaInput {
        demand: &demand,
        quota: Some(&quota),
        ..s.input()
    };
    let params = CaParams::new(vec![0.3, 1.0, 0.6, 0.2], all_allowed(4), 5);
    let whole = run_on(&params, &input, Tiling { rows: 1, cols: 1 }, 1);
    assert!(whole.report.iterations > 3);
    let rects = Tiling { rows: 2, cols: 2 }.rects(s.w, s.h).unwrap();
    let mut saved: Option<Checkpoint> = None;
    let mut backend = LocalTiles::new(rects.clone(), &input, 4);
    let _ = run_loop(
        &params,
        &input,
        &mut backend,
        None,
        &mut |_, _| {},
        &mut |t, make| {
            if t == 3 {
                saved = Some(make());
            }
            Ok(())
        },
    )
    .unwrap();
    let cp = saved.unwrap();
    assert_ne!(cp.map, s.classes, "the checkpoint has changes");
    let mut backend = LocalTiles::new(rects, &input, 4);
    let resumed = run_loop(
        &params,
        &input,
        &mut backend,
        Some(cp),
        &mut |_, _| {},
        &mut |_, _| Ok(()),
    )
    .unwrap();
    assert_eq!(output_hash(&resumed), output_hash(&whole));
}
