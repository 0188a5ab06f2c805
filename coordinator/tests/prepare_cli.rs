//! `flus prepare` end to end on the shipped Ben Cat example, and its error messages.

use std::path::{Path, PathBuf};
use std::process::Command;

use flus_shared::raster;

fn bencat(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/bencat")
        .join(file)
}

fn flus(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flus"))
        .args(args)
        .output()
        .expect("flus runs")
}

/// Ben Cat's land-use grid: 1004 x 1559 cells of 25 m from (663150, 1259525), EPSG:32648.
const X0: f64 = 663_150.0;
const Y0: f64 = 1_259_525.0;
const CELL: f64 = 25.0;
const CRS: &str =
    r#""crs": { "type": "name", "properties": { "name": "urn:ogc:def:crs:EPSG::32648" } }"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn prepare_writes_every_output_on_the_reference_grid() {
    let dir = tempfile::tempdir().unwrap();
    // A road along the centre line of row 700, across the whole grid.
    let y = Y0 - 700.5 * CELL;
    let road = write(
        dir.path(),
        "road.geojson",
        &format!(
            r#"{{ "type": "FeatureCollection", {CRS}, "features": [ {{ "type": "Feature", "properties": {{}}, "geometry": {{ "type": "LineString", "coordinates": [[{}, {y}], [{}, {y}]] }} }} ] }}"#,
            X0 - 50.0,
            X0 + 1004.0 * CELL + 50.0
        ),
    );
    // A reserve and a zone over columns 0..100 and rows 0..100 (cell edges): 10,000 cells.
    let (xa, xb, ya, yb) = (X0, X0 + 100.0 * CELL, Y0, Y0 - 100.0 * CELL);
    let square = |props: &str| {
        format!(
            r#"{{ "type": "FeatureCollection", {CRS}, "features": [ {{ "type": "Feature", "properties": {{ {props} }}, "geometry": {{ "type": "Polygon", "coordinates": [[[{xa}, {ya}], [{xb}, {ya}], [{xb}, {yb}], [{xa}, {yb}], [{xa}, {ya}]]] }} }} ] }}"#
        )
    };
    let reserve = write(dir.path(), "reserve.geojson", &square(""));
    let zones = write(
        dir.path(),
        "zones.geojson",
        &square(r#""district": "corner""#),
    );
    let out = dir.path().join("prepared");
    let reference = bencat("landuse_2010.tif");
    let r = flus(&[
        "prepare",
        "--reference",
        reference.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--warp",
        &format!("dist_road={}:bilinear", bencat("dist_road.tif").display()),
        "--dem",
        bencat("dem.tif").to_str().unwrap(),
        "--distance",
        &format!("road={}", road.display()),
        "--restrict",
        &format!("reserve={}", reserve.display()),
        "--zones",
        zones.to_str().unwrap(),
        "--zone-field",
        "district",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("one JSON object");
    assert_eq!(v["reference"].as_str(), reference.to_str());
    let outputs = v["outputs"].as_array().unwrap();
    let names: Vec<&str> = outputs
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["dist_road", "slope", "aspect", "road", "reserve", "zones"]
    );
    let kinds: Vec<&str> = outputs
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "warp",
            "slope",
            "aspect",
            "distance",
            "restriction",
            "zones"
        ]
    );
    // One progress line per output on stderr.
    for n in &names {
        assert!(stderr.contains(&format!("{n}.tif")), "{stderr}");
    }

    let ref_info = raster::info(&reference).unwrap();
    assert_eq!((ref_info.grid.width, ref_info.grid.height), (1004, 1559));
    for o in outputs {
        let p = PathBuf::from(o["path"].as_str().unwrap());
        assert_eq!(p.parent().unwrap(), out);
        let info = raster::info(&p).unwrap();
        assert_eq!(
            (info.grid.width, info.grid.height),
            (1004, 1559),
            "{}",
            p.display()
        );
        assert_eq!(
            info.grid.geotransform,
            ref_info.grid.geotransform,
            "{}",
            p.display()
        );
        assert!(raster::same_crs(&info.grid.crs_wkt, &ref_info.grid.crs_wkt));
        assert!(o["cells_with_data"].as_u64().unwrap() > 0);
    }
    let cells = 1004 * 1559;
    // Distance: defined everywhere; 0 on row 700, 10 rows away 250 m; the farthest row
    // is row 1558, 858 rows = 21,450 m away.
    let road_out = &outputs[3];
    assert_eq!(road_out["cells_with_data"].as_u64(), Some(cells));
    assert_eq!(road_out["max"].as_f64(), Some(858.0 * CELL));
    let (_, d) = raster::read_band::<f32>(&out.join("road.tif"), 1).unwrap();
    assert!(d[700 * 1004..701 * 1004].iter().all(|&x| x == 0.0));
    assert!(d[690 * 1004..691 * 1004].iter().all(|&x| x == 250.0));
    // Restriction: 10,000 cells at 0. Zones: 10,000 cells of code 1.
    let (_, res) = raster::read_band::<u8>(&out.join("reserve.tif"), 1).unwrap();
    assert_eq!(res.iter().filter(|&&x| x == 0).count(), 10_000);
    assert_eq!(res[99 * 1004 + 99], 0);
    assert_eq!(res[100 * 1004 + 99], 1);
    assert_eq!(outputs[5]["cells_with_data"].as_u64(), Some(10_000));
    assert_eq!(
        std::fs::read_to_string(out.join("zones.csv")).unwrap(),
        "code,name\n1,corner\n"
    );
    // Slope in degrees: a range a DEM of a lowland can have.
    let smax = outputs[1]["max"].as_f64().unwrap();
    assert!(outputs[1]["min"].as_f64().unwrap() >= 0.0 && smax > 0.0 && smax < 90.0);
    let amax = outputs[2]["max"].as_f64().unwrap();
    assert!(outputs[2]["min"].as_f64().unwrap() >= -1.0 && amax < 360.0);

    let toml = std::fs::read_to_string(out.join("prepared.toml")).unwrap();
    for entry in [
        "[[drivers]]\nname = \"dist_road\"\npath = \"dist_road.tif\"",
        "name = \"slope\"\npath = \"slope.tif\"",
        "name = \"aspect\"\npath = \"aspect.tif\"",
        "name = \"road\"\npath = \"road.tif\"",
        "[[restrictions]]\nname = \"reserve\"\npath = \"reserve.tif\"",
        "[zones]\npath = \"zones.tif\"",
    ] {
        assert!(toml.contains(entry), "{entry:?} not in\n{toml}");
    }
    // Nothing half-written is left.
    for e in std::fs::read_dir(&out).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!n.starts_with('.'), "{n}");
    }
}

fn fails_with(args: &[&str], expected: &[&str]) {
    let r = flus(args);
    assert!(!r.status.success(), "flus {args:?} succeeded");
    let stderr = String::from_utf8_lossy(&r.stderr);
    for e in expected {
        assert!(stderr.contains(e), "{e:?} not in: {stderr}");
    }
    assert!(
        r.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&r.stdout)
    );
}

#[test]
fn prepare_names_a_missing_vector_an_empty_vector_and_an_unknown_resampling() {
    let dir = tempfile::tempdir().unwrap();
    let reference = bencat("landuse_2010.tif");
    let reference = reference.to_str().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let missing = dir.path().join("roads.gpkg");
    fails_with(
        &[
            "prepare",
            "--reference",
            reference,
            "--out",
            out,
            "--json",
            "--distance",
            &format!("road={}", missing.display()),
        ],
        &["roads.gpkg", "file not found"],
    );
    let empty = write(
        dir.path(),
        "empty.geojson",
        &format!(r#"{{ "type": "FeatureCollection", {CRS}, "features": [] }}"#),
    );
    fails_with(
        &[
            "prepare",
            "--reference",
            reference,
            "--out",
            out,
            "--json",
            "--restrict",
            &format!("reserve={}", empty.display()),
        ],
        &["empty.geojson", "has no features"],
    );
    fails_with(
        &[
            "prepare",
            "--reference",
            reference,
            "--out",
            out,
            "--json",
            "--warp",
            &format!("pop={}:cubic", bencat("population_2015.tif").display()),
        ],
        &[
            "unknown resampling `cubic`",
            "expected `nearest` or `bilinear`",
        ],
    );
}
