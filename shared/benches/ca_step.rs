//! Criterion benchmarks of the CA tile step (docs/design.md §4) on Ben Cat 2010 as one tile
//! (1004 x 1559, K = 4, the code path of `flus bench`: `flus_shared::ca::bench`), and of
//! the Philox blocks it draws: one cell at a time and 8 lanes at a time.
//!
//!     cargo bench -p flus-shared --bench ca_step

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flus_shared::ca::bench;
use flus_shared::rng::CounterRng;

fn ca_step(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/bencat");
    let g = bench::bencat(&dir).expect("Ben Cat maps in examples/bencat");
    let mut group = c.benchmark_group("ca_step");
    group.sample_size(20);
    group.throughput(Throughput::Elements((g.width * g.height) as u64));
    let mut setup = bench::StepSetup::new(&g);
    group.bench_function("bencat_2010_t0_one_tile", |b| {
        b.iter(|| {
            setup.run();
            black_box(setup.out.proposals.len())
        })
    });
    group.finish();

    let rng = CounterRng::new(1);
    let cells: Vec<u64> = (0..4096u64).map(|i| i * 7 + 11).collect();
    let mut out = vec![[0u32; 4]; cells.len()];
    let mut group = c.benchmark_group("philox");
    group.throughput(Throughput::Elements(cells.len() as u64));
    group.bench_function("block_4096_cells", |b| {
        b.iter(|| {
            for (o, &cell) in out.iter_mut().zip(black_box(&cells)) {
                *o = rng.block(16, 0, cell, 0);
            }
            black_box(&out);
        })
    });
    group.bench_function("blocks_4096_cells_8_lanes", |b| {
        b.iter(|| {
            rng.blocks(16, 0, 0, black_box(&cells), &mut out);
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, ca_step);
criterion_main!(benches);
