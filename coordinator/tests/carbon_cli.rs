//! `flus carbon` end to end: the binary on small georeferenced rasters written here,
//! with expected figures computed by hand in the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flus_shared::raster::{read_band, write_geotiff, WriteOptions};
use flus_shared::Grid;
use serde_json::Value;

fn flus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flus"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("flus runs")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "flus failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn utm48() -> String {
    gdal::spatial_ref::SpatialRef::from_epsg(32648)
        .unwrap()
        .to_wkt()
        .unwrap()
}

fn write_u8(path: &Path, grid: &Grid, data: &[u8], nodata: Option<f64>) {
    write_geotiff(
        path,
        grid,
        &[data],
        &WriteOptions {
            nodata,
            ..Default::default()
        },
    )
    .unwrap();
}

/// InVEST's own pools table (natcap.invest tests/test_carbon.py): densities 86, 28, 8 t/ha.
fn invest_pools(dir: &Path) -> PathBuf {
    let p = dir.join("pools.csv");
    std::fs::write(
        &p,
        "C_above,C_below,C_soil,C_dead,lucode,LULC_Name\n\
         15,10,60,1,1,\"lulc code 1\"\n5,3,20,0,2,\"lulc code 2\"\n2,1,5,0,3,\"lulc code 3\"\n",
    )
    .unwrap();
    p
}

/// 4 x 3 cells of 30 m (0.09 ha).
fn grid30() -> Grid {
    Grid {
        width: 4,
        height: 3,
        geotransform: [600000.0, 30.0, 0.0, 1200090.0, 0.0, -30.0],
        crs_wkt: utm48(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn near(v: &Value, expected: f64) -> bool {
    let x = v.as_f64().unwrap_or(f64::NAN);
    (x - expected).abs() <= 1e-9 * expected.abs().max(1.0)
}

#[test]
fn carbon_json_totals_change_and_npv_match_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let pools = invest_pools(dir.path());
    let (bp, ap) = (dir.path().join("bas.tif"), dir.path().join("alt.tif"));
    write_u8(
        &bp,
        &grid30(),
        &[1, 1, 2, 3, 1, 2, 2, 3, 3, 3, 1, 1],
        Some(0.0),
    );
    write_u8(
        &ap,
        &grid30(),
        &[1, 2, 2, 3, 2, 2, 3, 3, 3, 3, 3, 1],
        Some(0.0),
    );
    let out = dir.path().join("out");
    let j = json_of(&flus(&[
        "carbon",
        "--baseline",
        s(&bp),
        "--alternate",
        s(&ap),
        "--pools",
        s(&pools),
        "--price",
        "50",
        "--discount-rate",
        "5",
        "--rate-change",
        "50",
        "--years-baseline",
        "2010",
        "--years-alternate",
        "2012",
        "--out",
        s(&out),
        "--json",
    ]));
    // Baseline 5, 3, 4 cells: 86*5*0.09 + 28*3*0.09 + 8*4*0.09 = 38.7 + 7.56 + 2.88 = 49.14 t.
    // Alternate 2, 4, 6 cells: 15.48 + 10.08 + 4.32 = 29.88 t. Change -19.26 t.
    assert!(
        near(&j["baseline_total_t"], 49.14),
        "{}",
        j["baseline_total_t"]
    );
    assert!(near(&j["alternate_total_t"], 29.88));
    assert!(near(&j["change_t"], -19.26));
    assert_eq!(j["area_m2"], 10800.0);
    // 49.14 t * 1000 / 10800 m2 = 4.55 kg/m2; 29.88e3 / 10800 = 2.7666...
    assert!(near(&j["baseline_mean_density_kg_m2"], 4.55));
    assert!(near(&j["alternate_mean_density_kg_m2"], 29880.0 / 10800.0));
    assert_eq!(j["by_class"]["1"]["cells"], 5);
    assert_eq!(j["by_class"]["1"]["area_m2"], 4500.0);
    assert!(near(&j["by_class"]["1"]["baseline_t"], 38.7));
    assert!(near(&j["by_class"]["3"]["alternate_t"], 4.32));
    // InVEST constant for 2010 -> 2012, 50, 5 %, 50 %: 25 * (1 + 1/1.575) = 40.873015873...
    let k = 25.0 * (1.0 + 1.0 / 1.575);
    assert!(near(&j["valuation"]["valuation_constant"], k));
    assert!(near(&j["npv_total"], -19.26 * k));
    assert_eq!(j["missing"]["cells"], 0);
    assert!(j.get("by_zone").is_none());
    // The change raster: cell 1 goes 1 -> 2: (28 - 86) * 0.09 = -5.22 t; CRS and grid kept.
    let (info, change) = read_band::<f32>(&out.join("carbon_change_t.tif"), 1).unwrap();
    assert_eq!(change[1], -5.22f32);
    assert_eq!(info.grid.geotransform, grid30().geotransform);
    assert!(flus_shared::raster::same_crs(&info.grid.crs_wkt, &utm48()));
    assert_eq!(info.nodata, Some(f32::MIN as f64));
    assert_eq!(info.data_type, "Float32");
    let (_, tha) = read_band::<f32>(&out.join("carbon_baseline_t_ha.tif"), 1).unwrap();
    assert_eq!(tha[3], 8.0);
    let (_, npv) = read_band::<f32>(&out.join("carbon_npv.tif"), 1).unwrap();
    assert!((npv[1] as f64 - -5.22 * k).abs() < 1e-4);
    for f in [
        "carbon_baseline_t.tif",
        "carbon_alternate_t.tif",
        "carbon_alternate_t_ha.tif",
        "carbon_by_class.csv",
        "carbon_summary.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("carbon_by_class.csv")).unwrap();
    assert!(csv.starts_with("lucode,name,density_t_ha,"), "{csv}");
    assert!(csv.contains("\n1,lulc code 1,86,5,4500,"), "{csv}");
}

/// 4 x 2 cells of 10 m (0.01 ha) at (500000, 1000020). Land use 1 2 3 nd / 1 1 2 3.
fn tiny(dir: &Path) -> (PathBuf, Grid) {
    let g = Grid {
        width: 4,
        height: 2,
        geotransform: [500000.0, 10.0, 0.0, 1000020.0, 0.0, -10.0],
        crs_wkt: utm48(),
    };
    let p = dir.join("lu.tif");
    write_u8(&p, &g, &[1, 2, 3, 0, 1, 1, 2, 3], Some(0.0));
    (p, g)
}

#[test]
fn carbon_by_raster_and_polygon_zones_match_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let pools = invest_pools(dir.path());
    let (lu, g) = tiny(dir.path());
    let zr = dir.path().join("zones.tif");
    write_u8(&zr, &g, &[10, 10, 20, 20, 10, 10, 20, 255], Some(255.0));
    let j = json_of(&flus(&[
        "carbon",
        "--baseline",
        s(&lu),
        "--pools",
        s(&pools),
        "--zones",
        s(&zr),
        "--json",
    ]));
    // Zone 10: classes 1, 2, 1, 1 -> (86*3 + 28) * 0.01 = 2.86 t over 400 m2 (7.15 kg/m2).
    // Zone 20: classes 3, 2 -> (8 + 28) * 0.01 = 0.36 t over 200 m2 (1.8 kg/m2).
    assert!(near(&j["by_zone"]["10"]["baseline_t"], 2.86));
    assert_eq!(j["by_zone"]["10"]["area_m2"], 400.0);
    assert!(near(
        &j["by_zone"]["10"]["baseline_mean_density_kg_m2"],
        7.15
    ));
    assert!(near(&j["by_zone"]["20"]["baseline_t"], 0.36));
    assert!(near(
        &j["by_zone"]["20"]["baseline_mean_density_kg_m2"],
        1.8
    ));
    assert!(near(&j["baseline_total_t"], 3.22));
    assert_eq!(j["alternate_total_t"], Value::Null);
    assert_eq!(j["missing"]["nodata_cells"], 1);
    assert_eq!(j["missing"]["outside_zones_cells"], 1);
    assert_eq!(j["missing"]["cells"], 2);

    let gj = dir.path().join("zones.geojson");
    std::fs::write(
        &gj,
        r#"{"type": "FeatureCollection",
 "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32648"}},
 "features": [
  {"type": "Feature", "properties": {"name": "west"},
   "geometry": {"type": "Polygon", "coordinates": [[[500000,1000000],[500020,1000000],[500020,1000020],[500000,1000020],[500000,1000000]]]}},
  {"type": "Feature", "properties": {"name": "east"},
   "geometry": {"type": "Polygon", "coordinates": [[[500020,1000000],[500030,1000000],[500030,1000020],[500020,1000020],[500020,1000000]]]}}
 ]}"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let j = json_of(&flus(&[
        "carbon",
        "--baseline",
        s(&lu),
        "--alternate",
        s(&lu),
        "--pools",
        s(&pools),
        "--zones",
        s(&gj),
        "--zone-field",
        "name",
        "--out",
        s(&out),
        "--json",
    ]));
    assert!(near(&j["by_zone"]["west"]["baseline_t"], 2.86));
    assert!(near(&j["by_zone"]["west"]["alternate_t"], 2.86));
    assert!(near(&j["by_zone"]["west"]["change_t"], 0.0));
    assert!(near(&j["by_zone"]["east"]["baseline_t"], 0.36));
    assert_eq!(j["by_zone"]["east"]["cells"], 2);
    let csv = std::fs::read_to_string(out.join("carbon_by_zone.csv")).unwrap();
    assert!(csv.contains("\n1,east,2,200,"), "{csv}");
    assert!(csv.contains("\n2,west,4,400,"), "{csv}");
}

#[test]
fn carbon_unknown_code_is_named_or_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let pools = invest_pools(dir.path());
    let p = dir.path().join("lu.tif");
    write_u8(
        &p,
        &grid30(),
        &[1, 1, 2, 3, 1, 200, 2, 3, 3, 3, 1, 1],
        Some(0.0),
    );
    let out = flus(&[
        "carbon",
        "--baseline",
        s(&p),
        "--pools",
        s(&pools),
        "--json",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("200") && err.contains("pools.csv"), "{err}");
    assert!(out.stdout.is_empty());
    let j = json_of(&flus(&[
        "carbon",
        "--baseline",
        s(&p),
        "--pools",
        s(&pools),
        "--on-missing",
        "exclude",
        "--json",
    ]));
    assert_eq!(j["missing"]["codes"], serde_json::json!([200]));
    assert_eq!(j["missing"]["unknown_code_cells"], 1);
    // 49.14 t without one class-2 cell (28 * 0.09 = 2.52 t): 46.62 t.
    assert!(near(&j["baseline_total_t"], 46.62));
}

#[test]
fn carbon_rejects_bad_tables_and_grids() {
    let dir = tempfile::tempdir().unwrap();
    let pools = invest_pools(dir.path());
    let (lu, g) = tiny(dir.path());
    let bad = dir.path().join("nodead.csv");
    std::fs::write(&bad, "lucode,c_above,c_below,c_soil\n1,1,2,3\n").unwrap();
    let out = flus(&["carbon", "--baseline", s(&lu), "--pools", s(&bad), "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("nodead.csv") && err.contains("c_dead"),
        "{err}"
    );
    let neg = dir.path().join("neg.csv");
    std::fs::write(&neg, "lucode,c_above,c_below,c_soil,c_dead\n1,1,-2,3,0\n").unwrap();
    let out = flus(&["carbon", "--baseline", s(&lu), "--pools", s(&neg)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("row 2") && err.contains("c_below"),
        "{err}"
    );
    let mut other = g.clone();
    other.width = 5;
    let wide = dir.path().join("wide.tif");
    write_u8(&wide, &other, &[1; 10], Some(0.0));
    let out = flus(&[
        "carbon",
        "--baseline",
        s(&lu),
        "--alternate",
        s(&wide),
        "--pools",
        s(&pools),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("lu.tif") && err.contains("wide.tif"),
        "{err}"
    );
    let out = flus(&[
        "carbon",
        "--baseline",
        s(&lu),
        "--alternate",
        s(&lu),
        "--pools",
        s(&pools),
        "--price",
        "10",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--years-baseline"),
        "{err}"
    );
}

#[test]
fn correct_density_writes_the_corrected_table() {
    let dir = tempfile::tempdir().unwrap();
    let pools = dir.path().join("national.csv");
    std::fs::write(
        &pools,
        "lucode,LULC_name,c_above,c_below,c_soil,c_dead\n1,cropland,40.5,26.8,186.3,5.2\n",
    )
    .unwrap();
    let out = dir.path().join("zhanjiang.csv");
    let j = json_of(&flus(&[
        "carbon",
        "correct-density",
        "--pools",
        s(&pools),
        "--precip-local",
        "1999.4",
        "--precip-national",
        "671.1",
        "--out",
        s(&out),
        "--json",
    ]));
    // K = (3.3968*1999.4 + 3996.1) / (3.3968*671.1 + 3996.1) = 10787.66192 / 6275.69248.
    let k = 10787.66192 / 6275.69248;
    assert!(near(&j["k"], k));
    let t = flus_shared::carbon::read_pools_csv(&out).unwrap();
    let p = t.get(1).unwrap().pools;
    assert!((p.soil - 186.3 * k).abs() < 1e-9);
    assert_eq!(p.above, 40.5);
    assert_eq!(t.get(1).unwrap().name, "cropland");
}

#[test]
fn densities_turn_the_chain_table_into_the_paper_pools_from_precipitation() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("chain.csv");
    // national soil density, below/above ratio, shares (see flus_shared::carbon::chain:
    // soils = Table 6 soil / K at printed precision; construction not corrected)
    std::fs::write(
        &table,
        "lucode,soil,ratio,biomass_share,soil_share,dead_share,correct\n\
         1,108.4,0.66,0.26,0.72,0.02,true\n\
         2,158.82,0.2,0.26,0.72,0.02,true\n\
         4,25.3,0.2,0.21,0.79,0,false\n",
    )
    .unwrap();
    let out = dir.path().join("pools.csv");
    let j = json_of(&flus(&[
        "carbon",
        "densities",
        "--table",
        s(&table),
        "--precipitation-local",
        "1999.4",
        "--precipitation-national",
        "671.1",
        "--out",
        s(&out),
        "--json",
    ]));
    assert!(near(&j["k"], 10787.66192 / 6275.69248));
    let pools = j["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 3);
    // the paper's Table 6 to its printed rounding: cropland 40.5 26.8 186.3 5.2,
    // forest 82.2 16.4 273.0 7.6, construction 5.6 1.1 25.3 0
    let want = [
        (1, [40.5, 26.8, 186.3, 5.2]),
        (2, [82.2, 16.4, 273.0, 7.6]),
        (4, [5.6, 1.1, 25.3, 0.0]),
    ];
    for (p, (code, w)) in pools.iter().zip(want) {
        assert_eq!(p["lucode"], code);
        for (key, w) in ["c_above", "c_below", "c_soil", "c_dead"].iter().zip(w) {
            let v = p[key].as_f64().unwrap();
            assert_eq!((v * 10.0).round() / 10.0, w, "{code} {key} {v}");
        }
    }
    // the file is an InVEST pools table with the same values
    let t = flus_shared::carbon::read_pools_csv(&out).unwrap();
    assert_eq!(t.codes(), vec![1, 2, 4]);
    assert!(near(&pools[0]["c_soil"], t.get(1).unwrap().pools.soil));
    // --factor gives the same table; neither K nor precipitation is an error
    let j2 = json_of(&flus(&[
        "carbon",
        "densities",
        "--table",
        s(&table),
        "--factor",
        "2",
        "--out",
        s(&out),
        "--json",
    ]));
    assert!(near(&j2["pools"][0]["c_soil"], 216.8));
    let o = flus(&[
        "carbon",
        "densities",
        "--table",
        s(&table),
        "--out",
        s(&out),
    ]);
    assert!(!o.status.success());
}

/// A WGS 84 grid of 0.01 degree at 21 N: 2 x 2 cells, rows 21.02..21.01 and
/// 21.01..21.00. Cell areas from PROJ's geodesic library (pyproj 3.7.2 / PROJ 9.5.1,
/// `Geod(ellps="WGS84").polygon_area_perimeter` of the cell outline with each parallel
/// edge cut into 200 segments): 1151016.354958266 m2 (upper row) and
/// 1151091.7102091126 m2 (lower row); not 0.0001 m2 (the geotransform's square degrees).
#[test]
fn carbon_on_a_lon_lat_grid_uses_geodesic_cell_areas() {
    let dir = tempfile::tempdir().unwrap();
    let pools = invest_pools(dir.path());
    let g = Grid {
        width: 2,
        height: 2,
        geotransform: [108.0, 0.01, 0.0, 21.02, 0.0, -0.01],
        crs_wkt: gdal::spatial_ref::SpatialRef::from_epsg(4326)
            .unwrap()
            .to_wkt()
            .unwrap(),
    };
    let lu = dir.path().join("lonlat.tif");
    // class 1 (86 t/ha) in the upper row, class 2 (28 t/ha) in the lower row
    write_u8(&lu, &g, &[1, 1, 2, 2], Some(0.0));
    let out = dir.path().join("out");
    let j = json_of(&flus(&[
        "carbon",
        "--baseline",
        s(&lu),
        "--pools",
        s(&pools),
        "--out",
        s(&out),
        "--json",
    ]));
    let (upper, lower) = (1_151_016.354_958_266, 1_151_091.710_209_112_6);
    let area = j["area_m2"].as_f64().unwrap();
    assert!((area - 2.0 * (upper + lower)).abs() < 1e-3, "{area}");
    assert_eq!(j["geographic"], true);
    assert!(j["cell_area_m2"].is_null());
    // storage: 86 t/ha x 2 upper cells + 28 t/ha x 2 lower cells, areas in ha
    let want = 86.0 * 2.0 * upper / 1e4 + 28.0 * 2.0 * lower / 1e4;
    let got = j["baseline_total_t"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
    assert!((j["by_class"]["1"]["area_m2"].as_f64().unwrap() - 2.0 * upper).abs() < 1e-3);
    // the t per cell raster follows the row's area
    let (_, t) = read_band::<f32>(&out.join("carbon_baseline_t.tif"), 1).unwrap();
    assert!((t[0] as f64 - 86.0 * upper / 1e4).abs() < 0.01, "{}", t[0]);
    assert!((t[3] as f64 - 28.0 * lower / 1e4).abs() < 0.01, "{}", t[3]);
}

#[test]
fn a_crs_in_feet_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pools = invest_pools(dir.path());
    let g = Grid {
        width: 2,
        height: 1,
        geotransform: [0.0, 100.0, 0.0, 0.0, 0.0, -100.0],
        // NAD83 / Texas North Central (ftUS)
        crs_wkt: gdal::spatial_ref::SpatialRef::from_epsg(2276)
            .unwrap()
            .to_wkt()
            .unwrap(),
    };
    let lu = dir.path().join("feet.tif");
    write_u8(&lu, &g, &[1, 2], Some(0.0));
    let out = flus(&[
        "carbon",
        "--baseline",
        s(&lu),
        "--pools",
        s(&pools),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("feet.tif")
            && err.contains("expected metres or degrees"),
        "{err}"
    );
}
