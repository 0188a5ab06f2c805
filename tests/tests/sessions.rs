//! Sessions: the whole Ben Cat study (validation + 3 scenarios) over 1, 2 and 3 local
//! workers gives the single-process maps and carbon totals, each network's tiles are
//! sent once, and the suitability raster assembled from the workers' tiles holds the
//! fixed-point values of the single-process inference.

use std::path::Path;
use std::time::Duration;

use flus_e2e::flus;
use serde_json::Value;

const STUDY: &str = "examples/bencat/study.toml";
const SCENARIOS: [&str; 3] = ["urbanized", "agricultural", "ecological"];
const TIMEOUT: Duration = Duration::from_secs(1800);

/// `flus validate` in one process: the validation map's SHA-256.
fn reference_validation(out: &Path) -> String {
    let o = flus(
        &[
            "validate",
            STUDY,
            "--tiles",
            "2x3",
            "--threads",
            "1",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    o.json()["map_sha256"].as_str().unwrap().to_string()
}

/// `flus carbon` on the 2020 map and `map`: the total storage of `map`, t.
fn standalone_carbon(map: &Path) -> f64 {
    let o = flus(
        &[
            "carbon",
            "--baseline",
            "examples/bencat/landuse_2020.tif",
            "--alternate",
            map.to_str().unwrap(),
            "--pools",
            "examples/bencat/carbon_pools.csv",
            "--json",
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    o.json()["alternate_total_t"].as_f64().unwrap()
}

/// Band `b` (1-based) of a raster as f32.
fn band(path: &Path, b: usize) -> Vec<f32> {
    let ds = gdal::Dataset::open(path).unwrap();
    let band = ds.rasterband(b).unwrap();
    band.read_as::<f32>((0, 0), band.size(), band.size(), None)
        .unwrap()
        .data()
        .to_vec()
}

#[test]
fn the_whole_bencat_study_on_one_two_and_three_workers_gives_the_single_process_maps_and_carbon() {
    let refs = tempfile::tempdir().unwrap();
    let validation = reference_validation(&refs.path().join("validation"));
    // every scenario in one process, and its map's carbon from `flus carbon`
    let scenarios: Vec<(String, f64)> = SCENARIOS
        .iter()
        .map(|sc| {
            let dir = refs.path().join(sc);
            let (hash, _) = flus_e2e::reference_run(STUDY, sc, &dir, TIMEOUT);
            let carbon = standalone_carbon(&dir.join(format!("landuse_{sc}_2060.tif")));
            (hash, carbon)
        })
        .collect();
    let mut first_totals: Option<Vec<f64>> = None;
    for n in ["1", "2", "3"] {
        let dir = tempfile::tempdir().unwrap();
        let o = flus(
            &[
                "run",
                STUDY,
                "--local-workers",
                n,
                "--json",
                "--out",
                dir.path().to_str().unwrap(),
            ],
            None,
            TIMEOUT,
        );
        assert_eq!(o.code, Some(0), "{n} workers: {}", o.stderr);
        let j = o.json();
        assert_eq!(
            j["validation"]["map_sha256"],
            validation.as_str(),
            "{n} workers: validation"
        );
        let tables = j["tables"]["carbon"].as_array().unwrap();
        let mut totals = Vec::new();
        for (i, (sc, (hash, carbon))) in SCENARIOS.iter().zip(&scenarios).enumerate() {
            let s = &j["scenarios"][sc];
            assert_eq!(s["map_sha256"], hash.as_str(), "{n} workers: {sc}");
            // the run's storage (the workers' counts) is the standalone command's
            let row = &tables[i + 1];
            assert_eq!(row["map"], format!("{sc}_2060"));
            let t = row["storage_t"].as_f64().unwrap();
            assert!(
                (t - carbon).abs() <= 1e-9 * carbon.abs(),
                "{n} workers, {sc}: {t} t, flus carbon {carbon} t"
            );
            totals.push(t);
            // the tiles stay: no scenario sends tile data
            assert_eq!(s["traffic"]["tile_bytes"], 0, "{n} workers: {sc}");
        }
        // the same bits for every worker count
        match &first_totals {
            None => first_totals = Some(totals),
            Some(f) => assert_eq!(f, &totals, "{n} workers: carbon totals"),
        }
        // one session per network, each tile sent once
        let sessions = &j["sessions"];
        assert_eq!(sessions["scenarios"]["runs"], 3, "{}", sessions);
        assert_eq!(sessions["validation"]["runs"], 1, "{}", sessions);
        for name in ["scenarios", "validation"] {
            let s = &sessions[name];
            assert!(s["first_load_bytes"].as_u64().unwrap() > 0, "{s}");
            assert_eq!(
                s["tile_bytes"], s["first_load_bytes"],
                "{n} workers: {name}"
            );
        }
    }
}

#[test]
fn tile_data_is_sent_once_per_session_whatever_the_number_of_scenarios() {
    let bytes = |scenarios: &[&str]| -> (u64, Value) {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "run",
            STUDY,
            "--local-workers",
            "2",
            "--no-validation",
            "--json",
            "--out",
            dir.path().to_str().unwrap(),
        ];
        for s in scenarios {
            args.extend(["--scenario", s]);
        }
        let o = flus(&args, None, TIMEOUT);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        let j = o.json();
        let s = j["sessions"]["scenarios"].clone();
        (s["tile_bytes"].as_u64().unwrap(), s)
    };
    let (one, s1) = bytes(&["urbanized"]);
    let (three, s3) = bytes(&SCENARIOS);
    assert_eq!(s1["runs"], 1);
    assert_eq!(s3["runs"], 3);
    assert_eq!(one, three, "one scenario: {s1}; three: {s3}");
    // at least every cell's class (1 B), restriction (1 B) and 5 drivers (4 B each)
    let cells = 1004u64 * 1559;
    assert!(
        one >= cells * (1 + 1 + 5 * 4),
        "{one} bytes for {cells} cells"
    );
}

#[test]
fn the_suitability_raster_holds_the_fixed_point_values_of_the_single_process_inference() {
    let dir = tempfile::tempdir().unwrap();
    let o = flus(
        &[
            "run",
            STUDY,
            "--local-workers",
            "2",
            "--no-validation",
            "--scenario",
            "urbanized",
            "--json",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let j = o.json();
    assert!(
        j["sessions"]["scenarios"]["suitability_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    // `flus simulate` infers every cell's suitability in f32 on one process
    let refs = tempfile::tempdir().unwrap();
    flus_e2e::reference_run(STUDY, "urbanized", refs.path(), TIMEOUT);
    let name = "suitability_2020.tif";
    for b in 1..=4 {
        let ours = band(&dir.path().join(name), b);
        let theirs = band(&refs.path().join(name), b);
        assert_eq!(ours.len(), theirs.len());
        for (i, (&a, &s)) in ours.iter().zip(&theirs).enumerate() {
            // the workers keep round(s * 65535) and the raster holds that / 65535
            let want = ((s as f64 * 65535.0).round() * (1.0 / 65535.0)) as f32;
            assert_eq!(a, want, "band {b}, cell {i}: {a} vs {s}");
        }
    }
}

#[test]
fn the_ann_weights_are_the_same_bits_for_one_two_and_three_workers_of_one_or_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let toml = flus_e2e::crop::bencat_window(&dir.path().join("study"), 350, 600, 300);
    let mut seen: Option<(String, String)> = None;
    for (workers, threads) in [("1", "1"), ("2", "1"), ("3", "1"), ("1", "2"), ("2", "2")] {
        let out = dir.path().join(format!("run-{workers}-{threads}"));
        let o = flus(
            &[
                "run",
                toml.to_str().unwrap(),
                "--local-workers",
                workers,
                "--worker-threads",
                threads,
                "--scenario",
                "urbanized",
                "--json",
                "--out",
                out.to_str().unwrap(),
            ],
            None,
            TIMEOUT,
        );
        assert_eq!(o.code, Some(0), "{workers} x {threads}: {}", o.stderr);
        let j = o.json();
        let net = j["ann_network_sha256"].as_str().unwrap().to_string();
        let map = j["scenarios"]["urbanized"]["map_sha256"]
            .as_str()
            .unwrap()
            .to_string();
        match &seen {
            None => seen = Some((net, map)),
            Some((n, m)) => {
                assert_eq!(n, &net, "{workers} workers x {threads} threads: network");
                assert_eq!(m, &map, "{workers} workers x {threads} threads: map");
            }
        }
    }
}
