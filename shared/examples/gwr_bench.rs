//! Single-shot wall time of a full GWR (adaptive bisquare bandwidth search on AICc, then
//! the fit with standard errors and local R2) on synthetic data with 9 factors,
//! generated deterministically with `CounterRng` (see benches/gwr_synthetic.rs).
//!
//! `cargo run --release -p flus-shared --example gwr_bench -- 20000 100000`
//!
//! An argument `N/K` caps the search interval at K neighbours (mgwr's `bw_max`)
//! instead of n: the first probes of the default interval [40 + 2p, n] fit every point
//! on 38 % and 62 % of all points, which makes the default search O(n^2).

#[path = "../benches/gwr_synthetic.rs"]
mod gwr_synthetic;

use std::time::Instant;

use flus_shared::gwr::{fit, BandwidthChoice, GwrModel, GwrSettings, SearchSettings};

fn main() {
    let sizes: Vec<(usize, Option<f64>)> = std::env::args()
        .skip(1)
        .map(|a| match a.split_once('/') {
            Some((n, k)) => (n.parse().expect("N/K"), Some(k.parse().expect("N/K"))),
            None => (a.parse().expect("point count"), None),
        })
        .collect();
    let sizes = if sizes.is_empty() {
        vec![(20_000, None)]
    } else {
        sizes
    };
    for (n, upper) in sizes {
        let t0 = Instant::now();
        let model = GwrModel::new(gwr_synthetic::synthetic(n));
        let t1 = Instant::now();
        let settings = GwrSettings {
            bandwidth: BandwidthChoice::Search(SearchSettings {
                upper,
                ..SearchSettings::default()
            }),
            ..GwrSettings::default()
        };
        let r = fit(&model, &settings).expect("fit");
        let t2 = Instant::now();
        let s = r.search.as_ref().expect("searched");
        println!(
            "n = {n}, p = {}, search interval {:?}: threads {}, data+index {:.2} s, search+fit {:.2} s ({} bandwidths probed, {} iterations); bandwidth {}, AICc {:.3}, R2 {:.4}, ENP {:.2}",
            model.data().p(),
            s.interval,
            rayon::current_num_threads(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            s.probes.len(),
            s.iterations,
            r.diagnostics.bandwidth,
            r.diagnostics.aicc,
            r.diagnostics.r2,
            r.diagnostics.tr_s
        );
    }
}
