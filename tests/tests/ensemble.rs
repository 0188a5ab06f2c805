//! Seed ensembles (`flus run --ensemble N`, issue #17 item 2) on a study small enough to
//! check by hand: 30 x 30 cells of 100 m (1 ha each), three classes, two maps ten years
//! apart, two staged years, and a given suitability raster, so that the seed moves only
//! the CA's draws (not a network's training).
//!
//! Member m of an ensemble is the run with seed `ensemble.seeds[m]` of run.json: the
//! test runs those seeds one by one without `--ensemble`, reads their maps and computes
//! the frequencies and carbon summaries from them by hand, then compares them with the
//! ensemble's rasters and `carbon_ensemble.csv`; the ensemble on 1 and 2 workers gives
//! the same rasters.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flus_e2e::flus;
use flus_shared::grid::Grid;
use flus_shared::raster::{self, WriteOptions};

const SIDE: usize = 30;
const CELLS: usize = SIDE * SIDE;
const YEARS: [i32; 2] = [2020, 2030];
const MEMBERS: usize = 3;
/// Carbon density per class code 1, 2, 3 (t/ha = t per cell; the study's pools summed).
const DENSITY: [f64; 3] = [180.0, 55.0, 20.0];
const TIMEOUT: Duration = Duration::from_secs(600);

fn grid() -> Grid {
    flus_e2e::utm_grid(SIDE)
}

/// Forest 1 (cells 400..800 in 2000; 700..800 built in 2010), cropland 2, built-up 3.
fn map(year: i32) -> Vec<u8> {
    (0..CELLS)
        .map(|i| match i {
            0..400 => 2,
            400..700 => 1,
            700..800 if year == 2000 => 1,
            _ => 3,
        })
        .collect()
}

fn write_study(dir: &Path) -> PathBuf {
    let g = grid();
    for year in [2000, 2010] {
        raster::write_geotiff(
            &dir.join(format!("lu{year}.tif")),
            &g,
            &[&map(year)[..]],
            &WriteOptions::default(),
        )
        .unwrap();
    }
    // suitability: built-up rises down the rows, with a fixed pseudo-random field, so
    // the CA's draws (the seed) decide among many similar forest cells
    let noise = |i: usize| {
        let h = (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
            ^ 0xD1B5_4A32;
        (h % 1000) as f32 / 1000.0
    };
    let built: Vec<f32> = (0..CELLS)
        .map(|i| 0.3 + 0.4 * (i / SIDE) as f32 / SIDE as f32 * noise(i))
        .collect();
    let forest: Vec<f32> = built.iter().map(|b| (1.0 - b) * 0.6).collect();
    let crop: Vec<f32> = built
        .iter()
        .zip(&forest)
        .map(|(b, f)| 1.0 - b - f)
        .collect();
    raster::write_geotiff(
        &dir.join("suit.tif"),
        &g,
        &[&forest[..], &crop[..], &built[..]],
        &WriteOptions::default(),
    )
    .unwrap();
    let toml = r##"
[study]
name = "ensemble-by-hand"
seed = 5
output = "out"

[[classes]]
code = 1
name = "forest"
color = "#1b7837"
weight = 0.5
carbon = { above = 100.0, below = 20.0, soil = 50.0, dead = 10.0 }

[[classes]]
code = 2
name = "cropland"
color = "#f0c929"
weight = 0.5
carbon = { above = 10.0, below = 5.0, soil = 40.0, dead = 0.0 }

[[classes]]
code = 3
name = "built-up"
color = "#d7301f"
weight = 1.0
carbon = { above = 5.0, below = 0.0, soil = 15.0, dead = 0.0 }

[[landuse]]
year = 2000
path = "lu2000.tif"

[[landuse]]
year = 2010
path = "lu2010.tif"

[markov]
from = 2000
to = 2010
target_years = [2020, 2030]

[ca]
stall_iterations = 50

[ann]
suitability = "suit.tif"
validation_suitability = "suit.tif"

[[scenarios]]
name = "grow"
matrix = [
  [1, 0, 1],
  [0, 1, 0],
  [0, 0, 1],
]
"##;
    let path = dir.join("study.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn read_band<T: gdal::raster::GdalType + Copy + Default>(path: &Path, band: usize) -> Vec<T> {
    raster::read_band::<T>(path, band)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .1
}

fn run(study: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "run",
        study.to_str().unwrap(),
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = flus(&args, None, TIMEOUT);
    assert_eq!(o.code, Some(0), "{args:?}: {}", o.stderr);
    o.json()
}

/// Storage (t) of a map of class codes 1..=3 (1 ha cells).
fn storage(map: &[u8]) -> f64 {
    map.iter().map(|&c| DENSITY[c as usize - 1]).sum()
}

/// Mean, sample sd and the 2.5 / 97.5 percentiles (linear between order statistics)
/// of three values, written out for n = 3: h = 2p.
fn summary3(mut v: [f64; 3]) -> (f64, f64, f64, f64) {
    let mean = (v[0] + v[1] + v[2]) / 3.0;
    let sd = (((v[0] - mean).powi(2) + (v[1] - mean).powi(2) + (v[2] - mean).powi(2)) / 2.0).sqrt();
    v.sort_by(f64::total_cmp);
    // p = 0.025: h = 0.05 between v0 and v1; p = 0.975: h = 1.95 between v1 and v2
    let lo = v[0] + 0.05 * (v[1] - v[0]);
    let hi = v[1] + 0.95 * (v[2] - v[1]);
    (mean, sd, lo, hi)
}

#[test]
fn ensemble_frequencies_and_carbon_equal_hand_counts_over_the_member_runs_on_any_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path());
    let members = MEMBERS.to_string();
    let one = dir.path().join("one");
    let j = run(
        &study,
        &one,
        &["--ensemble", &members, "--local-workers", "1"],
    );
    let e = &j["ensemble"];
    assert_eq!(e["members"], MEMBERS);
    let seeds: Vec<u64> = e["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    // member 0 is the study's own seed; the others differ from it and each other
    assert_eq!(seeds[0], 5);
    assert!(seeds[1] != seeds[0] && seeds[2] != seeds[0] && seeds[1] != seeds[2]);

    // the member maps, each from a run of its seed alone
    let base = map(2010);
    let mut member_maps: Vec<Vec<Vec<u8>>> = Vec::new();
    for (m, seed) in seeds.iter().enumerate() {
        let out = dir.path().join(format!("member{m}"));
        let s = seed.to_string();
        run(
            &study,
            &out,
            &["--seed", &s, "--no-validation", "--local-workers", "1"],
        );
        member_maps.push(
            YEARS
                .iter()
                .map(|y| read_band::<u8>(&out.join(format!("landuse_grow_{y}.tif")), 1))
                .collect(),
        );
    }
    // member 0's maps are the ensemble run's own files
    for (s, y) in YEARS.iter().enumerate() {
        let own = read_band::<u8>(&one.join(format!("landuse_grow_{y}.tif")), 1);
        assert_eq!(own, member_maps[0][s], "member 0, {y}");
    }
    // the seeds change the maps (else the test below proves little)
    assert_ne!(member_maps[0][1], member_maps[1][1]);

    let csv = std::fs::read_to_string(one.join("carbon_ensemble.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "map,members,mean_t,sd_t,p2_5_t,p97_5_t,mean_change_t,p2_5_change_t,p97_5_change_t"
    );
    for (s, y) in YEARS.iter().enumerate() {
        let change = read_band::<f32>(&one.join(format!("change_frequency_grow_{y}.tif")), 1);
        let class_path = one.join(format!("class_frequency_grow_{y}.tif"));
        for i in 0..CELLS {
            let changed = member_maps.iter().filter(|m| m[s][i] != base[i]).count();
            assert_eq!(change[i], changed as f32 / MEMBERS as f32, "{y} cell {i}");
        }
        for code in 1..=3u8 {
            let band = read_band::<f32>(&class_path, code as usize);
            for i in 0..CELLS {
                let n = member_maps.iter().filter(|m| m[s][i] == code).count();
                assert_eq!(
                    band[i],
                    n as f32 / MEMBERS as f32,
                    "{y} class {code} cell {i}"
                );
            }
        }
        // carbon over the members, by hand
        let st = [0, 1, 2].map(|m| storage(&member_maps[m][s]));
        let (mean, sd, lo, hi) = summary3(st);
        let b = storage(&base);
        let (cmean, _, clo, chi) = summary3(st.map(|v| v - b));
        let want =
            format!("grow_{y},3,{mean:.3},{sd:.3},{lo:.3},{hi:.3},{cmean:.3},{clo:.3},{chi:.3}");
        assert_eq!(lines.next().unwrap(), want);
    }

    // the validation: OA, Kappa and FoM over the members; member 0 is the plain one
    let v = &j["validation"];
    let ve = &v["ensemble"];
    assert_eq!(ve["members"], MEMBERS);
    for key in ["oa", "kappa", "fom"] {
        let r = &ve[key];
        let vals: Vec<f64> = r["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(vals.len(), MEMBERS);
        let mean = vals.iter().sum::<f64>() / MEMBERS as f64;
        assert!((r["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{key}");
        let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            (r["min"].as_f64(), r["max"].as_f64()),
            (Some(min), Some(max))
        );
    }
    assert_eq!(
        ve["fom"]["members"][0], v["fom"],
        "member 0 is the plain validation"
    );

    // the report: the frequency maps, the carbon table and error bars on the trajectory
    let o = flus(&["report", one.to_str().unwrap()], None, TIMEOUT);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let html = std::fs::read_to_string(one.join("report.html")).unwrap();
    assert!(
        html.contains("<section id=\"ensemble\">"),
        "no ensemble section"
    );
    for y in YEARS {
        assert!(one
            .join(format!("report/change_frequency_grow_{y}.png"))
            .exists());
    }
    // one error bar (2.5th to 97.5th percentile) per staged year of the one scenario
    assert_eq!(
        html.matches("class=\"errorbar\"").count(),
        YEARS.len(),
        "error bars"
    );

    // the same rasters and table on 2 workers
    let two = dir.path().join("two");
    run(
        &study,
        &two,
        &["--ensemble", &members, "--local-workers", "2"],
    );
    for y in YEARS {
        for name in [
            format!("change_frequency_grow_{y}.tif"),
            format!("class_frequency_grow_{y}.tif"),
        ] {
            for band in 1..=(if name.starts_with("class") { 3 } else { 1 }) {
                assert_eq!(
                    read_band::<f32>(&one.join(&name), band),
                    read_band::<f32>(&two.join(&name), band),
                    "{name} band {band}"
                );
            }
        }
    }
    assert_eq!(
        std::fs::read_to_string(two.join("carbon_ensemble.csv")).unwrap(),
        csv
    );
}
