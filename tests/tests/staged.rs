//! Staged years (`[markov] target_years`, issue #17 item 1) on a study worked out by hand:
//! 30 x 30 cells of 100 m (1 ha each), three classes, two maps ten years apart.
//!
//! ```text
//!  cells (row-major)   2000 (t0)    2010 (t1 = base)
//!  0 .. 400            cropland     cropland
//!  400 .. 700          forest       forest
//!  700 .. 800          forest       built-up
//!  800 .. 900          built-up     built-up
//! ```
//!
//! **Markov** (docs/design.md §2): forest 400 -> 300 forest + 100 built-up, the rest
//! stays: P(forest) = [3/4, 0, 1/4], cropland and built-up keep every cell. Base shares
//! [300, 400, 200] / 900; forest after m steps 300 x (3/4)^m, built-up the rest of the
//! 500 non-cropland cells, largest remainder:
//! - 2020 (m = 1): forest 225, built-up 275;
//! - 2030 (m = 2): 168.75 and 331.25, floors 168 + 400 + 331 = 899, the missing cell to
//!   forest (0.75 > 0.25): forest 169, built-up 331;
//! - 2040 (m = 3): 126.5625 and 373.4375 -> forest 127, built-up 373.
//!
//! **CA**: the scenario allows forest -> built-up only, so a stage that meets its demand
//! turns exactly the demand's difference of forest cells of the map it starts from into
//! built-up: 75, then 56, then 42 cells.
//!
//! **Transition mode** (`[ca] allocation = "transitions"`): a stage's quota is the
//! Markov row of each class of the map it starts from, projected over the stage's own
//! ten years (one step), largest remainder per row. Forest -> built-up: 2020 from 300
//! forest cells, 300 x 1/4 = 75; 2030 from 225, [168.75, 56.25] -> floors 168 + 56 =
//! 224, the missing cell to forest (0.75 > 0.25): 56; 2040 from 169, [126.75, 42.25]
//! -> 42. Built-up 275, 331, 373: a stage projected over two or three steps from its
//! own start map would ask 98 or 90 cells in 2030 instead.
//!
//! **Carbon** (t/ha = t per cell): forest 180, cropland 55, built-up 20; cropland's
//! 400 x 55 = 22,000 t every year. 2010: 300 x 180 + 22,000 + 200 x 20 = 80,000 t;
//! 2020: 225 x 180 + 22,000 + 275 x 20 = 68,000 t; 2030: 169 x 180 + 22,000 + 331 x 20
//! = 59,040 t; 2040: 127 x 180 + 22,000 + 373 x 20 = 52,320 t.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flus_e2e::hold::{held_at, Holds};
use flus_e2e::{flus, flus_watch, signal, start_worker, TEST_TOKEN};
use flus_shared::grid::Grid;
use flus_shared::raster::{self, WriteOptions};

const SIDE: usize = 30;
const CELLS: usize = SIDE * SIDE;
const F: u8 = 1;
const P: u8 = 2;
const B: u8 = 3;
const YEARS: [i32; 3] = [2020, 2030, 2040];
/// Built-up cells at the base year and at every staged year (by hand, above).
const BUILT: [usize; 4] = [200, 275, 331, 373];
/// Total carbon storage, t: base year, then every staged year (by hand, above).
const STORAGE_T: [f64; 4] = [80_000.0, 68_000.0, 59_040.0, 52_320.0];
const TIMEOUT: Duration = Duration::from_secs(600);

fn map(year: i32) -> Vec<u8> {
    (0..CELLS)
        .map(|i| match i {
            0..400 => P,
            400..700 => F,
            700..800 if year == 2000 => F,
            _ => B,
        })
        .collect()
}

fn grid() -> Grid {
    flus_e2e::utm_grid(SIDE)
}

fn write<T: gdal::raster::GdalType + Copy>(path: &Path, values: &[T]) {
    raster::write_geotiff(path, &grid(), &[values], &WriteOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Writes the study into `dir` with the `[markov]` target line `target` (e.g.
/// `target_years = [2020, 2030]`) and returns its config path.
fn write_study(dir: &Path, target: &str) -> PathBuf {
    write(&dir.join("lu2000.tif"), &map(2000));
    write(&dir.join("lu2010.tif"), &map(2010));
    // a gradient and a fixed pseudo-random field: the CA's choice among the forest
    // cells is not settled by the suitability alone
    let row: Vec<f32> = (0..CELLS)
        .map(|i| (i / SIDE) as f32 / SIDE as f32)
        .collect();
    let noise: Vec<f32> = (0..CELLS as u64)
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ 0xD1B5_4A32;
            (h % 1000) as f32 / 1000.0
        })
        .collect();
    write(&dir.join("row.tif"), &row);
    write(&dir.join("noise.tif"), &noise);
    let toml = format!(
        r##"
[study]
name = "staged-by-hand"
seed = 11
output = "out"

[[classes]]
code = 1
name = "forest"
color = "#1b7837"
weight = 0.5
ecological = true
carbon = {{ above = 100.0, below = 20.0, soil = 50.0, dead = 10.0 }}

[[classes]]
code = 2
name = "cropland"
color = "#f0c929"
weight = 0.5
carbon = {{ above = 10.0, below = 5.0, soil = 40.0, dead = 0.0 }}

[[classes]]
code = 3
name = "built-up"
color = "#d7301f"
weight = 1.0
carbon = {{ above = 5.0, below = 0.0, soil = 15.0, dead = 0.0 }}

[[landuse]]
year = 2000
path = "lu2000.tif"

[[landuse]]
year = 2010
path = "lu2010.tif"

[[drivers]]
name = "row"
path = "row.tif"

[[drivers]]
name = "noise"
path = "noise.tif"

[markov]
from = 2000
to = 2010
{target}

[ca]
stall_iterations = 50

[ann]
epochs = 50

[gwr]
sample_points = 200

[[scenarios]]
name = "grow"
matrix = [
  [1, 0, 1],
  [0, 1, 0],
  [0, 0, 1],
]
"##
    );
    let path = dir.join("study.toml");
    std::fs::write(&path, toml).expect("study.toml");
    path
}

fn staged_target() -> String {
    format!("target_years = {YEARS:?}")
}

/// Class codes of a written map, read with GDAL.
fn read_codes(path: &Path) -> Vec<u8> {
    let ds = gdal::Dataset::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ds.rasterband(1)
        .unwrap()
        .read_as::<u8>((0, 0), (SIDE, SIDE), (SIDE, SIDE), None)
        .unwrap()
        .data()
        .to_vec()
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn run_args<'a>(study: &'a Path, out: &'a Path, workers: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        study.to_str().unwrap(),
        "--no-validation",
        "--json",
        "--out",
        out.to_str().unwrap(),
        "--local-workers",
        workers,
    ]
}

#[test]
fn staged_years_run_from_the_previous_stage_and_the_first_equals_a_direct_run() {
    let dir = tempfile::tempdir().unwrap();
    let staged_dir = dir.path().join("staged");
    std::fs::create_dir_all(&staged_dir).unwrap();
    let study = write_study(&staged_dir, &staged_target());
    let out = staged_dir.join("run");
    let o = flus(&run_args(&study, &out, "1"), None, TIMEOUT);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let j = o.json();
    assert_eq!(j["target_years"], serde_json::json!(YEARS));
    assert_eq!(j["target_year"], 2040);

    // the demand of every stage: the Markov shares at its year (by hand)
    assert_eq!(
        csv_rows(&out.join("demand.csv")),
        [
            [
                "class",
                "cells_2000",
                "cells_2010",
                "grow_2020",
                "grow_2030",
                "grow_2040"
            ],
            ["forest", "400", "300", "225", "169", "127"],
            ["cropland", "400", "400", "400", "400", "400"],
            ["built-up", "100", "200", "275", "331", "373"],
        ]
    );

    // every stage starts from the previous stage's map: its changes are exactly the
    // demand's difference of forest cells of that map turned built-up
    let mut previous = map(2010);
    let stages = j["scenarios"]["grow"]["stages"].as_array().unwrap().clone();
    assert_eq!(stages.len(), 3);
    for (s, year) in YEARS.iter().enumerate() {
        assert_eq!(stages[s]["year"], *year);
        assert_eq!(stages[s]["demand_met"], true, "{}", stages[s]);
        let m = read_codes(&out.join(format!("landuse_grow_{year}.tif")));
        let built = m.iter().filter(|&&c| c == B).count();
        assert_eq!(built, BUILT[s + 1], "{year}: built-up cells");
        let changed: Vec<usize> = (0..CELLS).filter(|&i| m[i] != previous[i]).collect();
        assert_eq!(
            changed.len(),
            BUILT[s + 1] - BUILT[s],
            "{year}: cells changed against the previous stage's map"
        );
        for &i in &changed {
            assert_eq!((previous[i], m[i]), (F, B), "{year}: cell {i}");
        }
        if s > 0 {
            assert_eq!(
                stages[s]["start_map_sha256"],
                stages[s - 1]["map_sha256"],
                "{year}"
            );
            assert_ne!(stages[s]["stream"], stages[s - 1]["stream"], "own draws");
        }
        previous = m;
    }

    // a direct run to 2020 (one target_year) gives the staged run's 2020 map, on two
    // workers where the staged run had one
    let direct_dir = dir.path().join("direct");
    std::fs::create_dir_all(&direct_dir).unwrap();
    let direct = write_study(&direct_dir, "target_year = 2020");
    let direct_out = direct_dir.join("run");
    let d = flus(&run_args(&direct, &direct_out, "2"), None, TIMEOUT);
    assert_eq!(d.code, Some(0), "{}", d.stderr);
    let dj = d.json();
    assert_eq!(
        read_codes(&direct_out.join("landuse_grow_2020.tif")),
        read_codes(&out.join("landuse_grow_2020.tif")),
        "the staged run's 2020 map equals the direct run's"
    );
    assert_eq!(
        dj["scenarios"]["grow"]["map_sha256"],
        stages[0]["map_sha256"]
    );

    // the trajectory rows of carbon_storage.csv: the per-class carbon by hand
    let carbon = csv_rows(&out.join("carbon_storage.csv"));
    let labels: Vec<&str> = carbon[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(labels, ["2010", "grow_2020", "grow_2030", "grow_2040"]);
    for (row, want) in carbon[1..].iter().zip(STORAGE_T) {
        assert_eq!(row[1], format!("{want:.3}"), "{}", row[0]);
        assert_eq!(row[2], format!("{:.3}", want - STORAGE_T[0]), "{}", row[0]);
    }
    // area_by_class.csv: a column per stage, km2 = cells x 0.01
    let area = csv_rows(&out.join("area_by_class.csv"));
    assert_eq!(area[0].len(), 2 + 4, "{:?}", area[0]);
    let built_row = area.iter().find(|r| r[0] == "built-up").unwrap();
    let want: Vec<String> = BUILT
        .iter()
        .map(|&n| format!("{:.4}", n as f64 * 0.01))
        .collect();
    assert_eq!(built_row[2..], want[..]);
    // the stages' carbon rasters sum to the same totals
    for (s, year) in YEARS.iter().enumerate() {
        let ds =
            gdal::Dataset::open(out.join(format!("carbon_storage_grow_{year}_t.tif"))).unwrap();
        let sum: f64 = ds
            .rasterband(1)
            .unwrap()
            .read_as::<f32>((0, 0), (SIDE, SIDE), (SIDE, SIDE), None)
            .unwrap()
            .data()
            .iter()
            .map(|&v| v as f64)
            .sum();
        assert!((sum - STORAGE_T[s + 1]).abs() < 1e-6, "{year}: {sum}");
    }

    // the report: the trajectory chart (kt C by hand) and a strip of maps per scenario
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("<h3>Carbon trajectory</h3>"));
    for (year, kt) in [
        (2010, "80.0"),
        (2020, "68.0"),
        (2030, "59.0"),
        (2040, "52.3"),
    ] {
        let point = format!("<title>grow {year}: {kt} storage, kt C</title>");
        assert!(report.contains(&point), "{point}");
    }
    assert!(report.contains("<div class=\"maps strip\">"));
    for year in YEARS {
        assert!(out.join(format!("report/landuse_grow_{year}.png")).exists());
    }
}

#[test]
fn staged_years_in_transition_mode_take_each_stage_s_quotas_from_its_start_map() {
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path(), &staged_target());
    let text = std::fs::read_to_string(&study).unwrap();
    std::fs::write(
        &study,
        text.replace("[ca]\n", "[ca]\nallocation = \"transitions\"\n"),
    )
    .unwrap();
    let out = dir.path().join("run");
    let o = flus(&run_args(&study, &out, "2"), None, TIMEOUT);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let j = o.json();
    let stages = j["scenarios"]["grow"]["stages"].as_array().unwrap().clone();
    assert_eq!(stages.len(), YEARS.len());
    // forest -> built-up per stage, by hand in the module's comment
    let quota = [75u64, 56, 42];
    let mut previous = map(2010);
    for (s, year) in YEARS.iter().enumerate() {
        let pairs = stages[s]["transitions"].as_object().unwrap();
        assert_eq!(pairs.len(), 1, "{year}: {pairs:?}");
        let pair = &pairs["forest -> built-up"];
        assert_eq!(pair["quota"], quota[s], "{year}");
        assert_eq!(pair["simulated"], quota[s], "{year}");
        assert_eq!(stages[s]["demand_met"], true, "{}", stages[s]);
        let m = read_codes(&out.join(format!("landuse_grow_{year}.tif")));
        assert_eq!(
            m.iter().filter(|&&c| c == B).count(),
            BUILT[s + 1],
            "{year}"
        );
        let changed: Vec<usize> = (0..CELLS).filter(|&i| m[i] != previous[i]).collect();
        assert_eq!(changed.len() as u64, quota[s], "{year}");
        assert!(
            changed.iter().all(|&i| (previous[i], m[i]) == (F, B)),
            "{year}"
        );
        previous = m;
    }
}

/// A chain study for transition mode: the same grid, classes and drivers as
/// [`write_study`], with maps whose cells are mixed by a fixed hash and a scenario that
/// allows forest -> cropland and cropland -> built-up only (neighbourhood 5 x 5).
///
/// ```text
///  cells (by hash order)  2000      2010
///  first 265              built-up  built-up
///  next 10                cropland  built-up
///  next 125               forest    cropland
///  last 500               forest    forest
/// ```
///
/// Markov rows: forest [500, 125, 0] / 625 = [0.8, 0.2, 0], cropland [0, 0, 1],
/// built-up stays. Quotas, each stage from the map it starts from over one step:
/// 2020 from forest 500 and cropland 125: forest -> cropland 100, cropland -> built-up
/// 125 (every cropland cell of 2010); 2030 from forest 400 and cropland 100 (the cells
/// that were forest in 2010): forest -> cropland 80, cropland -> built-up 100. So every
/// 2030 cropland -> built-up cell changed in 2020 too: a rule of "once per run" counted
/// from the session's map (2010) instead of the stage's start would refuse all of them.
fn write_chain_study(dir: &Path) -> PathBuf {
    let study = write_study(dir, "target_years = [2020, 2030]");
    let mut order: Vec<usize> = (0..CELLS).collect();
    order.sort_by_key(|&i| {
        (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17)
    });
    let (mut y2000, mut y2010) = (vec![F; CELLS], vec![F; CELLS]);
    for (rank, &i) in order.iter().enumerate() {
        (y2000[i], y2010[i]) = match rank {
            0..265 => (B, B),
            265..275 => (P, B),
            275..400 => (F, P),
            _ => (F, F),
        };
    }
    write(&dir.join("lu2000.tif"), &y2000);
    write(&dir.join("lu2010.tif"), &y2010);
    let text = std::fs::read_to_string(&study).unwrap();
    let chain = text
        .replace(
            "  [1, 0, 1],\n  [0, 1, 0],\n",
            "  [1, 1, 0],\n  [0, 1, 1],\n",
        )
        .replace(
            "[ca]\n",
            "[ca]\nallocation = \"transitions\"\nneighbourhood = 5\n",
        );
    assert_ne!(chain, text);
    std::fs::write(&study, chain).unwrap();
    study
}

#[test]
fn a_later_stage_in_transition_mode_may_change_cells_the_earlier_stage_changed() {
    let dir = tempfile::tempdir().unwrap();
    let study = write_chain_study(dir.path());
    let out = dir.path().join("run");
    let o = flus(&run_args(&study, &out, "2"), None, TIMEOUT);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let j = o.json();
    let stages = j["scenarios"]["grow"]["stages"].as_array().unwrap().clone();
    // (forest -> cropland, cropland -> built-up) per stage, by hand above
    let quotas = [(2020, 100u64, 125u64), (2030, 80, 100)];
    let session_start = read_codes(&dir.path().join("lu2010.tif"));
    let mut previous = session_start.clone();
    for (s, &(year, to_crop, to_built)) in quotas.iter().enumerate() {
        let pairs = stages[s]["transitions"].as_object().unwrap();
        for (pair, q) in [
            ("forest -> cropland", to_crop),
            ("cropland -> built-up", to_built),
        ] {
            assert_eq!(pairs[pair]["quota"], q, "{year} {pair}");
            assert_eq!(pairs[pair]["simulated"], q, "{year} {pair}");
        }
        assert_eq!(pairs.len(), 2, "{year}: {pairs:?}");
        let m = read_codes(&out.join(format!("landuse_grow_{year}.tif")));
        let moved = |from: u8, to: u8| {
            (0..CELLS)
                .filter(|&i| (previous[i], m[i]) == (from, to))
                .collect::<Vec<_>>()
        };
        assert_eq!(moved(F, P).len() as u64, to_crop, "{year}");
        let built = moved(P, B);
        assert_eq!(built.len() as u64, to_built, "{year}");
        if year == 2030 {
            // each of them was forest at the session's start and changed in 2020 too
            assert!(built.iter().all(|&i| session_start[i] == F), "{year}");
        }
        previous = m;
    }
}

#[test]
fn a_staged_run_killed_in_its_second_stage_resumes_there_with_the_same_maps() {
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path(), &staged_target());
    let w = start_worker(&[]);
    let addr = w.addr.clone();
    let run = |out: &Path, extra: &[&str], holds: &Holds, act: &mut dyn FnMut(&str, u32)| {
        let mut args = vec![
            "run",
            study.to_str().unwrap(),
            "--no-validation",
            "--json",
            "--out",
            out.to_str().unwrap(),
            "--workers",
            &addr,
            "--checkpoint-every",
            "1",
        ];
        args.extend_from_slice(extra);
        flus_watch(
            &args,
            &[("FLUS_TOKEN", TEST_TOKEN), holds.env()],
            TIMEOUT,
            act,
        )
    };
    let calm_out = dir.path().join("calm");
    let calm = run(&calm_out, &[], &Holds::new(), &mut |_, _| {});
    assert_eq!(calm.code, Some(0), "{}", calm.stderr);
    let calm = calm.json();

    // killed after iteration 3 of the 2030 stage: the checkpoint of iteration 1 is
    // stored (storing iteration 2's waited for it)
    let out = dir.path().join("killed");
    let holds = Holds::new();
    let point = "grow_2030-iteration-3";
    holds.arm(point);
    let mut killed = false;
    let first = run(&out, &[], &holds, &mut |line, pid| {
        if !killed && held_at(line, point) {
            signal(pid, libc::SIGKILL);
            killed = true;
        }
    });
    assert!(killed, "never held at {point}:\n{}", first.stderr);
    assert!(out.join("checkpoints/grow_2030.ckpt").exists());
    assert!(
        !out.join("checkpoints/grow_2020.ckpt").exists(),
        "2020 finished"
    );
    let second = run(&out, &["--resume"], &Holds::new(), &mut |_, _| {});
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert!(
        second
            .stderr
            .lines()
            .any(|l| l.contains("resuming from checkpoint") && l.contains("grow_2030")),
        "{}",
        second.stderr
    );
    let j = second.json();
    for s in 0..YEARS.len() {
        assert_eq!(
            j["scenarios"]["grow"]["stages"][s]["map_sha256"],
            calm["scenarios"]["grow"]["stages"][s]["map_sha256"],
            "{}",
            YEARS[s]
        );
    }
    assert!(
        !out.join("checkpoints").exists(),
        "finished: checkpoints cleared"
    );
}
