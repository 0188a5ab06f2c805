//! The outputs of a whole `flus run` checked against computations that do not share its
//! code path: the area table (Table 7) against class counts that GDAL's own histogram
//! reads back from the written GeoTIFFs, and the GWR tables (the driver analysis and
//! Table 10) against `flus gwr` run on the written point files. On a 300 x 300 window of
//! Ben Cat (all four classes, three scenarios) so that the run takes seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use flus_e2e::{crop, flus};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(600);

/// The study (window) and the folder of its finished `flus run`.
struct Run {
    study: PathBuf,
    out: PathBuf,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("whole-run-bencat-window");
        let study = crop::test_window(&dir);
        let out = dir.join("run");
        let o = flus(
            &[
                "run",
                study.to_str().unwrap(),
                "--local-workers",
                "2",
                "--json",
                "--out",
                out.to_str().unwrap(),
            ],
            None,
            TIMEOUT,
        );
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        assert_eq!(o.json()["completed"], true);
        Run { study, out }
    })
}

/// Rows of a CSV file written by flus (no quoted fields in these tables).
fn csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Cells per class code of a land-use GeoTIFF from GDAL's histogram (one bucket per
/// byte value), and the cell area (m2) from its geotransform.
fn gdal_class_counts(path: &Path) -> (BTreeMap<u8, u64>, f64) {
    let ds = gdal::Dataset::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let gt = ds.geo_transform().unwrap();
    let band = ds.rasterband(1).unwrap();
    let hist = band
        .histogram(-0.5, 255.5, 256, false, false)
        .unwrap_or_else(|e| panic!("{}: histogram: {e}", path.display()));
    let counts = hist
        .counts()
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(v, &n)| (v as u8, n))
        .collect();
    (counts, (gt[1] * gt[5] - gt[2] * gt[4]).abs())
}

#[test]
fn the_area_table_equals_class_counts_read_back_from_the_written_maps_by_gdal() {
    let r = run();
    let study = flus_shared::config::Study::load(&r.study).unwrap();
    let classes = &study.config.classes;
    let table = csv(&r.out.join("area_by_class.csv"));
    let header = &table[0];
    assert_eq!(header[..2], ["class", "ecological"]);
    assert_eq!(table.len(), classes.len() + 3, "{table:?}");
    // the base year and the three scenarios
    assert_eq!(header.len(), 2 + 4, "{header:?}");
    let mut totals = Vec::new();
    for (col, label) in header.iter().enumerate().skip(2) {
        let label = label.strip_suffix(" km2").expect("a map column");
        let tif = r.out.join(format!("landuse_{label}.tif"));
        let (counts, cell_m2) = gdal_class_counts(&tif);
        // the table prints km2 to 4 decimals: within half a unit of the last digit
        // (50 m2) of the area of the counted cells
        let same_area = |printed: &str, cells: u64, what: &str| {
            let km2: f64 = printed.parse().unwrap_or_else(|e| panic!("{what}: {e}"));
            let m2 = cells as f64 * cell_m2;
            assert!(
                (km2 * 1e6 - m2).abs() <= 50.0 + 1e-6,
                "{label}, {what}: the table says {printed} km2, GDAL counts {cells} cells = {m2} m2"
            );
        };
        let mut all = 0;
        let mut eco = 0;
        for (i, c) in classes.iter().enumerate() {
            let n = counts.get(&(c.code as u8)).copied().unwrap_or(0);
            assert_eq!(table[1 + i][0], c.name);
            same_area(&table[1 + i][col], n, &c.name);
            all += n;
            if c.ecological {
                eco += n;
            }
        }
        let k = classes.len();
        assert_eq!(table[1 + k][0], "ecological space");
        same_area(&table[1 + k][col], eco, "ecological space");
        assert_eq!(table[2 + k][0], "ecological share %");
        let share: f64 = table[2 + k][col].parse().unwrap();
        let exact = 100.0 * eco as f64 / all as f64;
        assert!(
            (share - exact).abs() <= 0.5e-4 + 1e-9,
            "{label}: ecological share {share} %, GDAL's counts give {exact} %"
        );
        // no class code beyond the study's classes in the map
        let known: u64 = counts
            .iter()
            .filter(|(v, _)| classes.iter().any(|c| c.code as u8 == **v))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(known, counts.values().sum::<u64>(), "{label}: {counts:?}");
        totals.push(all);
    }
    // demand is met exactly: every map holds the same number of class cells
    assert!(totals.windows(2).all(|w| w[0] == w[1]), "{totals:?}");
}

/// `flus gwr --json` on a points file of the run, y = `y`, x = `x`.
fn flus_gwr(points: &Path, y: &str, x: &[String]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let xs = x.join(",");
    let o = flus(
        &[
            "gwr",
            "--csv",
            points.to_str().unwrap(),
            "--y",
            y,
            "--x",
            &xs,
            "--coords",
            "x,y",
            "--kernel",
            "bisquare",
            "--json",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(o.code, Some(0), "{}: {}", points.display(), o.stderr);
    o.json()
}

#[test]
fn the_gwr_tables_equal_flus_gwr_run_on_the_written_point_files() {
    let r = run();
    let study = flus_shared::config::Study::load(&r.study).unwrap();
    let drivers: Vec<String> = study
        .config
        .drivers
        .iter()
        .map(|d| d.name.clone())
        .collect();
    let summary = csv(&r.out.join("gwr_summary.csv"));
    assert_eq!(
        summary[0][..7],
        [
            "target",
            "points",
            "bandwidth",
            "aicc",
            "r2",
            "adj_r2",
            "ols_r2"
        ]
    );
    let table10 = csv(&r.out.join("gwr_factor_r2.csv"));
    assert_eq!(
        table10[0],
        [
            "class",
            "factor",
            "bandwidth",
            "r2",
            "r2_intercept_only",
            "r2_null_p95",
            "p_value"
        ]
    );
    let mut checked = 0;
    let mut checked_classes = 0;
    for row in &summary[1..] {
        let target = &row[0];
        let (points, y) = match target.strip_prefix("carbon_") {
            Some(sc) => (
                r.out.join(format!("gwr_carbon_{sc}.csv")),
                format!("carbon_change_{sc}"),
            ),
            None => (
                r.out.join(format!("gwr_points_{target}.csv")),
                format!("suitability_{target}"),
            ),
        };
        let g = flus_gwr(&points, &y, &drivers);
        let f = |key: &str, digits: usize| {
            format!(
                "{:.*}",
                digits,
                g[key].as_f64().unwrap_or_else(|| panic!("{key}: {g}"))
            )
        };
        assert_eq!(row[1], g["n"].to_string(), "{target}: points");
        assert_eq!(
            row[2],
            format!("{}", g["bandwidth"].as_f64().unwrap()),
            "{target}"
        );
        assert_eq!(row[3], f("aicc", 4), "{target}: AICc");
        assert_eq!(row[4], f("r2", 6), "{target}: R2");
        assert_eq!(row[5], f("adj_r2", 6), "{target}: adjusted R2");
        checked += 1;
        // Table 10: the class's suitability on each single driver
        if table10.iter().any(|t| &t[0] == target) {
            for d in &drivers {
                let t10 = table10
                    .iter()
                    .find(|t| &t[0] == target && &t[1] == d)
                    .unwrap_or_else(|| panic!("Table 10 has no row {target}, {d}"));
                let g = flus_gwr(&points, &y, std::slice::from_ref(d));
                assert_eq!(
                    t10[2],
                    format!("{}", g["bandwidth"].as_f64().unwrap()),
                    "Table 10, {target} on {d}: bandwidth"
                );
                assert_eq!(
                    t10[3],
                    format!("{:.4}", g["r2"].as_f64().unwrap()),
                    "Table 10, {target} on {d}"
                );
                // p = (1 + k) / (99 + 1): a whole number of hundredths from 0.01 to 1
                let p: f64 = t10[6].parse().unwrap();
                let k = p * 100.0;
                assert!(
                    (1.0..=100.0).contains(&k) && (k - k.round()).abs() < 1e-9,
                    "{t10:?}"
                );
            }
            checked_classes += 1;
        }
    }
    // four classes and three scenarios' carbon change
    assert_eq!(checked, 7, "{summary:?}");
    assert_eq!(checked_classes, 4);
    assert_eq!(table10.len(), 1 + 4 * drivers.len());
}

/// Pixels per RGBA colour of a paletted PNG written by the report, read with GDAL
/// (palette index -> colour from its colour table).
fn png_colour_counts(path: &Path) -> BTreeMap<[u8; 4], u64> {
    let ds = gdal::Dataset::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let band = ds.rasterband(1).unwrap();
    let table = band.color_table().expect("a paletted PNG");
    let (w, h) = ds.raster_size();
    let px = band.read_as::<u8>((0, 0), (w, h), (w, h), None).unwrap();
    let mut out = BTreeMap::new();
    for &i in px.data() {
        let e = table.entry_as_rgb(i as usize).unwrap();
        *out.entry([e.r as u8, e.g as u8, e.b as u8, e.a as u8])
            .or_insert(0) += 1;
    }
    out
}

fn rgb(hex: &str) -> [u8; 4] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8, 255]
}

/// The report's figure-of-merit map: its pixels of the four colours (hits green, misses
/// orange, wrong hits purple, false alarms magenta, as the report's legend says) are
/// the hits, misses, wrong hits and false alarms `flus compare --json` counts on the
/// 2010 map, the 2020 map and the validation's simulated map (the window is 300 cells
/// wide: one pixel per cell).
#[test]
fn the_figure_of_merit_map_has_as_many_pixels_of_each_colour_as_flus_compare_counts() {
    let r = run();
    let dir = r.study.parent().unwrap();
    let o = flus(
        &[
            "compare",
            "--start",
            dir.join("landuse_2010.tif").to_str().unwrap(),
            "--truth",
            dir.join("landuse_2020.tif").to_str().unwrap(),
            "--sim",
            r.out.join("validation_2020.tif").to_str().unwrap(),
            "--json",
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let c = o.json();
    let colours = png_colour_counts(&r.out.join("report/validation_components_2020.png"));
    let count = |hex: &str| colours.get(&rgb(hex)).copied().unwrap_or(0);
    assert_eq!(
        count("#1b9e77"),
        c["hits"].as_u64().unwrap(),
        "hits {colours:?}"
    );
    assert_eq!(count("#d95f02"), c["misses"].as_u64().unwrap(), "misses");
    assert_eq!(
        count("#7570b3"),
        c["wrong_hits"].as_u64().unwrap(),
        "wrong hits"
    );
    assert_eq!(
        count("#e7298a"),
        c["false_alarms"].as_u64().unwrap(),
        "false alarms"
    );
    // the rest: persistence simulated as persistence, and transparent no data
    let compared = c["cells"].as_u64().unwrap();
    let changed: u64 = ["hits", "misses", "wrong_hits", "false_alarms"]
        .iter()
        .map(|k| c[*k].as_u64().unwrap())
        .sum();
    assert_eq!(count("#e8e8e8"), compared - changed);
    assert_eq!(colours.values().sum::<u64>(), 300 * 300);
    // the observed change map: one pixel per cell that changed 2010 -> 2020 in a class
    // colour, unchanged ones grey; changed = hits + misses + wrong hits
    let obs = png_colour_counts(&r.out.join("report/validation_change_observed_2020.png"));
    let grey = obs.get(&rgb("#e8e8e8")).copied().unwrap_or(0);
    let opaque: u64 = obs
        .iter()
        .filter(|(k, _)| k[3] == 255)
        .map(|(_, n)| n)
        .sum();
    let truth_changed = ["hits", "misses", "wrong_hits"]
        .iter()
        .map(|k| c[*k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(opaque - grey, truth_changed);
    let html = std::fs::read_to_string(r.out.join("report.html")).unwrap();
    for img in [
        "validation_components_2020.png",
        "validation_change_observed_2020.png",
        "validation_change_simulated_2020.png",
    ] {
        assert!(html.contains(&format!("src=\"report/{img}\"")), "{img}");
    }
}

/// The carbon storage maps share one scale from 0 to the largest cell: forest (379.2
/// t/ha, the densest class) is the ramp's darkest green and water (no pools) its palest
/// yellow, so their pixel counts are GDAL's class counts of the land-use maps.
#[test]
fn the_carbon_storage_maps_colour_forest_darkest_and_water_palest() {
    let r = run();
    let mut checked = 0;
    for label in [
        "2020",
        "urbanized_2060",
        "agricultural_2060",
        "ecological_2060",
    ] {
        let colours = png_colour_counts(&r.out.join(format!("report/carbon_storage_{label}.png")));
        let (counts, _) = gdal_class_counts(&r.out.join(format!("landuse_{label}.tif")));
        let forest = counts.get(&1).copied().unwrap_or(0);
        let water = counts.get(&2).copied().unwrap_or(0);
        assert!(forest > 0 && water > 0, "{label}: {counts:?}");
        assert_eq!(
            colours.get(&rgb("#006837")).copied().unwrap_or(0),
            forest,
            "{label}"
        );
        assert_eq!(
            colours.get(&rgb("#ffffcc")).copied().unwrap_or(0),
            water,
            "{label}"
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}

/// Each GWR coefficient map of the report is the band of `gwr_coef_<class>.tif`: its
/// transparent pixels are the band's no-data cells, and the largest absolute
/// coefficient takes an end of the diverging ramp (the scale is symmetric about 0).
#[test]
fn the_gwr_coefficient_maps_are_the_coefficient_rasters_bands() {
    let r = run();
    let study = flus_shared::config::Study::load(&r.study).unwrap();
    let mut params = vec!["Intercept".to_string()];
    params.extend(
        study
            .config
            .drivers
            .iter()
            .map(|d| format!("std_{}", d.name)),
    );
    for class in &study.config.classes {
        let tif = r.out.join(format!("gwr_coef_{}.tif", class.name));
        for (b, p) in params.iter().enumerate() {
            let (_, values) = flus_shared::raster::read_band::<f32>(&tif, b + 1).unwrap();
            let nodata = values.iter().filter(|&&v| v == f32::MIN).count() as u64;
            let png = r
                .out
                .join(format!("report/gwr_coef_{}_{p}.png", class.name));
            let colours = png_colour_counts(&png);
            let transparent: u64 = colours
                .iter()
                .filter(|(k, _)| k[3] == 0)
                .map(|(_, n)| n)
                .sum();
            assert_eq!(transparent, nodata, "{}", png.display());
            let ends = colours.get(&rgb("#8c510a")).copied().unwrap_or(0)
                + colours.get(&rgb("#01665e")).copied().unwrap_or(0);
            assert!(ends >= 1, "{}: {colours:?}", png.display());
        }
    }
}
