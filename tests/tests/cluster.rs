//! The cluster with real processes: the same class map (SHA-256) from the
//! single-process driver and from `flus run` over 1, 2 and 3 workers, the same GWR
//! outputs from the workers and from the coordinator, and the run's carbon equal to
//! `flus carbon` on its maps. On a 300 x 300 window of Ben Cat (12 tiles for 3
//! workers, every class): what these tests prove does not depend on the grid's size,
//! and the whole study goes through the cluster in `report.rs`. Lost, hung and
//! restarted workers and a killed coordinator are in `faults/`.

use gdal::Metadata;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use flus_e2e::{crop, flus};

const SCENARIO: &str = "urbanized";
const TIMEOUT: Duration = Duration::from_secs(900);

/// The window's folder and study file.
fn study() -> &'static (PathBuf, String) {
    static STUDY: OnceLock<(PathBuf, String)> = OnceLock::new();
    STUDY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster-bencat-window");
        let toml = crop::test_window(&dir);
        (dir, toml.to_str().unwrap().to_string())
    })
}

/// The hash of the single-process driver's map (2x3 tiles, 1 thread).
fn reference_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        flus_e2e::reference_run(&study().1, SCENARIO, dir.path(), TIMEOUT).0
    })
}

fn run_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        &study().1,
        "--scenario",
        SCENARIO,
        "--no-validation",
        "--json",
        "--out",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

fn scenario(j: &serde_json::Value) -> &serde_json::Value {
    &j["scenarios"][SCENARIO]
}

#[test]
fn one_two_and_three_local_workers_give_the_single_process_hash_and_the_standalone_carbon() {
    let want = reference_hash().to_string();
    let mut first_gwr = None;
    for n in ["1", "2", "3"] {
        let dir = tempfile::tempdir().unwrap();
        let out = flus(
            &run_args(dir.path().to_str().unwrap(), &["--local-workers", n]),
            None,
            TIMEOUT,
        );
        assert_eq!(out.code, Some(0), "{n} workers: {}", out.stderr);
        let j = out.json();
        assert_eq!(scenario(&j)["map_sha256"], want.as_str(), "{n} workers");
        assert_eq!(scenario(&j)["demand_met"], true);
        assert_eq!(
            j["workers"].as_array().unwrap().len(),
            n.parse::<usize>().unwrap()
        );
        let map = dir.path().join(format!("landuse_{SCENARIO}_2060.tif"));
        assert!(map.exists());
        assert!(dir.path().join("suitability_2020.tif").exists());
        if n != "2" {
            same_carbon_as_the_standalone_command(&j, &map);
        }
        // the driver analysis: one row of single-factor R2 per class, one per driver
        let t10 = j["gwr"]["factor_r2"].as_array().unwrap();
        assert_eq!(t10.len(), 4);
        for row in t10 {
            let r2 = row["r2"].as_array().unwrap();
            assert_eq!(r2.len(), 5);
            assert!(
                r2.iter()
                    .all(|v| v.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x))),
                "{row}"
            );
        }
        assert!(dir.path().join("gwr_factor_r2.csv").exists());
        // GWR of the carbon change and the coefficient maps, fitted on the workers
        assert_eq!(j["gwr"]["fits_on"], "workers");
        // the factor table's permutation test too: 99 permutations x 4 classes x 5
        // drivers, every one computed on a worker
        assert_eq!(
            j["gwr"]["cluster"]["permutation_fits"],
            99 * 4 * 5,
            "{}",
            j["gwr"]
        );
        assert!(j["gwr"]["carbon"][SCENARIO]["r2"].is_f64(), "{}", j["gwr"]);
        let outputs = gwr_outputs(dir.path());
        match &first_gwr {
            None => first_gwr = Some(outputs),
            Some(f) => assert!(
                f == &outputs,
                "{n} workers: GWR outputs differ from 1 worker"
            ),
        }
    }
    // the same bits with the local fits on the coordinator
    let dir = tempfile::tempdir().unwrap();
    let out = flus(
        &run_args(
            dir.path().to_str().unwrap(),
            &["--local-workers", "1", "--gwr-local"],
        ),
        None,
        TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "--gwr-local: {}", out.stderr);
    assert_eq!(out.json()["gwr"]["fits_on"], "coordinator");
    assert!(
        first_gwr.as_ref() == Some(&gwr_outputs(dir.path())),
        "GWR outputs of the coordinator differ from the workers'"
    );
}

/// The bytes of every GWR output of a run (CSV tables and coefficient maps' values).
fn gwr_outputs(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with("gwr_") && name.ends_with(".csv")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    for name in [
        "gwr_coef_built-up.tif".to_string(),
        format!("gwr_coef_carbon_{SCENARIO}.tif"),
    ] {
        let ds = gdal::Dataset::open(dir.join(&name)).unwrap();
        let mut bytes = Vec::new();
        for b in 1..=ds.raster_count() {
            let band = ds.rasterband(b).unwrap();
            assert!(band.description().unwrap().starts_with("b_"), "{name}");
            let buf = band
                .read_as::<f32>((0, 0), band.size(), band.size(), None)
                .unwrap();
            bytes.extend(buf.data().iter().flat_map(|v| v.to_le_bytes()));
        }
        v.push((name, bytes));
    }
    v.sort();
    assert!(v
        .iter()
        .any(|(n, _)| n == &format!("gwr_carbon_{SCENARIO}.csv")));
    v
}

/// The run's carbon (from the workers' integer counts) equals `flus carbon` on the
/// written maps: baseline 2020 and the scenario map (whose nodata is the study mask).
fn same_carbon_as_the_standalone_command(j: &serde_json::Value, map: &std::path::Path) {
    let dir = &study().0;
    let out = flus(
        &[
            "carbon",
            "--baseline",
            dir.join("landuse_2020.tif").to_str().unwrap(),
            "--alternate",
            map.to_str().unwrap(),
            "--pools",
            dir.join("carbon_pools.csv").to_str().unwrap(),
            "--json",
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let c = out.json();
    let tables = &j["tables"]["carbon"];
    assert_eq!(tables[0]["map"], "2020");
    assert_eq!(tables[1]["map"], format!("{SCENARIO}_2060"));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
    let base = tables[0]["storage_t"].as_f64().unwrap();
    let alt = tables[1]["storage_t"].as_f64().unwrap();
    assert!(
        close(base, c["baseline_total_t"].as_f64().unwrap()),
        "{base} vs {}",
        c["baseline_total_t"]
    );
    assert!(
        close(alt, c["alternate_total_t"].as_f64().unwrap()),
        "{alt} vs {}",
        c["alternate_total_t"]
    );
    assert!(close(
        tables[1]["mean_density_kg_m2"].as_f64().unwrap(),
        c["alternate_mean_density_kg_m2"].as_f64().unwrap()
    ));
}
