//! Large studies and shared data: `flus make-study` upsamples a study so that every
//! class count is multiplied by exactly f * f and `flus demand` accepts the result; a
//! run whose workers read their static layers from the shared files gives the same map
//! as the streamed run; run.json records the peak memory of every process. The source
//! is a 300 x 300 window of Ben Cat (same layers and config), so the runs take seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use flus_e2e::{crop, flus};

const TIMEOUT: Duration = Duration::from_secs(900);
/// The window of Ben Cat (column, row, size): its grid is W x H.
const WINDOW: (usize, usize, usize) = crop::TEST_WINDOW;
const W: u64 = WINDOW.2 as u64;
const H: u64 = WINDOW.2 as u64;

/// The study file of the Ben Cat window, cut once per test binary.
fn source() -> &'static Path {
    static STUDY: OnceLock<PathBuf> = OnceLock::new();
    STUDY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scale-bencat-window");
        crop::test_window(&dir)
    })
}

/// Cells per value of band 1 (read with GDAL directly, not with flus).
fn value_counts(path: &Path) -> BTreeMap<i64, u64> {
    let ds = gdal::Dataset::open(path).unwrap();
    let band = ds.rasterband(1).unwrap();
    let (w, h) = ds.raster_size();
    let buf = band.read_as::<f64>((0, 0), (w, h), (w, h), None).unwrap();
    let mut out = BTreeMap::new();
    for v in buf.data() {
        *out.entry(*v as i64).or_default() += 1;
    }
    out
}

#[test]
fn upsampling_by_two_multiplies_every_class_count_by_four_and_demand_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big");
    let cells = (4 * W * H).to_string();
    let src_study = source().to_str().unwrap();
    let r = flus(
        &[
            "make-study",
            "--from",
            src_study,
            "--cells",
            &cells,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["factor"], 2);
    assert_eq!(j["width"], 2 * W);
    assert_eq!(j["height"], 2 * H);
    assert_eq!(j["cells"], 4 * W * H);
    // hand check: each cell becomes a 2 x 2 block, so every count (nodata included) x 4
    let src = source().parent().unwrap();
    for year in [2000, 2010, 2020] {
        let name = format!("landuse_{year}.tif");
        let a = value_counts(&src.join(&name));
        let b = value_counts(&out.join(&name));
        let want: BTreeMap<i64, u64> = a.iter().map(|(&k, &v)| (k, 4 * v)).collect();
        assert_eq!(b, want, "{name}");
    }
    let study = j["study"].as_str().unwrap();
    let d = flus(&["demand", study, "--json"], None, TIMEOUT);
    assert_eq!(
        d.code,
        Some(0),
        "flus demand refuses the study: {}",
        d.stderr
    );
    let s = flus(&["demand", src_study, "--json"], None, TIMEOUT);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    let (big, small) = (d.json(), s.json());
    assert_eq!(
        big["valid_cells"].as_u64().unwrap(),
        4 * small["valid_cells"].as_u64().unwrap()
    );
    // transition counts x 4, so the same probabilities (the same quotients)
    let counts = |j: &serde_json::Value| -> Vec<u64> {
        j["transition_counts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
            .collect()
    };
    let want: Vec<u64> = counts(&small).iter().map(|c| 4 * c).collect();
    assert_eq!(counts(&big), want);
    assert_eq!(
        big["transition_probabilities"], small["transition_probabilities"],
        "class proportions of the upsampled study"
    );
}

fn run(study: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "run",
        study,
        "--scenario",
        "urbanized",
        "--no-validation",
        "--local-workers",
        "2",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = flus(&args, None, TIMEOUT);
    assert_eq!(r.code, Some(0), "{args:?}: {}", r.stderr);
    r.json()
}

#[test]
fn workers_reading_shared_files_give_the_streamed_map_and_memory_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // factor 1: the window with dist_road warped onto the land-use grid (workers read
    // layers as they are on disk)
    let gen = dir.path().join("bencat");
    let r = flus(
        &[
            "make-study",
            "--from",
            source().to_str().unwrap(),
            "--cells",
            &(W * H).to_string(),
            "--out",
            gen.to_str().unwrap(),
            "--json",
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let j = r.json();
    assert_eq!(
        (j["factor"].as_u64(), j["cells"].as_u64()),
        (Some(1), Some(W * H))
    );
    let study = j["study"].as_str().unwrap().to_string();
    let streamed = run(&study, &dir.path().join("streamed"), &[]);
    let shared = run(&study, &dir.path().join("shared"), &["--shared-data"]);
    let hash = |j: &serde_json::Value| j["scenarios"]["urbanized"]["map_sha256"].clone();
    assert!(hash(&streamed).is_string());
    assert_eq!(hash(&shared), hash(&streamed), "same map from shared files");
    assert_eq!(shared["shared_data"], true);
    // streamed: 1 class byte + 5 drivers x 4 bytes per core cell (plus halos);
    // shared: only the class windows
    let tb = |j: &serde_json::Value| {
        j["scenarios"]["urbanized"]["traffic"]["tile_bytes"]
            .as_u64()
            .unwrap()
    };
    assert!(tb(&streamed) >= 21 * W * H, "{}", tb(&streamed));
    assert!(
        tb(&shared) >= W * H && tb(&shared) < 2 * W * H,
        "{}",
        tb(&shared)
    );
    for j in [&streamed, &shared] {
        let m = &j["memory"];
        assert_eq!(m["grid_cells"], W * H);
        assert!(m["coordinator_peak_rss_bytes"].as_u64().unwrap() > 0);
        let workers = m["workers"].as_array().unwrap();
        assert_eq!(workers.len(), 2);
        for w in workers {
            let peak = w["peak_rss_bytes"].as_u64().unwrap();
            // a worker holds at least its half of the class windows
            assert!(peak > W * H / 2, "{w}");
            let per = w["peak_rss_bytes_per_cell"].as_f64().unwrap();
            assert!((per - peak as f64 / (W * H) as f64).abs() < 1e-9);
        }
        // all processes: the coordinator's peak plus both workers'
        let sum = m["coordinator_peak_rss_bytes"].as_u64().unwrap()
            + workers
                .iter()
                .map(|w| w["peak_rss_bytes"].as_u64().unwrap())
                .sum::<u64>();
        assert_eq!(m["all_processes_peak_rss_bytes"], sum);
        let per = m["all_processes_peak_rss_bytes_per_cell"].as_f64().unwrap();
        assert!((per - sum as f64 / (W * H) as f64).abs() < 1e-9);
    }
}
