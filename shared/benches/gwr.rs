//! Criterion benchmarks of the GWR on synthetic data (9 factors, generated
//! deterministically with `CounterRng`, see gwr_synthetic.rs): the full AICc bandwidth
//! search + fit at n = 5,000, and the local fits with standard errors and local R2 at a
//! given bandwidth (200 neighbours) at n = 20,000. The full search + fit at n = 20,000
//! and 100,000 takes minutes per run: it is timed once by the `gwr_bench` example.

mod gwr_synthetic;

use criterion::{criterion_group, criterion_main, Criterion};
use flus_shared::gwr::{fit, BandwidthChoice, GwrModel, GwrSettings, Weighting};

fn gwr(c: &mut Criterion) {
    let mut group = c.benchmark_group("gwr");
    group.sample_size(10);
    let small = GwrModel::new(gwr_synthetic::synthetic(5_000));
    group.bench_function("search_and_fit_n5000_p10", |b| {
        b.iter(|| fit(&small, &GwrSettings::default()).unwrap())
    });
    let model = GwrModel::new(gwr_synthetic::synthetic(20_000));
    let given = GwrSettings {
        weighting: Weighting::default(),
        bandwidth: BandwidthChoice::Given(200.0),
        ..GwrSettings::default()
    };
    group.bench_function("fit_bandwidth200_n20000_p10", |b| {
        b.iter(|| fit(&model, &given).unwrap())
    });
    group.finish();
}

criterion_group!(benches, gwr);
criterion_main!(benches);
