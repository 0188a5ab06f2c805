//! CA throughput benchmark (single shot, run in release):
//!
//!     cargo run --release -p flus-shared --example ca_bench [-- --step-only]
//!
//! On Ben Cat 2010 (1004 x 1559) and on a 16x larger grid (Ben Cat tiled 4 x 4,
//! 4016 x 6236) it times the tile step of iteration 0 on one thread (the whole grid as
//! one tile) and prints grid cells per second per core. It also runs the whole CA on
//! Ben Cat (demand = 2020 counts) and prints iterations, proposals per iteration and the
//! share of cells skipped. Suitability: per class, its share in the 7 x 7 window of the
//! 2020 map (as in the Ben Cat tests; no ANN).

use std::path::PathBuf;
use std::time::Instant;

use flus_shared::ca::step::TileRect;
use flus_shared::ca::{
    run, tile_step, CaParams, ClassWindow, InertiaState, TileProposals, TileStatic, Tiling, INVALID,
};
use flus_shared::raster::read_band;

struct Grid {
    w: usize,
    h: usize,
    classes: Vec<u8>,
    suit: Vec<f32>,
    demand: Vec<i64>,
}

fn bencat() -> Grid {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/bencat");
    let (info, a) = read_band::<u8>(&dir.join("landuse_2010.tif"), 1).expect("landuse_2010.tif");
    let (_, b) = read_band::<u8>(&dir.join("landuse_2020.tif"), 1).expect("landuse_2020.tif");
    let (w, h, k) = (info.grid.width, info.grid.height, 4usize);
    let valid: Vec<bool> = a.iter().zip(&b).map(|(&x, &y)| x != 0 && y != 0).collect();
    let classes = a
        .iter()
        .zip(&valid)
        .map(|(&c, &v)| if v { c - 1 } else { INVALID })
        .collect();
    let mut demand = vec![0i64; k];
    for (&c, &v) in b.iter().zip(&valid) {
        if v {
            demand[c as usize - 1] += 1;
        }
    }
    let mut suit = vec![0f32; w * h * k];
    for y in 0..h {
        for x in 0..w {
            if !valid[y * w + x] {
                continue;
            }
            let mut n = [0u32; 5];
            for yy in y.saturating_sub(3)..(y + 4).min(h) {
                for xx in x.saturating_sub(3)..(x + 4).min(w) {
                    if valid[yy * w + xx] {
                        n[b[yy * w + xx] as usize] += 1;
                        n[0] += 1;
                    }
                }
            }
            for c in 0..k {
                suit[(y * w + x) * k + c] = n[c + 1] as f32 / n[0] as f32;
            }
        }
    }
    Grid {
        w,
        h,
        classes,
        suit,
        demand,
    }
}

/// The grid repeated `f` x `f` times (demand scaled by f^2).
fn tiled(g: &Grid, f: usize) -> Grid {
    let (w, h, k) = (g.w * f, g.h * f, 4);
    let mut classes = vec![0u8; w * h];
    let mut suit = vec![0f32; w * h * k];
    for y in 0..h {
        for x in 0..w {
            let s = (y % g.h) * g.w + x % g.w;
            classes[y * w + x] = g.classes[s];
            suit[(y * w + x) * k..(y * w + x + 1) * k].copy_from_slice(&g.suit[s * k..(s + 1) * k]);
        }
    }
    let demand = g.demand.iter().map(|d| d * (f * f) as i64).collect();
    Grid {
        w,
        h,
        classes,
        suit,
        demand,
    }
}

/// The Ben Cat test parameters: weights of Table 2, every conversion allowed except
/// into water (index 1).
fn params() -> CaParams {
    let mut cost = vec![vec![1.0; 4]; 4];
    for (c, row) in cost.iter_mut().enumerate() {
        if c != 1 {
            row[1] = 0.0;
        }
    }
    CaParams::new(vec![0.01, 0.4, 1.0, 0.2], cost, 1)
}

fn bench_step(name: &str, g: &Grid, reps: usize) {
    let p = params();
    let k = p.k;
    let mut counts = vec![0u64; k];
    for &c in &g.classes {
        if c != INVALID {
            counts[c as usize] += 1;
        }
    }
    let mut state = InertiaState::new(k, p.accelerate);
    state.update(&counts, &g.demand, 0);
    let step = state.step_params(0, &p.cost);
    let r = p.radius();
    let pw = g.w + 2 * r;
    let mut padded = vec![INVALID; pw * (g.h + 2 * r)];
    for y in 0..g.h {
        padded[(y + r) * pw + r..(y + r) * pw + r + g.w]
            .copy_from_slice(&g.classes[y * g.w..(y + 1) * g.w]);
    }
    let restricted = vec![false; g.w * g.h];
    let rect = TileRect {
        x0: 0,
        y0: 0,
        width: g.w,
        height: g.h,
        grid_width: g.w,
    };
    let window = ClassWindow {
        data: &padded,
        stride: pw,
    };
    let stat = TileStatic {
        suitability: &g.suit,
        restricted: &restricted,
        stride: g.w,
    };
    let mut out = TileProposals::default();
    tile_step(&p, &step, &rect, &window, &stat, &mut out); // warm-up
    let start = Instant::now();
    for _ in 0..reps {
        tile_step(&p, &step, &rect, &window, &stat, &mut out);
    }
    let secs = start.elapsed().as_secs_f64() / reps as f64;
    let cells = (g.w * g.h) as f64;
    println!(
        "{name}: {}x{} = {} cells ({} valid), tile step t=0, 1 thread: {:.2} ms, {:.1} M cells/s/core ({:.1} M valid cells/s); skipped uniform {:.1} %, evaluated {:.1} %, proposals {}",
        g.w,
        g.h,
        g.w * g.h,
        out.cells,
        secs * 1e3,
        cells / secs / 1e6,
        out.cells as f64 / secs / 1e6,
        100.0 * out.skipped_uniform as f64 / out.cells as f64,
        100.0 * (out.cells - out.skipped_uniform - out.skipped_closed) as f64 / out.cells as f64,
        out.proposals.len()
    );
}

fn main() {
    let g = bencat();
    if std::env::args().any(|a| a == "--step-only") {
        // One tile step, e.g. for `valgrind --tool=callgrind` instruction counts.
        bench_step("Ben Cat 2010", &g, 1);
        return;
    }
    bench_step("Ben Cat 2010", &g, 20);
    let big = tiled(&g, 4);
    bench_step("Ben Cat tiled 4x4", &big, 3);
    drop(big);

    let restricted = vec![false; g.w * g.h];
    let input = flus_shared::ca::CaInput {
        width: g.w,
        height: g.h,
        classes: &g.classes,
        suitability: &g.suit,
        restricted: &restricted,
        demand: &g.demand,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let start = Instant::now();
    let out = pool
        .install(|| run(&params(), &input, Tiling { rows: 1, cols: 1 }, |_, _| {}))
        .expect("CA run");
    let secs = start.elapsed().as_secs_f64();
    let valid = out.report.valid_cells as f64;
    println!(
        "Ben Cat full CA (1 thread): {} iterations, stop {:?}, final gaps {:?}, {:.2} s",
        out.report.iterations, out.report.stop_reason, out.report.final_gap, secs
    );
    for r in &out.records {
        println!(
            "  t {:3}: proposals {:6} ({:.2} % of valid), accepted {:6}, sum|gap| {:7}, skipped uniform {:.1} %, skipped closed class {:.1} %, exact-key buckets {}, exact keys {}",
            r.t,
            r.proposals,
            100.0 * r.proposals as f64 / valid,
            r.accepted,
            r.sum_abs_gap,
            100.0 * r.skipped_uniform as f64 / valid,
            100.0 * r.skipped_closed as f64 / valid,
            r.key_requests,
            r.exact_keys
        );
    }
}
