//! Tests of the tile step ([`super`]): the neighbourhood, scores, roulette and gate
//! against hand computations, the row passes, and the whole step against its cell-by-cell
//! definition on random tiles (both instruction-set builds).

use super::*;

/// Pads a w x h map with a halo of r invalid cells.
fn padded(map: &[u8], w: usize, h: usize, r: usize) -> (Vec<u8>, usize) {
    let pw = w + 2 * r;
    let mut p = vec![INVALID; pw * (h + 2 * r)];
    for y in 0..h {
        p[(y + r) * pw + r..(y + r) * pw + r + w].copy_from_slice(&map[y * w..(y + 1) * w]);
    }
    (p, pw)
}

fn omega_at(
    map: &[u8],
    w: usize,
    h: usize,
    n: usize,
    x: usize,
    y: usize,
    weights: &[f64],
) -> Vec<f64> {
    let (p, pw) = padded(map, w, h, (n - 1) / 2);
    let window = ClassWindow {
        data: &p,
        stride: pw,
    };
    let mut counts = [0u32; 256];
    neighbour_counts(&window, x, y, n, &mut counts);
    let mut out = vec![0.0; weights.len()];
    omega(&counts[..weights.len()], n, weights, &mut out);
    out
}

const MAP3: [u8; 9] = [
    0, 1, 1, //
    2, 0, INVALID, //
    0, 0, 1,
];

#[test]
fn neighbourhood_excludes_the_centre_and_counts_invalid_cells_as_nothing() {
    // Centre (1,1) is class 0. Neighbours: 0 1 1 / 2 . 255 / 0 0 1
    // -> class 0: 3, class 1: 3, class 2: 1, invalid: 1 (ignored); divisor 8.
    let w = [1.0, 0.5, 0.2];
    let o = omega_at(&MAP3, 3, 3, 3, 1, 1, &w);
    let want = [3.0 / 8.0 * 1.0, 3.0 / 8.0 * 0.5, 1.0 / 8.0 * 0.2]; // 0.375, 0.1875, 0.025
    for k in 0..3 {
        assert!(
            (o[k] - want[k]).abs() < 1e-15,
            "k={k}: {} vs {}",
            o[k],
            want[k]
        );
    }
}

#[test]
fn neighbourhood_at_the_grid_edge_keeps_the_divisor() {
    // Corner (0,0): 5 neighbours off the grid, then (1,0)=1, (0,1)=2, (1,1)=0.
    // Omega = 1/8 * w_k for each class, not 1/3.
    let w = [1.0, 0.5, 0.2];
    let o = omega_at(&MAP3, 3, 3, 3, 0, 0, &w);
    let want = [0.125, 0.0625, 0.025];
    for k in 0..3 {
        assert!((o[k] - want[k]).abs() < 1e-15);
    }
    // (2,1) is invalid itself but its neighbour (2,2)=1 counts for its left
    // neighbour (1,2): neighbours 2 0 255 / 0 . 1 / off-grid x3 -> 0:2, 1:1, 2:1.
    let o = omega_at(&MAP3, 3, 3, 3, 1, 2, &w);
    let want = [2.0 / 8.0, 1.0 / 8.0 * 0.5, 1.0 / 8.0 * 0.2];
    for k in 0..3 {
        assert!((o[k] - want[k]).abs() < 1e-15);
    }
}

#[test]
fn neighbourhood_of_size_five_divides_by_twenty_four() {
    // 5x5 map of class 1 with class 0 at the centre: 24 neighbours of class 1.
    let mut map = [1u8; 25];
    map[12] = 0;
    let o = omega_at(&map, 5, 5, 5, 2, 2, &[1.0, 0.4]);
    assert_eq!(o, vec![0.0, 24.0 / 24.0 * 0.4]);
    // The corner (0,0) of the same map: 8 on-grid neighbours, one of them class 0:
    // class 1: 7/24, class 0: 1/24.
    let o = omega_at(&map, 5, 5, 5, 0, 0, &[1.0, 0.4]);
    assert!((o[0] - 1.0 / 24.0).abs() < 1e-15 && (o[1] - 7.0 / 24.0 * 0.4).abs() < 1e-15);
}

#[test]
fn combined_score_multiplies_own_class_by_inertia_times_ten_k() {
    // sp = [0.5, 0.3, 0.2], Omega = [0.375, 0.1875, 0.025], cost row of c = 0:
    // [1, 1, 0.5], I_0 = 2, K = 3 -> own-class factor 2 * 10 * 3 = 60.
    // TP0 = 0.5 * 0.375 * 1 * 60 = 11.25; TP1 = 0.3 * 0.1875 * 1 = 0.05625;
    // TP2 = 0.2 * 0.025 * 0.5 = 0.0025; sum = 11.30875.
    let sp = [0.5f32, 0.3, 0.2];
    let mut tp = [0.0; 3];
    let sum = combined_scores(
        &sp,
        &[0.375, 0.1875, 0.025],
        &[1.0, 1.0, 0.5],
        0,
        2.0,
        &mut tp,
    );
    let want = [11.25, 0.05625, 0.0025];
    for k in 0..3 {
        assert!((tp[k] - want[k]).abs() < 1e-8, "k={k}: {}", tp[k]);
    }
    assert!((sum - 11.30875).abs() < 1e-8);
    // A forbidden conversion (cost 0) scores 0.
    let sum = combined_scores(
        &sp,
        &[0.375, 0.1875, 0.025],
        &[1.0, 0.0, 0.0],
        0,
        1.0,
        &mut tp,
    );
    assert_eq!(tp[1..], [0.0, 0.0]);
    assert!((sum - 0.5 * 0.375 * 30.0).abs() < 1e-9);
}

#[test]
fn roulette_picks_classes_in_proportion_to_their_scores() {
    // TP = [1, 0, 3], sum 4: U1 * 4 < 1 -> class 0, else class 2 (class 1 has 0).
    let tp = [1.0, 0.0, 3.0];
    assert_eq!(roulette(&tp, 4.0, 0.2), Some(0));
    assert_eq!(roulette(&tp, 4.0, 0.25), Some(2));
    assert_eq!(roulette(&tp, 4.0, 0.999_999), Some(2));
    assert_eq!(roulette(&[0.0, 0.0], 0.0, 0.5), None);
}

#[test]
fn gate_compares_u2_plus_one_over_k_over_t_plus_one_with_suitability() {
    // K = 4, t = 0: (0.5 + 0.25) / 1 = 0.75.
    assert!(gate(0.5, 4, 0, 0.8));
    assert!(!gate(0.5, 4, 0, 0.7));
    // Strict: 0.75 < 0.75 is false.
    assert!(!gate(0.5, 4, 0, 0.75));
    // t = 3: 0.75 / 4 = 0.1875.
    assert!(gate(0.5, 4, 3, 0.2));
    assert!(!gate(0.5, 4, 3, 0.18));
}

fn params2() -> CaParams {
    CaParams::new(vec![1.0, 1.0], vec![vec![1.0, 1.0], vec![1.0, 1.0]], 9)
}

#[test]
fn tile_step_proposes_a_certain_change_with_its_key_and_skips_uniform_cells() {
    // 4x1 map: 1 0 0 0. Cell 1 (class 0) has one class-1 neighbour and one class-0
    // neighbour; suitability sp(.,0) = 0, sp(.,1) = 1 -> TP0 = 0, TP1 > 0: the
    // roulette surely picks 1; at t = 9 the gate (U2 + 1/2) / 10 < 1 always holds.
    // Cells 2 and 3 see no class 1 (TP1 = 0); cell 0 of class 1 has TP only for 0
    // with sp 0 -> sum 0.
    let map = [1u8, 0, 0, 0];
    let (p, pw) = padded(&map, 4, 1, 1);
    let suit = suitability_fixed(&[0.0f32, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    let restricted = [false; 4];
    let params = params2();
    let step = StepParams {
        iteration: 9,
        inertia: vec![1.0, 1.0],
        closed_in: vec![false, false],
        closed_out: vec![false, false],
        closed_pairs: vec![false; 4],
        patch_level: 0,
        transitions: false,
    };
    let rect = TileRect {
        x0: 0,
        y0: 0,
        width: 4,
        height: 1,
        grid_width: 4,
    };
    let stat = TileStatic {
        suitability: &suit,
        restricted: &restricted,
        stride: 4,
        start_classes: &[],
    };
    let mut out = TileProposals::default();
    tile_step(
        &params,
        &step,
        &rect,
        &ClassWindow {
            data: &p,
            stride: pw,
        },
        &stat,
        &mut out,
    );
    let key = CounterRng::new(9).block(params.stream, 9, 1, 0)[2];
    assert_eq!(
        out.proposals,
        vec![Proposal {
            cell: 1,
            key,
            from: 0,
            to: 1
        }]
    );
    assert_eq!(out.cells, 4);
    assert_eq!(out.raw_proposals, 1);
    let b = (key >> 22) as usize;
    assert_eq!(out.histogram[(b * 2) * 2 + 1], 1);
    assert_eq!(out.histogram.iter().map(|&v| v as u64).sum::<u64>(), 1);

    // Class 1 closed for entry: the proposal is counted raw but not kept.
    let closed = StepParams {
        closed_in: vec![false, true],
        ..step.clone()
    };
    tile_step(
        &params,
        &closed,
        &rect,
        &ClassWindow {
            data: &p,
            stride: pw,
        },
        &stat,
        &mut out,
    );
    assert!(out.proposals.is_empty() && out.raw_proposals == 1);
    // Class 0 closed for leaving: its cells are skipped.
    let closed = StepParams {
        closed_out: vec![true, false],
        closed_pairs: vec![false; 4],
        ..step.clone()
    };
    tile_step(
        &params,
        &closed,
        &rect,
        &ClassWindow {
            data: &p,
            stride: pw,
        },
        &stat,
        &mut out,
    );
    assert!(out.proposals.is_empty() && out.skipped_closed == 3);
    // Restricted cell 1: nothing.
    let restricted = [false, true, false, false];
    let stat = TileStatic {
        restricted: &restricted,
        ..stat
    };
    tile_step(
        &params,
        &step,
        &rect,
        &ClassWindow {
            data: &p,
            stride: pw,
        },
        &stat,
        &mut out,
    );
    assert!(out.proposals.is_empty() && out.cells == 3);

    // 3x3 map of class 0 with class 1 in a corner.
    let map = [1u8, 0, 0, 0, 0, 0, 0, 0, 0];
    let (p, pw) = padded(&map, 3, 3, 1);
    let suit: Vec<u16> = suitability_fixed(&(0..9).flat_map(|_| [0.5f32, 0.5]).collect::<Vec<_>>());
    let restricted = [false; 9];
    let rect = TileRect {
        x0: 0,
        y0: 0,
        width: 3,
        height: 3,
        grid_width: 3,
    };
    let stat = TileStatic {
        suitability: &suit,
        restricted: &restricted,
        stride: 3,
        start_classes: &[],
    };
    tile_step(
        &params,
        &step,
        &rect,
        &ClassWindow {
            data: &p,
            stride: pw,
        },
        &stat,
        &mut out,
    );
    // Uniform means all N*N cells (halo included) equal the own class: at the grid
    // edge the halo is invalid, so no cell of a 3x3 map is uniform.
    assert_eq!(out.skipped_uniform, 0);
}

#[test]
fn uniform_row_marks_exactly_the_cells_whose_whole_window_is_their_class() {
    // Random maps of 2 classes (and some invalid cells) in big patches, so that
    // uniform windows are common; compare with the plain check of every byte.
    let rng = CounterRng::new(7);
    for (case, n) in [3usize, 5, 3, 7, 3, 5].into_iter().enumerate() {
        let (w, h) = (37 + case, 23);
        let map: Vec<u8> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let patch = ((x / 6) * 31 + (y / 5) * 17) as u64;
                match rng.below(50, case as u32, patch, 0, 10) {
                    0 => INVALID,
                    v => (v % 2) as u8,
                }
            })
            .collect();
        let r = (n - 1) / 2;
        let (pad, pw) = padded(&map, w, h, r);
        let window = ClassWindow {
            data: &pad,
            stride: pw,
        };
        let (mut column, mut uniform) = (Vec::new(), Vec::new());
        let mut marked = 0;
        for y in 0..h {
            uniform_row(&window, y, w, n, &mut column, &mut uniform);
            for x in 0..w {
                let c = pad[(y + r) * pw + x + r];
                let plain = (0..n).all(|dy| {
                    pad[(y + dy) * pw + x..(y + dy) * pw + x + n]
                        .iter()
                        .all(|&b| b == c)
                });
                assert_eq!(uniform[x] != 0, plain, "case {case} n={n} ({x},{y})");
                marked += plain as usize;
            }
        }
        assert!(marked > 0, "case {case}: some uniform windows");
    }
}

#[test]
fn tile_step_skips_cells_whose_whole_neighbourhood_is_their_own_class() {
    // 5x5 map of class 0 with class 1 at (0,0); only the interior 3x3 cells have a
    // full on-grid neighbourhood; of those, (1,1) touches (0,0). Uniform: (2,1),
    // (3,1), (1,2), (2,2), (3,2), (1,3), (2,3), (3,3) = 8 cells.
    let mut map = [0u8; 25];
    map[0] = 1;
    let (p, pw) = padded(&map, 5, 5, 1);
    let suit: Vec<u16> =
        suitability_fixed(&(0..25).flat_map(|_| [0.5f32, 0.5]).collect::<Vec<_>>());
    let restricted = [false; 25];
    let rect = TileRect {
        x0: 0,
        y0: 0,
        width: 5,
        height: 5,
        grid_width: 5,
    };
    let stat = TileStatic {
        suitability: &suit,
        restricted: &restricted,
        stride: 5,
        start_classes: &[],
    };
    let step = StepParams {
        iteration: 0,
        inertia: vec![1.0, 1.0],
        closed_in: vec![false, false],
        closed_out: vec![false, false],
        closed_pairs: vec![false; 4],
        patch_level: 0,
        transitions: false,
    };
    let mut out = TileProposals::default();
    tile_step(
        &params2(),
        &step,
        &rect,
        &ClassWindow {
            data: &p,
            stride: pw,
        },
        &stat,
        &mut out,
    );
    assert_eq!(out.skipped_uniform, 8);
    assert_eq!(out.cells, 25);
}

/// The cell-by-cell definition of the step (docs/design.md §4) from the public pieces, no
/// early out but the skipped-cell counts: every valid unrestricted cell draws its
/// block. Returns (proposals, histogram, cells, uniform, closed, raw).
fn reference_step(
    params: &CaParams,
    step: &StepParams,
    rect: &TileRect,
    window: &ClassWindow,
    stat: &TileStatic,
) -> (Vec<Proposal>, Vec<u32>, u64, u64, u64, u64) {
    let (kk, n) = (params.k, params.neighbourhood);
    let r = (n - 1) / 2;
    let rng = CounterRng::new(params.seed);
    let t = step.iteration;
    let mut props = Vec::new();
    let mut hist = vec![0u32; BUCKETS * kk * kk];
    let (mut cells, mut uniform, mut closed, mut raw) = (0, 0, 0, 0);
    for y in 0..rect.height {
        for x in 0..rect.width {
            let c = window.data[(y + r) * window.stride + x + r];
            if c == INVALID || stat.restricted[y * stat.stride + x] {
                continue;
            }
            cells += 1;
            let cu = c as usize;
            let moved =
                step.transitions && stat.start_classes[(y + r) * window.stride + x + r] != c;
            if moved || step.closed_out[cu] {
                closed += 1;
                continue;
            }
            let all_own = (0..n).all(|dy| {
                let start = (y + dy) * window.stride + x;
                window.data[start..start + n].iter().all(|&b| b == c)
                    && (!step.transitions
                        || stat.start_classes[start..start + n].iter().all(|&b| b == c))
            });
            if all_own {
                uniform += 1;
                continue;
            }
            let mut counts = [0u32; 256];
            neighbour_counts(window, x, y, n, &mut counts);
            if step.transitions {
                for dy in 0..n {
                    for dx in 0..n {
                        let at = (y + dy) * window.stride + x + dx;
                        let (a, b) = (window.data[at], stat.start_classes[at]);
                        if a != b {
                            counts[b as usize] += 1;
                        }
                    }
                }
            }
            let mut om = vec![0.0; kk];
            omega(&counts[..kk], n, &params.weights, &mut om);
            let sbase = (y * stat.stride + x) * kk;
            let sp: Vec<f64> = stat.suitability[sbase..sbase + kk]
                .iter()
                .map(|&q| q as f64 / 65535.0)
                .collect();
            let mut tp = vec![0.0; kk];
            let sum = combined_scores(&sp, &om, &params.cost[cu], cu, step.inertia[cu], &mut tp);
            let cell = ((rect.y0 + y) * rect.grid_width + rect.x0 + x) as u64;
            let b = rng.block(params.stream, t, cell, 0);
            let Some(to) = roulette(&tp, sum, CounterRng::unit(b[0])) else {
                continue;
            };
            if to == cu || params.cost[cu][to] <= 0.0 {
                continue;
            }
            if !gate(CounterRng::unit(b[1]), kk, t, sp[to]) {
                continue;
            }
            raw += 1;
            if step.closed_in[to] || step.closed_pairs[cu * kk + to] {
                continue;
            }
            let p = Proposal {
                cell,
                key: b[2],
                from: c,
                to: to as u8,
            };
            hist[(p.bucket() * kk + cu) * kk + to] += 1;
            props.push(p);
        }
    }
    (props, hist, cells, uniform, closed, raw)
}

#[test]
fn tile_step_equals_the_cell_by_cell_definition_on_random_tiles() {
    // Patchy random maps (so that uniform windows, edges and invalid cells all
    // occur), random suitability, restrictions, closed classes and pairs; K and N
    // on both sides of the packed neighbour count (K <= 8, N <= 15), every K of
    // its compile-time kernels, and tiles that are not at the grid's origin.
    let rng = CounterRng::new(11);
    let cases = [
        (2usize, 3usize, 0u32),
        (4, 3, 0),
        (4, 5, 3),
        (6, 7, 1),
        (8, 3, 20),
        (9, 3, 2),
        (3, 17, 0),
        (5, 15, 4),
        // every K of the compile-time kernels (score.rs): 1..=8
        (7, 3, 5),
        (1, 3, 0),
    ];
    let (mut proposals, mut uniform, mut closed) = (0, 0, 0);
    for (case, &(kk, n, t)) in cases.iter().enumerate() {
        let case = case as u32;
        let draw = |cell: u64, d: u8, m: u64| rng.below(60 + case, 0, cell, d, m);
        let r = (n - 1) / 2;
        // grid 53 x 31; the tile is its columns 5..46, rows 2..29 (halo from the grid)
        let (gw, gh) = (53usize, 31usize);
        let map: Vec<u8> = (0..gw * gh)
            .map(|i| {
                let (x, y) = (i % gw, i / gw);
                let patch = ((x / 5) * 37 + (y / 4) * 11) as u64;
                match draw(patch, 0, 12) {
                    0 => INVALID,
                    _ if draw(i as u64, 1, 9) == 0 => draw(i as u64, 2, kk as u64) as u8,
                    _ => draw(patch, 3, kk as u64) as u8,
                }
            })
            .collect();
        let (x0, y0, w, h) = (5usize, 2usize, 41usize, 27usize);
        let stride = w + 2 * r;
        let mut win = vec![INVALID; stride * (h + 2 * r)];
        for wy in 0..h + 2 * r {
            for wx in 0..stride {
                let (gx, gy) = (
                    (x0 + wx) as isize - r as isize,
                    (y0 + wy) as isize - r as isize,
                );
                if gx >= 0 && gy >= 0 && (gx as usize) < gw && (gy as usize) < gh {
                    win[wy * stride + wx] = map[gy as usize * gw + gx as usize];
                }
            }
        }
        let suit_f32: Vec<f32> = (0..w * h * kk)
            .map(|i| draw(i as u64, 4, 1001) as f32 / 1000.0)
            .collect();
        let suit = suitability_fixed(&suit_f32);
        let restricted: Vec<bool> = (0..w * h).map(|i| draw(i as u64, 5, 15) == 0).collect();
        let weights: Vec<f64> = (0..kk)
            .map(|k| 0.05 + draw(k as u64, 6, 100) as f64 / 100.0)
            .collect();
        let cost: Vec<Vec<f64>> = (0..kk)
            .map(|a| {
                (0..kk)
                    .map(|b| match draw((a * kk + b) as u64, 7, 5) {
                        0 if a != b => 0.0,
                        v => v as f64 / 4.0,
                    })
                    .collect()
            })
            .collect();
        let mut params = CaParams::new(weights, cost, 1000 + case as u64);
        params.neighbourhood = n;
        params.stream = 16 + case;
        let step = StepParams {
            iteration: t,
            inertia: (0..kk)
                .map(|k| 0.5 + draw(k as u64, 8, 100) as f64 / 50.0)
                .collect(),
            closed_in: (0..kk).map(|k| draw(k as u64, 9, 5) == 0).collect(),
            closed_out: (0..kk).map(|k| draw(k as u64, 10, 5) == 0).collect(),
            closed_pairs: (0..kk * kk).map(|i| draw(i as u64, 11, 6) == 0).collect(),
            patch_level: 0,
            // odd cases in transition mode: cells off their start class are done
            transitions: case % 2 == 1,
        };
        let rect = TileRect {
            x0,
            y0,
            width: w,
            height: h,
            grid_width: gw,
        };
        let window = ClassWindow { data: &win, stride };
        // the run's start map: the window with one cell in 7 of another class
        let start: Vec<u8> = win
            .iter()
            .enumerate()
            .map(|(i, &c)| match draw(i as u64, 12, 7) {
                0 if c != INVALID => ((c as usize + 1) % kk) as u8,
                _ => c,
            })
            .collect();
        let stat = TileStatic {
            suitability: &suit,
            restricted: &restricted,
            stride: w,
            start_classes: &start,
        };
        let want = reference_step(&params, &step, &rect, &window, &stat);
        let mut out = TileProposals::default();
        // twice: the reused buffers must not change the result; then the portable
        // build (tile_step picks the AVX2 one where the CPU has it)
        for run in 0..3 {
            if run < 2 {
                tile_step(&params, &step, &rect, &window, &stat, &mut out);
            } else {
                tile_step_body::<false>(&params, &step, &rect, &window, &stat, &mut out);
            }
            assert_eq!(out.proposals, want.0, "case {case}: K={kk} N={n}");
            assert_eq!(out.histogram, want.1, "case {case}");
            assert_eq!(
                (
                    out.cells,
                    out.skipped_uniform,
                    out.skipped_closed,
                    out.raw_proposals
                ),
                (want.2, want.3, want.4, want.5),
                "case {case}"
            );
        }
        assert!(want.2 > 0, "case {case}: valid cells");
        proposals += want.0.len();
        uniform += want.3;
        closed += want.4;
    }
    assert!(proposals > 100, "{proposals} proposals over all cases");
    assert!(
        uniform > 0 && closed > 0,
        "uniform {uniform}, closed {closed}"
    );
}

#[test]
fn a_fixed_point_row_goes_into_the_class_bands_as_the_values_the_ca_steps_on() {
    // codes chosen so that code / 65535 is a simple fraction:
    // 13107 = 65535 / 5, 21845 = 65535 / 3, 39321 = 3 * 65535 / 5, 43690 = 2 * 65535 / 3
    let cells: [[u16; 3]; 2] = [[13107, 65535, 0], [21845, 43690, 39321]];
    let row: Vec<u8> = cells
        .iter()
        .flatten()
        .flat_map(|q| q.to_le_bytes())
        .collect();
    // three bands of 5 cells; the row's 2 cells go to cells 2 and 3 of each
    let mut bands = vec![vec![9f32; 5]; 3];
    fixed_row_into_bands(&row, &mut bands, 2).unwrap();
    assert_eq!(bands[0], [9.0, 9.0, 0.2, 1.0 / 3.0, 9.0]);
    assert_eq!(bands[1], [9.0, 9.0, 1.0, 2.0 / 3.0, 9.0]);
    assert_eq!(bands[2], [9.0, 9.0, 0.0, 0.6, 9.0]);
    // half a cell, or a row past the bands' end: an error, nothing written
    let before = bands.clone();
    assert!(fixed_row_into_bands(&row[..5], &mut bands, 0).is_err());
    assert!(fixed_row_into_bands(&row, &mut bands, 4).is_err());
    assert_eq!(bands, before);
}
