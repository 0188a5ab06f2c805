//! The capped bandwidth search (SearchCap, docs/design.md §8 "Scale") gives the same bandwidth
//! as the full golden-section search of mgwr: on the Georgia counties the expected
//! value is mgwr's published bandwidth 93 (independent of this code); on synthetic
//! data it is the full search's, computed in the test beside the capped one. Caps below
//! the optimum must be detected (the probes do not prove them) and widened.

#[allow(dead_code)]
#[path = "../benches/gwr_synthetic.rs"]
mod gwr_synthetic;

use std::path::PathBuf;

use flus_shared::gwr::{
    golden_section, GwrData, GwrModel, Kernel, SearchCap, SearchSettings, Weighting,
};

fn georgia_model() -> GwrModel {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/georgia/GData_utm.csv");
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').map(str::trim).collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<f64>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|v| v.trim().parse().unwrap()).collect())
        .collect();
    let get = |name: &str| -> Vec<f64> { rows.iter().map(|r| r[col(name)]).collect() };
    let coords = get("X")
        .into_iter()
        .zip(get("Y"))
        .map(|(x, y)| [x, y])
        .collect();
    let factors = ["PctRural", "PctPov", "PctBlack"]
        .iter()
        .map(|n| (n.to_string(), get(n)))
        .collect();
    GwrModel::new(GwrData::new("PctBach", get("PctBach"), factors, coords).unwrap())
}

fn with_cap(cap: SearchCap) -> SearchSettings {
    SearchSettings {
        cap,
        ..SearchSettings::default()
    }
}

/// Georgia, adaptive bisquare on [48, 159]: the full search's first probes are 90 and
/// 117 (GWR4 summary). A cap of 60 takes the first
/// iterations (probes 90/117, then 74/90, ...) as won by the smaller bandwidth, which
/// the probes then disprove (the optimum, 93, lies above the first probe kept), so the
/// search widens until proven and still ends on mgwr's 93.
#[test]
fn a_capped_search_on_georgia_still_finds_mgwrs_bandwidth_93() {
    let model = georgia_model();
    let w = Weighting::default();
    let full = golden_section(&model, &w, &with_cap(SearchCap::Full)).unwrap();
    assert_eq!(full.bandwidth, 93.0, "mgwr's bandwidth");
    assert_eq!(full.skipped, 0);
    for cap in [50.0, 60.0, 75.0, 100.0, 120.0] {
        let out = golden_section(&model, &w, &with_cap(SearchCap::Given(cap))).unwrap();
        assert_eq!(out.bandwidth, 93.0, "cap {cap}: probes {:?}", out.probes);
        assert_eq!(out.aicc, full.aicc, "cap {cap}");
        assert_eq!(out.iterations, full.iterations, "cap {cap}");
        assert_eq!(out.cap, Some(cap));
    }
    // 60 < 74 (the smaller probe of the second iteration): at least two iterations are
    // skipped first, and the optimum 93 above the kept probe forces a widening.
    let low = golden_section(&model, &w, &with_cap(SearchCap::Given(60.0))).unwrap();
    assert!(low.widened > 0, "{low:?}");
    // the default (Auto) on 159 points runs no pilot: the full search
    let auto = golden_section(&model, &w, &SearchSettings::default()).unwrap();
    assert_eq!(
        (auto.cap, auto.skipped, auto.probes),
        (None, 0, full.probes)
    );
}

/// Synthetic data (1,500 points, 9 factors, CounterRng seed 2024): capped searches,
/// adaptive and fixed, above and below the optimum, give the full search's bandwidth
/// and AICc, and evaluate fewer large bandwidths when the cap is above the optimum.
#[test]
fn capped_searches_equal_the_full_search_on_synthetic_data() {
    let model = GwrModel::new(gwr_synthetic::synthetic(1500));
    let adaptive = Weighting::default();
    let full = golden_section(&model, &adaptive, &with_cap(SearchCap::Full)).unwrap();
    let largest = |o: &flus_shared::gwr::SearchOutcome| {
        o.probes.iter().map(|p| p.bandwidth).fold(0.0, f64::max)
    };
    for cap in [40.0, full.bandwidth * 0.8, full.bandwidth * 2.0, 400.0] {
        let out = golden_section(&model, &adaptive, &with_cap(SearchCap::Given(cap))).unwrap();
        assert_eq!(out.bandwidth, full.bandwidth, "adaptive cap {cap}: {out:?}");
        assert_eq!(out.aicc, full.aicc, "adaptive cap {cap}");
        if cap > full.bandwidth * 1.5 {
            assert!(out.skipped > 0 && out.widened == 0, "cap {cap}: {out:?}");
            assert!(largest(&out) < largest(&full), "cap {cap}: {out:?}");
        }
    }
    let fixed = Weighting {
        kernel: Kernel::Bisquare,
        adaptive: false,
        min_weight: 0.0,
    };
    let model = GwrModel::new(gwr_synthetic::synthetic(800));
    let full = golden_section(&model, &fixed, &with_cap(SearchCap::Full)).unwrap();
    for cap in [full.bandwidth * 0.5, full.bandwidth * 3.0] {
        let out = golden_section(&model, &fixed, &with_cap(SearchCap::Given(cap))).unwrap();
        assert_eq!(out.bandwidth, full.bandwidth, "fixed cap {cap}: {out:?}");
        assert_eq!(out.aicc, full.aicc, "fixed cap {cap}");
        assert!(out.skipped > 0, "fixed cap {cap}: {out:?}");
    }
}

/// From 2,000 points the default search runs a pilot on a quarter of the points (at
/// most 4,000): on 2,400 synthetic points it gives the full search's bandwidth and AICc
/// bit for bit, and never evaluates the full search's largest probe.
#[test]
fn the_default_search_pilots_on_a_quarter_of_the_points_and_equals_the_full_search() {
    let model = GwrModel::new(gwr_synthetic::synthetic(2400));
    let w = Weighting::default();
    let full = golden_section(&model, &w, &with_cap(SearchCap::Full)).unwrap();
    let auto = golden_section(&model, &w, &SearchSettings::default()).unwrap();
    assert_eq!(auto.bandwidth, full.bandwidth, "{auto:?}");
    assert_eq!(auto.aicc.to_bits(), full.aicc.to_bits());
    let pilot = auto.pilot.as_ref().expect("a pilot from 2,000 points");
    // each point kept with probability 600 / 2400: about 600 (4 sd = 85)
    assert!(pilot.points.abs_diff(600) < 85, "{pilot:?}");
    assert!(auto.skipped > 0, "{auto:?}");
    let largest = full.probes.iter().map(|p| p.bandwidth).fold(0.0, f64::max);
    assert!(
        auto.probes.iter().all(|p| p.bandwidth < largest),
        "{auto:?}"
    );
}
