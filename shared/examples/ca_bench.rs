//! CA throughput benchmark (single shot, run in release):
//!
//!     cargo run --release -p flus-shared --example ca_bench
//!
//! On Ben Cat 2010 (1004 x 1559) and on a 16x larger grid (Ben Cat tiled 4 x 4,
//! 4016 x 6236) it times the tile step of iteration 0 on one thread (the whole grid as
//! one tile) and prints grid cells per second per core (the code path of `flus bench`:
//! `flus_shared::ca::bench`). It also runs the whole CA on Ben Cat (demand = 2020
//! counts) and prints iterations, proposals per iteration and the share of cells
//! skipped.

use std::path::PathBuf;
use std::time::Instant;

use flus_shared::ca::bench::{self, BenchGrid};
use flus_shared::ca::{run, Tiling};

fn bench_step(name: &str, g: &BenchGrid, reps: usize) {
    let t = bench::time_step(g, reps);
    println!(
        "{name}: {}x{} = {} cells ({} valid), tile step t=0, 1 thread: {:.2} ms, {:.1} M cells/s/core ({:.1} M valid cells/s; {} M cells per thread CPU second); skipped uniform {:.1} %, proposals {}",
        g.width,
        g.height,
        t.cells,
        t.valid_cells,
        t.seconds * 1e3,
        t.cells_per_second / 1e6,
        t.valid_cells as f64 / t.seconds / 1e6,
        t.cells_per_cpu_second
            .map_or("?".into(), |c| format!("{:.1}", c / 1e6)),
        100.0 * t.skipped_uniform as f64 / t.valid_cells as f64,
        t.proposals
    );
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/bencat");
    let g = bench::bencat(&dir).expect("Ben Cat maps");
    if std::env::args().any(|a| a.starts_with("--step-only")) {
        // Tile steps only (`--step-only`: one, e.g. for `valgrind --tool=callgrind`
        // instruction counts; `--step-only=N`: N).
        let reps = std::env::args()
            .find_map(|a| a.strip_prefix("--step-only=").and_then(|n| n.parse().ok()))
            .unwrap_or(1);
        bench_step("Ben Cat 2010", &g, reps);
        return;
    }
    bench_step("Ben Cat 2010", &g, 20);
    let big = bench::tiled(&g, 4);
    bench_step("Ben Cat tiled 4x4", &big, 3);
    drop(big);

    let restricted = vec![false; g.width * g.height];
    let input = flus_shared::ca::CaInput {
        width: g.width,
        height: g.height,
        classes: &g.classes,
        suitability: &g.suitability,
        restricted: &restricted,
        demand: &g.demand,
        quota: None,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let start = Instant::now();
    let out = pool
        .install(|| {
            run(
                &bench::params(),
                &input,
                Tiling { rows: 1, cols: 1 },
                |_, _| {},
            )
        })
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
