//! CARS tests: the formulas by hand, the step on hand-built tiles, and whole runs where
//! a class can only appear away from its cells.

use super::*;
use crate::ca::driver::{run, CaInput, CaOutput, Tiling};
use crate::ca::step::{suitability_fixed, tile_step};
use crate::ca::BUCKETS;

#[test]
fn threshold_level_seed_term_and_gate_by_hand() {
    let p = Patches::PLUS_DEFAULTS;
    // PLUS's manual: patch generation threshold 0.5, expansion coefficient 0.1, seeds
    // 0.0001; tau_l = 0.5^l (the patch generation threshold is the factor that decays)
    assert_eq!((p.threshold, p.decay, p.seeds), (0.5, 0.1, 0.0001));
    assert_eq!(p.tau(0), 1.0);
    assert_eq!(p.tau(1), 0.5);
    assert_eq!(p.tau(3), 0.125);
    // gaps 100 -> 90 (fell), 90 (not), 95 (not), 80 (fell), 80 (not): 3 decay steps
    assert_eq!(patch_level(100, [90, 90, 95, 80, 80].into_iter()), 3);
    assert_eq!(patch_level(100, std::iter::empty()), 0);
    assert_eq!(patch_level(100, [100].into_iter()), 1);
    // r < sp: r * mu; else 0
    assert!((seed_term(0.2, 0.3, 0.01) - 0.002).abs() < 1e-18);
    assert_eq!(seed_term(0.3, 0.3, 0.01), 0.0);
    assert_eq!(seed_term(0.9, 0.3, 1.0), 0.0);
    // sp > tau * 2 * u2: tau 0.5, u2 0.25 -> 0.25 < 0.3 passes, < 0.25 does not (strict)
    assert!(seed_gate(0.25, 0.5, 0.3));
    assert!(!seed_gate(0.25, 0.5, 0.25));
    assert!(!seed_gate(0.9, 0.5, 0.8));
    assert!(seed_gate(0.9, 0.05, 0.1));
}

#[test]
fn the_seed_draws_are_words_of_the_cars_stream_keyed_by_cell_iteration_and_class() {
    let rng = CounterRng::new(42);
    let b = |d: u8| rng.block(17 + (1 << 23), 5, 99, d);
    // a seed cell: word 0 of block 0 below `seeds`
    let u0 = CounterRng::unit(b(0)[0]);
    assert!(is_seed(&rng, 17, 5, 99, u0 + 1e-9));
    assert!(!is_seed(&rng, 17, 5, 99, u0));
    // class k: word k % 4 of block 1 + k / 4
    assert_eq!(seed_draw(&rng, 17, 5, 99, 2), CounterRng::unit(b(1)[2]));
    assert_eq!(seed_draw(&rng, 17, 5, 99, 5), CounterRng::unit(b(2)[1]));
}

#[test]
fn patches_ranges_name_the_key() {
    for (p, key) in [
        (
            Patches {
                threshold: 0.0,
                ..Patches::PLUS_DEFAULTS
            },
            "patches.threshold = 0",
        ),
        (
            Patches {
                decay: 1.5,
                ..Patches::PLUS_DEFAULTS
            },
            "patches.decay = 1.5",
        ),
        (
            Patches {
                seeds: -0.1,
                ..Patches::PLUS_DEFAULTS
            },
            "patches.seeds = -0.1",
        ),
    ] {
        let e = p.validate().unwrap_err();
        assert!(e.contains(key), "{e}");
    }
    Patches::PLUS_DEFAULTS.validate().unwrap();
}

fn step_params(k: usize, t: u32, level: u32) -> StepParams {
    StepParams {
        iteration: t,
        inertia: vec![1.0; k],
        closed_in: vec![false; k],
        closed_out: vec![false; k],
        closed_pairs: vec![false; k * k],
        patch_level: level,
        transitions: false,
    }
}

/// Pads a w x h map with a halo of one invalid cell.
fn padded(map: &[u8], w: usize, h: usize) -> Vec<u8> {
    let pw = w + 2;
    let mut p = vec![INVALID; pw * (h + 2)];
    for y in 0..h {
        p[(y + 1) * pw + 1..(y + 1) * pw + 1 + w].copy_from_slice(&map[y * w..(y + 1) * w]);
    }
    p
}

/// The whole w x h map as one tile: its placement, its padded class window and its
/// static layers (`start`: the run's start map, padded as `pad`; empty in net mode).
fn whole_tile<'a>(
    (w, h): (usize, usize),
    pad: &'a [u8],
    suitability: &'a [u16],
    restricted: &'a [bool],
    start: &'a [u8],
) -> (TileRect, ClassWindow<'a>, TileStatic<'a>) {
    let rect = TileRect {
        x0: 0,
        y0: 0,
        width: w,
        height: h,
        grid_width: w,
    };
    let window = ClassWindow {
        data: pad,
        stride: w + 2,
    };
    let stat = TileStatic {
        suitability,
        restricted,
        stride: w,
        start_classes: start,
    };
    (rect, window, stat)
}

#[test]
fn a_cell_without_neighbours_of_a_class_seeds_it_where_the_draws_say_so() {
    // 40 x 10 map all class 0; class 1 nowhere. w_0 = 0, so TP_0 = 0 and the roulette
    // picks class 1 whenever its seed term is > 0: the cell is a seed (u0 < 0.5) and
    // r_1 < sp_1 = 0.6 (its stand-in is r_1 * mu). The seed's threshold at level 0:
    // tau_0 = threshold^0 = 1, 1 * 2 * U2 < 0.6, i.e. U2 < 0.3.
    let (w, h) = (40usize, 10usize);
    let map = vec![0u8; w * h];
    let pad = padded(&map, w, h);
    let suit = suitability_fixed(&[0.4f32, 0.6].repeat(w * h));
    let restricted = vec![false; w * h];
    let mut params = CaParams::new(vec![0.0, 1.0], vec![vec![1.0; 2]; 2], 31);
    params.stream = 19;
    let (rect, window, stat) = whole_tile((w, h), &pad, &suit, &restricted, &[]);
    let step = step_params(2, 4, 0);
    let mut out = TileProposals::default();
    // FLUS: class 1 has no neighbour anywhere, nothing is proposed
    tile_step(&params, &step, &rect, &window, &stat, &mut out);
    assert!(out.proposals.is_empty());
    params.patches = Some(Patches {
        threshold: 0.01,
        decay: 0.1,
        seeds: 0.5,
    });
    tile_step(&params, &step, &rect, &window, &stat, &mut out);
    // by hand from the generator: sp_1 is stored as round(0.6 * 65535) / 65535
    let sp1 = (0.6f64 * 65535.0).round() / 65535.0;
    let rng = CounterRng::new(31);
    let want: Vec<Proposal> = (0..(w * h) as u64)
        .filter_map(|cell| {
            let u0 = CounterRng::unit(rng.block(19 + (1 << 23), 4, cell, 0)[0]);
            let r = CounterRng::unit(rng.block(19 + (1 << 23), 4, cell, 1)[1]);
            let b = rng.block(19, 4, cell, 0);
            let u2 = CounterRng::unit(b[1]);
            (u0 < 0.5 && r < sp1 && 2.0 * u2 < sp1).then_some(Proposal {
                cell,
                key: b[2],
                from: 0,
                to: 1,
            })
        })
        .collect();
    assert!(
        !want.is_empty() && want.len() < w * h / 3,
        "{} seeds",
        want.len()
    );
    assert_eq!(out.proposals, want);
    assert_eq!(out.raw_proposals, want.len() as u64);
    assert_eq!(out.cells, (w * h) as u64);
    assert_eq!(out.skipped_uniform, 0);
    assert_eq!(
        out.histogram.iter().map(|&v| v as u64).sum::<u64>(),
        want.len() as u64
    );
    assert_eq!(out.histogram.len(), BUCKETS * 4);
}

#[test]
fn threshold_sets_how_fast_the_seed_threshold_falls_and_decay_how_strong_a_seed_is() {
    // PLUS's manual: a higher patch generation threshold (`threshold`) is more
    // conservative, a higher expansion coefficient (`decay`) makes more new patches.
    // 40 x 10 map all class 0 (w_0 = 0.5), class 1 nowhere (w_1 = 1), sp = (0.4, 0.3),
    // every cell a seed (seeds = 1), decay step l = 2, D = (1.5, 2). By hand, per cell,
    // PLUS's overall probabilities: the own OP_0 = 0.4 * (n_0 / 8 * 0.5) * 1 * 1.5 with
    // n_0 its valid neighbours; the seed's OP_1 = 0.3 * (r_1 * decay) * 1 * 2 when
    // r_1 < 0.3, else 0; the roulette (U1) picks class 1 when U1 * (OP_0 + OP_1) >=
    // OP_0; then the decreasing threshold: threshold^2 * 2 * U2 < 0.3.
    let (w, h) = (40usize, 10usize);
    let map = vec![0u8; w * h];
    let pad = padded(&map, w, h);
    let suit = suitability_fixed(&[0.4f32, 0.3].repeat(w * h));
    let restricted = vec![false; w * h];
    let mut params = CaParams::new(vec![0.5, 1.0], vec![vec![1.0; 2]; 2], 77);
    params.stream = 5;
    let (rect, window, stat) = whole_tile((w, h), &pad, &suit, &restricted, &[]);
    let step = StepParams {
        inertia: vec![1.5, 2.0],
        ..step_params(2, 3, 2)
    };
    let q = |v: f64| (v * 65535.0).round() / 65535.0;
    let (sp0, sp1) = (q(0.4), q(0.3));
    let rng = CounterRng::new(77);
    let by_hand = |threshold: f64, decay: f64| -> Vec<u64> {
        (0..(w * h) as u64)
            .filter(|&cell| {
                let (x, y) = ((cell as usize % w) as i64, (cell as usize / w) as i64);
                let mut n0 = 0u32;
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (nx, ny) = (x + dx, y + dy);
                        let inside = nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64;
                        n0 += u32::from((dx, dy) != (0, 0) && inside);
                    }
                }
                let tp0 = sp0 * (n0 as f64 / 8.0 * 0.5) * 1.0 * 1.5;
                let r = CounterRng::unit(rng.block(5 + (1 << 23), 3, cell, 1)[1]);
                let tp1 = if r < sp1 {
                    sp1 * (r * decay) * 1.0 * 2.0
                } else {
                    0.0
                };
                let b = rng.block(5, 3, cell, 0);
                let (u1, u2) = (CounterRng::unit(b[0]), CounterRng::unit(b[1]));
                tp1 > 0.0 && u1 * (tp0 + tp1) >= tp0 && threshold.powi(2) * (2.0 * u2) < sp1
            })
            .collect()
    };
    let mut counts = Vec::new();
    for (threshold, decay) in [(0.5, 0.1), (0.5, 0.9), (0.9, 0.9)] {
        params.patches = Some(Patches {
            threshold,
            decay,
            seeds: 1.0,
        });
        let mut out = TileProposals::default();
        tile_step(&params, &step, &rect, &window, &stat, &mut out);
        let got: Vec<u64> = out.proposals.iter().map(|p| p.cell).collect();
        assert_eq!(
            got,
            by_hand(threshold, decay),
            "threshold {threshold}, decay {decay}"
        );
        counts.push(got.len());
    }
    // a stronger expansion coefficient seeds more; a higher threshold holds more back
    assert!(counts[1] > counts[0] && counts[2] < counts[1], "{counts:?}");
    assert!(counts[0] > 0, "{counts:?}");
}

#[test]
fn growth_next_to_a_class_has_no_gate_in_plus() {
    // 12 x 9 map of class 0 with one class-1 cell at (5, 4); sp = (0.9, 0.45) everywhere,
    // w = (0.05, 1), D = (1, 1), t = 0. FLUS's gate for class 1 needs (U2 + 1/2) / 1 <
    // 0.45: never, so FLUS's step proposes no class-1 cell. PLUS's CA (patches, no seed:
    // seeds = 0) proposes class 1 at each of the 8 neighbours where the roulette picks
    // it, by hand: OP_0 = 0.9 * (7 / 8 * 0.05), OP_1 = 0.45 * (1 / 8 * 1), class 1 when
    // U1 * (OP_0 + OP_1) >= OP_0; the centre cell (class 1, no neighbour of class 1) has
    // only OP_0 = 0.9 * (8 / 8 * 0.05) > 0: it is proposed as class 0.
    let (w, h) = (12usize, 9usize);
    let mut map = vec![0u8; w * h];
    map[4 * w + 5] = 1;
    let pad = padded(&map, w, h);
    let suit = suitability_fixed(&[0.9f32, 0.45].repeat(w * h));
    let restricted = vec![false; w * h];
    let mut params = CaParams::new(vec![0.05, 1.0], vec![vec![1.0; 2]; 2], 3);
    params.stream = 2;
    let (rect, window, stat) = whole_tile((w, h), &pad, &suit, &restricted, &[]);
    let step = step_params(2, 0, 0);
    let mut flus = TileProposals::default();
    tile_step(&params, &step, &rect, &window, &stat, &mut flus);
    assert!(
        flus.proposals.iter().all(|p| p.to == 0),
        "{:?}",
        flus.proposals
    );
    params.patches = Some(Patches {
        seeds: 0.0,
        ..Patches::PLUS_DEFAULTS
    });
    let mut out = TileProposals::default();
    tile_step(&params, &step, &rect, &window, &stat, &mut out);
    let q = |v: f64| (v * 65535.0).round() / 65535.0;
    let (sp0, sp1) = (q(0.9), q(0.45));
    let rng = CounterRng::new(3);
    let u1 = |cell: usize| CounterRng::unit(rng.block(2, 0, cell as u64, 0)[0]);
    let mut want: Vec<(u64, u8)> = Vec::new();
    for (y, x) in (3..=5).flat_map(|y| (4..=6).map(move |x| (y, x))) {
        let cell = y * w + x;
        if cell == 4 * w + 5 {
            // the class-1 cell: class 0 is the only score, the roulette picks it
            want.push((cell as u64, 0));
            continue;
        }
        let op0 = sp0 * (7.0 / 8.0 * 0.05) * 1.0 * 1.0;
        let op1 = sp1 * (1.0 / 8.0 * 1.0) * 1.0 * 1.0;
        if u1(cell) * (op0 + op1) >= op0 {
            want.push((cell as u64, 1));
        }
    }
    let got: Vec<(u64, u8)> = out.proposals.iter().map(|p| (p.cell, p.to)).collect();
    assert_eq!(got, want);
    assert!(want.len() >= 2, "{want:?}");
}

/// The fast step's proposals and the CARS step's with seeds = 0 on the same tile,
/// checked equal (proposals, histogram, raw count). PLUS's overall probability with
/// every D_k = 1 is FLUS's score with an own-class factor I_c * 10 K of 1: the FLUS step
/// runs with I_c = 1 / (10 K), the CARS step with D_k = 1 (`step`'s inertia is set both
/// ways). CARS has no gate for growth next to a class's cells; FLUS's gate (U2 + 1/K) /
/// (t + 1) < sp passes every sp of at least 1/65535 (the fixed point's step) once t + 1
/// exceeds 65535 * (1 + 1/K): `step.iteration` must be that late.
fn same_without_seeds(
    params: &CaParams,
    step: &StepParams,
    (rect, window, stat): (&TileRect, &ClassWindow, &TileStatic),
) -> (TileProposals, TileProposals) {
    assert!(
        step.iteration >= 2 * 65535,
        "FLUS's gate must pass every sp > 0"
    );
    let kk = params.k as f64;
    let own = 1.0 / (10.0 * kk);
    assert_eq!(
        own * 10.0 * kk,
        1.0,
        "the own-class factor must be exactly 1"
    );
    let flus_step = StepParams {
        inertia: vec![own; params.k],
        ..step.clone()
    };
    let step = &StepParams {
        inertia: vec![1.0; params.k],
        ..step.clone()
    };
    let mut flus = TileProposals::default();
    tile_step(params, &flus_step, rect, window, stat, &mut flus);
    let mut cars = params.clone();
    cars.patches = Some(Patches {
        seeds: 0.0,
        ..Patches::PLUS_DEFAULTS
    });
    let mut out = TileProposals::default();
    tile_step(&cars, step, rect, window, stat, &mut out);
    assert!(!flus.proposals.is_empty());
    assert_eq!(out.proposals, flus.proposals, "t = {}", step.iteration);
    assert_eq!(out.histogram, flus.histogram);
    assert_eq!(out.raw_proposals, flus.raw_proposals);
    (flus, out)
}

#[test]
fn without_seeds_the_cars_step_proposes_what_flus_does_without_its_own_class_factor() {
    // seeds = 0: no cell is a seed; with D_k = 1 every score is FLUS's without the
    // own-class factor, and late in a run FLUS's gate passes everything, as CARS has no
    // gate: the CARS step (cell by cell) must give the fast step's proposals on a patchy
    // random map.
    let (w, h, k) = (45usize, 33usize, 4usize);
    let rng = CounterRng::new(3);
    let map: Vec<u8> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            match rng.below(70, 0, ((x / 6) * 13 + (y / 5) * 7) as u64, 0, 11) {
                0 => INVALID,
                v => (v % k as u64) as u8,
            }
        })
        .collect();
    let pad = padded(&map, w, h);
    let suit_f: Vec<f32> = (0..w * h * k)
        .map(|i| rng.below(71, 0, i as u64, 0, 1001) as f32 / 1000.0)
        .collect();
    let suit = suitability_fixed(&suit_f);
    let restricted: Vec<bool> = (0..w * h)
        .map(|i| rng.below(72, 0, i as u64, 0, 17) == 0)
        .collect();
    let mut params = CaParams::new(vec![0.4, 1.0, 0.7, 0.2], vec![vec![1.0; k]; k], 8);
    params.cost[2][0] = 0.0;
    let (rect, window, stat) = whole_tile((w, h), &pad, &suit, &restricted, &[]);
    for t in [1_000_000u32, 1_000_002, 1_000_007] {
        let mut step = step_params(k, t, 0);
        step.closed_in[3] = t == 1_000_007;
        let (flus, out) = same_without_seeds(&params, &step, (&rect, &window, &stat));
        assert_eq!(out.cells, flus.cells);
    }
}

#[test]
fn in_transition_mode_without_seeds_the_cars_step_is_flus_without_its_own_class_factor() {
    // transition mode: cells off their start class are done, and a neighbour that
    // changed counts for its start class too; with seeds = 0 the CARS step (cell by
    // cell) must give the fast step's proposals, on a start map that differs from the
    // current one in a scattered fifth of the cells
    let (w, h, k) = (38usize, 29usize, 3usize);
    let rng = CounterRng::new(5);
    let map: Vec<u8> = (0..w * h)
        .map(|i| ((i % w) / 7 + (i / w) / 6) as u8 % k as u8)
        .collect();
    let start: Vec<u8> = map
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if rng.below(80, 0, i as u64, 0, 5) == 0 {
                (c + 1) % k as u8
            } else {
                c
            }
        })
        .collect();
    let (pad, pad_start) = (padded(&map, w, h), padded(&start, w, h));
    let suit_f: Vec<f32> = (0..w * h * k)
        .map(|i| rng.below(81, 0, i as u64, 0, 1001) as f32 / 1000.0)
        .collect();
    let suit = suitability_fixed(&suit_f);
    let restricted = vec![false; w * h];
    let params = CaParams::new(vec![0.6, 1.0, 0.3], vec![vec![1.0; k]; k], 12);
    let (rect, window, stat) = whole_tile((w, h), &pad, &suit, &restricted, &pad_start);
    let moved = (0..w * h).filter(|&i| map[i] != start[i]).count() as u64;
    assert!(moved > 100, "{moved}");
    for t in [1_000_000u32, 1_000_003] {
        let mut step = step_params(k, t, 0);
        step.transitions = true;
        let (_, out) = same_without_seeds(&params, &step, (&rect, &window, &stat));
        // every moved cell is done: none of them proposes
        assert!(
            out.skipped_closed >= moved,
            "{} < {moved}",
            out.skipped_closed
        );
        assert!(out
            .proposals
            .iter()
            .all(|p| start[p.cell as usize] == map[p.cell as usize]));
    }
}

/// A 40 x 30 grid of class 0 with class 1 only in the 6 x 6 top-left corner; class 1
/// is suitable (0.9) only in the 12 x 10 bottom-right area, far from its cells (0
/// elsewhere); the demand moves 30 cells from class 0 to class 1.
struct Remote {
    w: usize,
    h: usize,
    classes: Vec<u8>,
    suit: Vec<f32>,
    restricted: Vec<bool>,
    demand: Vec<i64>,
}

fn remote_area() -> Remote {
    let (w, h) = (40usize, 30usize);
    let mut classes = vec![0u8; w * h];
    let mut suit = vec![0f32; w * h * 2];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if x < 6 && y < 6 {
                classes[i] = 1;
            }
            let s1 = if x >= 28 && y >= 20 { 0.9 } else { 0.0 };
            suit[i * 2] = 1.0 - s1;
            suit[i * 2 + 1] = s1;
        }
    }
    let ones = classes.iter().filter(|&&c| c == 1).count() as i64;
    let demand = vec![(w * h) as i64 - ones - 30, ones + 30];
    Remote {
        w,
        h,
        classes,
        suit,
        restricted: vec![false; w * h],
        demand,
    }
}

fn run_remote(s: &Remote, patches: Option<Patches>, tiling: Tiling, threads: usize) -> CaOutput {
    run_remote_with(s, patches, None, tiling, threads)
}

/// [`run_remote`] with the pair quotas of transition mode (row-major K x K).
fn run_remote_with(
    s: &Remote,
    patches: Option<Patches>,
    quota: Option<&[u64]>,
    tiling: Tiling,
    threads: usize,
) -> CaOutput {
    let mut params = CaParams::new(vec![1.0, 1.0], vec![vec![1.0; 2]; 2], 2021);
    params.patches = patches;
    let input = CaInput {
        width: s.w,
        height: s.h,
        classes: &s.classes,
        suitability: &s.suit,
        restricted: &s.restricted,
        demand: &s.demand,
        quota,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| run(&params, &input, tiling, |_, _| {}))
        .unwrap()
}

/// Class-1 cells of `map` in the suitable area (x >= 28, y >= 20).
fn in_area(map: &[u8], w: usize) -> usize {
    map.iter()
        .enumerate()
        .filter(|&(i, &c)| c == 1 && i % w >= 28 && i / w >= 20)
        .count()
}

#[test]
fn a_patch_appears_away_from_its_class_only_with_patches_and_meets_demand_for_any_tiling() {
    let s = remote_area();
    let one = Tiling { rows: 1, cols: 1 };
    // FLUS: class 1 can only grow next to its cells, where its suitability is 0: nothing
    // changes and the run stalls 30 cells short
    let flus = run_remote(&s, None, one, 1);
    assert_eq!(flus.map, s.classes);
    assert_eq!(flus.report.final_gap, vec![-30, 30]);
    assert_eq!(in_area(&flus.map, s.w), 0);
    // PLUS's CARS: seeds in the suitable area grow into patches; the demand is met
    // exactly and every new class-1 cell is in the area (suitability 0 elsewhere)
    let cars = Patches {
        threshold: 0.5,
        decay: 0.1,
        seeds: 0.3,
    };
    let base = run_remote(&s, Some(cars), one, 1);
    assert!(base.report.demand_met, "{:?}", base.report);
    let ones = base.map.iter().filter(|&&c| c == 1).count() as i64;
    assert_eq!(ones, s.demand[1]);
    assert_eq!(in_area(&base.map, s.w), 30);
    // the same map and records for every tiling and thread count
    let hash = crate::ca::driver_tests::output_hash(&base);
    for (rows, cols, threads) in [(2, 3, 2), (7, 5, 1), (3, 1, 2)] {
        let out = run_remote(&s, Some(cars), Tiling { rows, cols }, threads);
        assert_eq!(
            crate::ca::driver_tests::output_hash(&out),
            hash,
            "{rows}x{cols}, {threads} threads"
        );
    }
}

#[test]
fn in_transition_mode_a_patch_meets_its_pair_quota_away_from_its_class_for_any_tiling() {
    // the same remote area with the quota of transition mode: 30 cells 0 -> 1, none
    // 1 -> 0. Without patches nothing can reach the area; with them the quota is met
    // exactly there, each cell changed once, the same map for every tiling
    let s = remote_area();
    let quota = [0u64, 30, 0, 0];
    let one = Tiling { rows: 1, cols: 1 };
    let flus = run_remote_with(&s, None, Some(&quota), one, 1);
    assert_eq!(flus.map, s.classes);
    assert_eq!(
        flus.report.transitions_done.as_deref(),
        Some(&[0u64, 0, 0, 0][..])
    );
    let cars = Patches {
        threshold: 0.5,
        decay: 0.1,
        seeds: 0.3,
    };
    let base = run_remote_with(&s, Some(cars), Some(&quota), one, 1);
    assert!(base.report.demand_met, "{:?}", base.report);
    assert_eq!(base.report.transitions_done.as_deref(), Some(&quota[..]));
    let changed = (0..s.w * s.h)
        .filter(|&i| base.map[i] != s.classes[i])
        .count();
    assert_eq!(changed, 30);
    assert_eq!(in_area(&base.map, s.w), 30);
    let hash = crate::ca::driver_tests::output_hash(&base);
    for (rows, cols, threads) in [(2, 3, 2), (7, 5, 1)] {
        let out = run_remote_with(&s, Some(cars), Some(&quota), Tiling { rows, cols }, threads);
        assert_eq!(
            crate::ca::driver_tests::output_hash(&out),
            hash,
            "{rows}x{cols}, {threads} threads"
        );
    }
}

#[test]
fn a_run_with_patches_resumed_from_a_checkpoint_ends_as_the_whole_run() {
    // the seeds' decay level comes from the iteration records, which the checkpoint
    // holds: resuming after iteration 4 gives the whole run's map and records
    use crate::ca::engine::{run_loop, Checkpoint, LocalTiles};
    let s = remote_area();
    let mut params = CaParams::new(vec![1.0, 1.0], vec![vec![1.0; 2]; 2], 2021);
    params.patches = Some(Patches {
        threshold: 0.5,
        decay: 0.1,
        seeds: 0.02,
    });
    let input = CaInput {
        width: s.w,
        height: s.h,
        classes: &s.classes,
        suitability: &s.suit,
        restricted: &s.restricted,
        demand: &s.demand,
        quota: None,
    };
    let tiling = Tiling { rows: 2, cols: 2 };
    let mut saved: Option<Checkpoint> = None;
    let mut backend = LocalTiles::new(tiling.rects(s.w, s.h).unwrap(), &input, 2);
    let whole = run_loop(
        &params,
        &input,
        &mut backend,
        None,
        &mut |_, _| {},
        &mut |t, make| {
            if t == 4 {
                saved = Some(make());
            }
            Ok(())
        },
    )
    .unwrap();
    assert!(whole.report.demand_met, "{:?}", whole.report);
    // some iterations made no progress: the threshold decayed during the run
    // (the start map's sum |gap| is 30 + 30)
    let level = patch_level(
        60,
        whole
            .records
            .iter()
            .map(|r: &crate::ca::IterationRecord| r.sum_abs_gap),
    );
    assert!(level > 0, "{:?}", whole.records.len());
    let cp = saved.expect("a checkpoint after iteration 4");
    let mut backend = LocalTiles::new(tiling.rects(s.w, s.h).unwrap(), &input, 2);
    let resumed = run_loop(
        &params,
        &input,
        &mut backend,
        Some(cp),
        &mut |_, _| {},
        &mut |_, _| Ok(()),
    )
    .unwrap();
    assert_eq!(
        crate::ca::driver_tests::output_hash(&resumed),
        crate::ca::driver_tests::output_hash(&whole)
    );
}
