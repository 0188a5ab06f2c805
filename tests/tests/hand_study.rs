//! A study small enough to work out by hand: 6 x 6 cells of 100 m (1 ha each), three
//! classes, two maps ten years apart. `flus run` on it must give exactly the Markov
//! demand, final map, carbon totals and area table computed below from the model's
//! rules (docs/design.md §2, §4, §7), not from an earlier run.
//!
//! ```text
//!  2000 (t0)        2010 (t1 = base)    2020 (forecast, by hand)
//!  F F F F F F      F F F F F F         F F F F F F
//!  F F F F F F      F F F F F F         F F F F F F
//!  P P P P P P      P P P P P P         P P P P P P
//!  F B B B B B      B B B B B B         B B B B B B
//!  B F B F B B      B F B F B B         B B B B B B
//!  F B B B B B      B B B B B B         B B B B B B
//! ```
//! F = forest (code 1, ecological), P = cropland (code 2), B = built-up (code 3).
//!
//! **Markov** (§2): 2000 -> 2010 moves 2 of 16 forest cells to built-up (column 0 of
//! rows 3 and 5), everything else stays: P(forest) = [14/16, 0, 2/16], P(cropland) =
//! [0, 1, 0], P(built-up) = [0, 0, 1]. Shares 2010 [14, 6, 16] / 36; one period on:
//! forest 14 x 14/16 = 12.25 cells, cropland 6, built-up 16 + 14 x 2/16 = 17.75. Largest
//! remainder: floors 12 + 6 + 17 = 35, the missing cell goes to built-up (0.75 > 0.25):
//! demand forest 12, cropland 6, built-up 18. Forest must lose two cells to built-up.
//!
//! **CA** (§4): only the two forest cells inside the built-up block (row 4, columns 1
//! and 3) are unrestricted. Each has 8 built-up neighbours and no forest neighbour, so
//! its own-class score is 0 and the roulette can only pick built-up; the gate
//! (U2 + 1/3) / (t + 1) < sp passes within a few iterations whatever the ANN's
//! suitability, and acceptance never refuses (each conversion brings both classes
//! closer to demand). Demand is met exactly when both have changed, and no other cell
//! can change: the final map is the 2010 map with those two cells built-up.
//!
//! **Carbon** (§7), pools in t/ha (above + below + soil + dead): forest 100 + 20 + 50 +
//! 10 = 180, cropland 10 + 5 + 40 + 0 = 55, built-up 5 + 0 + 15 + 0 = 20; one cell = 1 ha.
//! 2010: 14 x 180 + 6 x 55 + 16 x 20 = 3,170 t; 2020: 12 x 180 + 6 x 55 + 18 x 20 =
//! 2,850 t; change -320 t = -10.0946 %; mean density 3,170,000 kg / 360,000 m2 =
//! 8.805556 and 2,850,000 / 360,000 = 7.916667 kg/m2.
//!
//! **Table 7**: 1 ha = 0.01 km2: forest 0.14 -> 0.12, cropland 0.06, built-up 0.16 ->
//! 0.18 km2; ecological space (forest) 0.14 -> 0.12 km2, share 38.8889 % -> 33.3333 %.

use std::path::Path;
use std::time::Duration;

use flus_e2e::flus;
use flus_shared::grid::Grid;
use flus_shared::raster::{self, WriteOptions};

const F: u8 = 1;
const P: u8 = 2;
const B: u8 = 3;

const MAP_2010: [[u8; 6]; 6] = [
    [F, F, F, F, F, F],
    [F, F, F, F, F, F],
    [P, P, P, P, P, P],
    [B, B, B, B, B, B],
    [B, F, B, F, B, B],
    [B, B, B, B, B, B],
];

/// Cells (row, column) that are free to change; every other cell is restricted.
const FREE: [(usize, usize); 2] = [(4, 1), (4, 3)];

fn map_2000() -> [[u8; 6]; 6] {
    let mut m = MAP_2010;
    m[3][0] = F;
    m[5][0] = F;
    m
}

fn map_2020_by_hand() -> Vec<u8> {
    let mut m = MAP_2010;
    for (r, c) in FREE {
        m[r][c] = B;
    }
    m.concat()
}

fn grid() -> Grid {
    flus_e2e::utm_grid(6)
}

fn write<T: gdal::raster::GdalType + Copy>(path: &Path, grid: &Grid, values: &[T]) {
    raster::write_geotiff(path, grid, &[values], &WriteOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Writes the study on `grid` into `dir` and returns its config path.
fn write_study(dir: &Path, grid: &Grid) -> std::path::PathBuf {
    write(&dir.join("lu2000.tif"), grid, &map_2000().concat());
    write(&dir.join("lu2010.tif"), grid, &MAP_2010.concat());
    let mut free = vec![0u8; 36];
    for (r, c) in FREE {
        free[r * 6 + c] = 1;
    }
    write(&dir.join("free.tif"), grid, &free);
    // one driver that tells the classes apart (the free cells look like built-up)
    let driver: Vec<f32> = MAP_2010
        .concat()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v == B || FREE.contains(&(i / 6, i % 6)) {
                1.0
            } else if v == P {
                0.5
            } else {
                0.0
            }
        })
        .collect();
    write(&dir.join("driver.tif"), grid, &driver);
    let toml = r##"
[study]
name = "hand-worked"
seed = 7
output = "out"

[[classes]]
code = 1
name = "forest"
color = "#1b7837"
weight = 0.5
ecological = true
carbon = { above = 100.0, below = 20.0, soil = 50.0, dead = 10.0 }

[[classes]]
code = 2
name = "cropland"
color = "#f0c929"
weight = 0.5
ecological = false
carbon = { above = 10.0, below = 5.0, soil = 40.0, dead = 0.0 }

[[classes]]
code = 3
name = "built-up"
color = "#d7301f"
weight = 1.0
ecological = false
carbon = { above = 5.0, below = 0.0, soil = 15.0, dead = 0.0 }

[[landuse]]
year = 2000
path = "lu2000.tif"

[[landuse]]
year = 2010
path = "lu2010.tif"

[[drivers]]
name = "driver"
path = "driver.tif"

[[restrictions]]
name = "free"
path = "free.tif"

[markov]
from = 2000
to = 2010
target_year = 2020

[ca]
stall_iterations = 50

[ann]
sampling = "proportional"
sample_per_mille = 1000
epochs = 200

[gwr]
sample_points = 36

[[scenarios]]
name = "grow"
description = "forest may become built-up; nothing else changes"
matrix = [
  [1, 0, 1],
  [0, 1, 0],
  [0, 0, 1],
]
"##;
    let path = dir.join("study.toml");
    std::fs::write(&path, toml).expect("study.toml");
    path
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Class codes of a written map, read with GDAL directly.
fn read_codes(path: &Path) -> Vec<u8> {
    let ds = gdal::Dataset::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let band = ds.rasterband(1).unwrap();
    band.read_as::<u8>((0, 0), (6, 6), (6, 6), None)
        .unwrap()
        .data()
        .to_vec()
}

#[test]
fn a_hand_worked_study_gives_the_demand_map_carbon_and_area_table_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path(), &grid());
    let out = dir.path().join("run");
    let o = flus(
        &[
            "run",
            study.to_str().unwrap(),
            "--local-workers",
            "1",
            "--no-validation",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(300),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let j = o.json();
    let sc = &j["scenarios"]["grow"];
    assert_eq!(sc["demand_met"], true, "{sc}");

    // Markov: transitions 2000 -> 2010 and the demand of 2020
    assert_eq!(
        csv_rows(&out.join("transition_counts.csv")),
        [
            ["from \\ to", "forest", "cropland", "built-up"],
            ["forest", "14", "0", "2"],
            ["cropland", "0", "6", "0"],
            ["built-up", "0", "0", "14"],
        ]
    );
    assert_eq!(
        csv_rows(&out.join("demand.csv")),
        [
            ["class", "cells_2000", "cells_2010", "grow_2020"],
            ["forest", "16", "14", "12"],
            ["cropland", "6", "6", "6"],
            ["built-up", "14", "16", "18"],
        ]
    );

    // the final map
    assert_eq!(
        read_codes(&out.join("landuse_grow_2020.tif")),
        map_2020_by_hand(),
        "final map"
    );
    assert_eq!(
        read_codes(&out.join("landuse_2010.tif")),
        MAP_2010.concat(),
        "base map"
    );

    // Table 8: carbon storage
    let carbon = csv_rows(&out.join("carbon_storage.csv"));
    assert_eq!(
        carbon[0],
        [
            "map",
            "storage_t",
            "change_t",
            "change_percent",
            "mean_density_kg_m2",
            "area_m2"
        ]
    );
    assert_eq!(
        carbon[1][1..],
        ["3170.000", "0.000", "0.0000", "8.805556", "360000.0"]
    );
    assert_eq!(
        carbon[2][1..],
        ["2850.000", "-320.000", "-10.0946", "7.916667", "360000.0"]
    );

    // Table 7: area per class
    let area = csv_rows(&out.join("area_by_class.csv"));
    assert_eq!(area[0][..2], ["class", "ecological"]);
    assert_eq!(area.len(), 6, "3 classes, ecological space and share");
    let body: Vec<Vec<String>> = area[1..].iter().map(|r| r[..2].to_vec()).collect();
    assert_eq!(
        body,
        [
            ["forest", "true"],
            ["cropland", "false"],
            ["built-up", "false"],
            ["ecological space", ""],
            ["ecological share %", ""],
        ]
    );
    let values: Vec<Vec<&str>> = area[1..]
        .iter()
        .map(|r| r[2..].iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        values,
        [
            ["0.1400", "0.1200"],
            ["0.0600", "0.0600"],
            ["0.1600", "0.1800"],
            ["0.1400", "0.1200"],
            ["38.8889", "33.3333"],
        ]
    );

    // the carbon raster of the forecast sums to the same total, cell by cell
    let ds = gdal::Dataset::open(out.join("carbon_storage_grow_2020_t.tif")).unwrap();
    let cells: Vec<f32> = ds
        .rasterband(1)
        .unwrap()
        .read_as::<f32>((0, 0), (6, 6), (6, 6), None)
        .unwrap()
        .data()
        .to_vec();
    let by_hand: Vec<f32> = map_2020_by_hand()
        .iter()
        .map(|&c| match c {
            F => 180.0,
            P => 55.0,
            _ => 20.0,
        })
        .collect();
    assert_eq!(cells, by_hand, "carbon per cell (t)");
}

/// The same study on a WGS 84 grid of 0.01 degree (rows 21.06 N down to 21.00 N): every
/// area is the row's geodesic cell area. Areas of rows 0..5 from PROJ's geodesic library
/// (pyproj 3.7.2 / PROJ 9.5.1, `Geod(ellps="WGS84").polygon_area_perimeter` of the cell
/// outline, each parallel edge cut into 200 segments).
#[test]
fn the_hand_worked_study_on_a_lon_lat_grid_uses_the_geodesic_row_areas() {
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(4326).expect("EPSG:4326");
    let lonlat = Grid {
        width: 6,
        height: 6,
        geotransform: [108.0, 0.01, 0.0, 21.06, 0.0, -0.01],
        crs_wkt: srs.to_wkt().expect("WKT"),
    };
    let dir = tempfile::tempdir().unwrap();
    let study = write_study(dir.path(), &lonlat);
    let out = dir.path().join("run");
    let o = flus(
        &[
            "run",
            study.to_str().unwrap(),
            "--local-workers",
            "1",
            "--no-validation",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(300),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let rows = [
        1_150_714.587_959_658_4,
        1_150_790.081_604_251_6,
        1_150_865.540_654_180_6,
        1_150_940.965_106_392_3,
        1_151_016.354_958_266,
        1_151_091.710_209_112_6,
    ];
    // t/ha: forest 180, cropland 55, built-up 20; the forecast turns row 4's two forest
    // cells into built-up
    let (f, p, b) = (180.0, 55.0, 20.0);
    let per_row_2010 = [
        6.0 * f,
        6.0 * f,
        6.0 * p,
        6.0 * b,
        2.0 * f + 4.0 * b,
        6.0 * b,
    ];
    let mut per_row_2020 = per_row_2010;
    per_row_2020[4] = 6.0 * b;
    let total = |d: &[f64; 6]| -> f64 { d.iter().zip(rows).map(|(d, a)| d * a / 1e4).sum() };
    let area: f64 = rows.iter().map(|a| 6.0 * a).sum();
    let carbon = csv_rows(&out.join("carbon_storage.csv"));
    let num = |s: &str| -> f64 { s.parse().unwrap() };
    for (row, want) in [(1, total(&per_row_2010)), (2, total(&per_row_2020))] {
        let got = num(&carbon[row][1]);
        assert!((got - want).abs() < 0.002, "storage {got} vs {want}");
        let got_area = num(&carbon[row][5]);
        assert!((got_area - area).abs() < 0.1, "area {got_area} vs {area}");
    }
    // Table 7: forest 2010 = rows 0, 1 and two cells of row 4, in km2
    let t7 = csv_rows(&out.join("area_by_class.csv"));
    let forest = (6.0 * rows[0] + 6.0 * rows[1] + 2.0 * rows[4]) / 1e6;
    assert!(
        (num(&t7[1][2]) - forest).abs() < 1e-4,
        "{:?} vs {forest}",
        t7[1]
    );
    // the rasters: t per cell follows the row, t/ha is the density
    let read = |name: &str| -> Vec<f32> {
        let ds = gdal::Dataset::open(out.join(name)).unwrap();
        let band = ds.rasterband(1).unwrap();
        band.read_as::<f32>((0, 0), (6, 6), (6, 6), None)
            .unwrap()
            .data()
            .to_vec()
    };
    let t = read("carbon_storage_2010_t.tif");
    assert!((t[0] as f64 - f * rows[0] / 1e4).abs() < 1e-3, "{}", t[0]);
    assert!((t[35] as f64 - b * rows[5] / 1e4).abs() < 1e-3, "{}", t[35]);
    assert_eq!(read("carbon_storage_2010_t_ha.tif")[0], 180.0);
}
