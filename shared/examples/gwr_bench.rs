//! Single-shot wall time of a full GWR (adaptive bisquare bandwidth search on AICc, then
//! the fit with standard errors and local R2) on synthetic data with 9 factors,
//! generated deterministically with `CounterRng` (see benches/gwr_synthetic.rs).
//!
//! `cargo run --release -p flus-shared --example gwr_bench -- 20000 100000`
//!
//! Each argument is a point count N, searched with the default cap (a pilot search on
//! 4,000 points, see `flus_shared::gwr::SearchCap`); `N/full` runs the full search of
//! mgwr (every iteration evaluated, O(n^2) for large n); `N/K` uses the cap K.

#[path = "../benches/gwr_synthetic.rs"]
mod gwr_synthetic;

use std::time::Instant;

use flus_shared::gwr::{fit, BandwidthChoice, GwrModel, GwrSettings, SearchCap, SearchSettings};

fn main() {
    let sizes: Vec<(usize, SearchCap)> = std::env::args()
        .skip(1)
        .map(|a| match a.split_once('/') {
            Some((n, "full")) => (n.parse().expect("N/full"), SearchCap::Full),
            Some((n, k)) => (
                n.parse().expect("N/K"),
                SearchCap::Given(k.parse().expect("N/K")),
            ),
            None => (a.parse().expect("point count"), SearchCap::Auto),
        })
        .collect();
    let sizes = if sizes.is_empty() {
        vec![(20_000, SearchCap::Auto)]
    } else {
        sizes
    };
    for (n, cap) in sizes {
        let t0 = Instant::now();
        let model = GwrModel::new(gwr_synthetic::synthetic(n));
        let t1 = Instant::now();
        let settings = GwrSettings {
            bandwidth: BandwidthChoice::Search(SearchSettings {
                cap,
                ..SearchSettings::default()
            }),
            ..GwrSettings::default()
        };
        let r = fit(&model, &settings).expect("fit");
        let t2 = Instant::now();
        let s = r.search.as_ref().expect("searched");
        println!(
            "n = {n}, p = {}, {cap:?}: threads {}, data+index {:.2} s, search+fit {:.2} s; interval {:?}, cap {:?}, pilot {:?}, {} iterations ({} skipped, widened {} times), {} AICc evaluations; bandwidth {}, AICc {:.3}, R2 {:.4}, ENP {:.2}",
            model.data().p(),
            rayon::current_num_threads(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            s.interval,
            s.cap,
            s.pilot,
            s.iterations,
            s.skipped,
            s.widened,
            s.probes.len(),
            r.diagnostics.bandwidth,
            r.diagnostics.aicc,
            r.diagnostics.r2,
            r.diagnostics.tr_s
        );
    }
}
