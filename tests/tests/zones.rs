//! Carbon per zone inside `flus run` (paper Table 9, from the workers' integer counts per
//! (zone, class)) equals the standalone `flus carbon --zones` on the written maps. On
//! the shared 300 x 300 window of Ben Cat: the sums per zone do not depend on the
//! grid's size.

use std::time::Duration;

use flus_e2e::{crop, flus};
use flus_shared::raster;

#[test]
fn run_mean_density_per_zone_equals_the_standalone_carbon_command() {
    let dir = tempfile::tempdir().unwrap();
    crop::test_window(dir.path());
    // two zones: the western 120 columns and the rest
    let (info, _) = raster::read_band::<u8>(&dir.path().join("landuse_2010.tif"), 1).unwrap();
    let g = info.grid.clone();
    // a Byte raster whose category names name the zones (as QGIS shows them)
    let zones: Vec<u8> = (0..g.cells())
        .map(|i| if i % g.width < 120 { 1 } else { 2 })
        .collect();
    let entry = |value: u8, name: &str| raster::PaletteEntry {
        value,
        name: name.into(),
        rgb: [value * 100, 0, 0],
    };
    raster::write_geotiff(
        &dir.path().join("zones.tif"),
        &g,
        &[&zones],
        &raster::WriteOptions {
            palette: vec![entry(1, "west"), entry(2, "east")],
            ..Default::default()
        },
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("study.toml")).unwrap();
    let text = text + "\n[zones]\npath = \"zones.tif\"\n";
    std::fs::write(dir.path().join("study.toml"), text).unwrap();
    let out_dir = dir.path().join("out");
    let study = dir.path().join("study.toml");
    let out = flus(
        &[
            "run",
            study.to_str().unwrap(),
            "--local-workers",
            "1",
            "--scenario",
            "urbanized",
            "--no-validation",
            "--json",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(900),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let table = std::fs::read_to_string(out_dir.join("carbon_density_by_zone.csv")).unwrap();
    let rows: Vec<Vec<String>> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(table.starts_with("zone,name,"), "{table}");
    // the names of the zone raster's categories
    assert_eq!((rows[0][1].as_str(), rows[1][1].as_str()), ("west", "east"));
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("west (1)") && html.contains("difference (largest − smallest zone)"),
        "the report's Table 9"
    );
    let c = flus(
        &[
            "carbon",
            "--baseline",
            dir.path().join("landuse_2020.tif").to_str().unwrap(),
            "--alternate",
            out_dir.join("landuse_urbanized_2060.tif").to_str().unwrap(),
            "--pools",
            dir.path().join("carbon_pools.csv").to_str().unwrap(),
            "--zones",
            dir.path().join("zones.tif").to_str().unwrap(),
            "--json",
        ],
        None,
        Duration::from_secs(300),
    );
    assert_eq!(c.code, Some(0), "{}", c.stderr);
    let j = c.json();
    for row in &rows {
        let code: i64 = row[0].parse().unwrap();
        let z = j["by_zone"]
            .as_object()
            .unwrap()
            .values()
            .find(|v| v["code"] == code)
            .unwrap_or_else(|| panic!("zone {code} in {}", j["by_zone"]));
        let base: f64 = row[2].parse().unwrap();
        let alt: f64 = row[3].parse().unwrap();
        assert!(
            (base - z["baseline_mean_density_kg_m2"].as_f64().unwrap()).abs() < 1e-6,
            "zone {code}: {row:?} vs {z}"
        );
        assert!(
            (alt - z["alternate_mean_density_kg_m2"].as_f64().unwrap()).abs() < 1e-6,
            "zone {code}: {row:?} vs {z}"
        );
    }
}
