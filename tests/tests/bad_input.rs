//! Bad input to the foundation commands: each case fails with a message that names the
//! file or key, what was found and what was expected, and never panics.

use std::path::Path;
use std::time::Duration;

use flus_e2e::{flus, repo_root};
use flus_shared::raster;

/// Copies the Ben Cat study (config + rasters) to a temp folder and applies `edit` to
/// the config text; returns the folder.
fn bencat_with(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = repo_root().join("examples/bencat");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let text = std::fs::read_to_string(src.join("study.toml")).unwrap();
    let text = text.replace("output = \"../../out/bencat\"", "output = \"out\"");
    std::fs::write(dir.path().join("study.toml"), edit(text)).unwrap();
    dir
}

fn demand_fails(dir: &Path) -> String {
    let study = dir.join("study.toml");
    let out = flus(
        &["demand", study.to_str().unwrap()],
        Some(dir),
        Duration::from_secs(300),
    );
    assert_eq!(
        out.code,
        Some(1),
        "expected failure, got {:?}\n{}",
        out.code,
        out.stdout
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out.stderr
}

#[test]
fn a_missing_file_is_named() {
    let d = bencat_with(|t| t.replace("path = \"dem.tif\"", "path = \"dem_missing.tif\""));
    let e = demand_fails(d.path());
    assert!(
        e.contains("dem_missing.tif") && e.contains("file not found"),
        "{e}"
    );
}

#[test]
fn with_several_bad_layers_the_first_in_the_config_is_named_every_time() {
    // the layers are read several at a time: the error must not depend on which read
    // finished first. dem (the first driver) and dist_road (the last) both broken;
    // and a broken land-use map (read beside the drivers) comes before every driver
    let d = bencat_with(|t| t);
    for f in ["dem.tif", "dist_road.tif"] {
        std::fs::write(d.path().join(f), b"this is not a GeoTIFF").unwrap();
    }
    for _ in 0..3 {
        let e = demand_fails(d.path());
        assert!(e.contains("dem.tif") && !e.contains("dist_road.tif"), "{e}");
    }
    std::fs::write(d.path().join("landuse_2020.tif"), b"not a GeoTIFF either").unwrap();
    for _ in 0..3 {
        let e = demand_fails(d.path());
        assert!(
            e.contains("landuse_2020.tif") && !e.contains("dem.tif"),
            "{e}"
        );
    }
}

#[test]
fn an_unreadable_raster_is_named() {
    let d = bencat_with(|t| t);
    std::fs::write(d.path().join("slope.tif"), b"this is not a GeoTIFF").unwrap();
    let e = demand_fails(d.path());
    assert!(
        e.contains("slope.tif") && e.contains("not a readable raster"),
        "{e}"
    );
}

#[test]
fn grids_that_differ_without_align_name_both_files_and_the_difference() {
    let d = bencat_with(|t| t.replace("align = true", "align = false"));
    let e = demand_fails(d.path());
    assert!(
        e.contains("landuse_2000.tif") && e.contains("dist_road.tif"),
        "{e}"
    );
    assert!(
        e.contains("1004 x 1559") && e.contains("1003 x 1558"),
        "{e}"
    );
    assert!(e.contains("align = true"), "{e}");
}

#[test]
fn a_different_crs_is_an_error() {
    // without `align`, and without the misplaced dist_road.tif
    let d = bencat_with(|t| {
        t.replace("align = true", "align = false").replace(
            "[[drivers]]\nname = \"dist_road\"\npath = \"dist_road.tif\"\n",
            "",
        )
    });
    // rewrite slope.tif on the same placement but in UTM zone 49N (EPSG:32649)
    let p = d.path().join("slope.tif");
    let (info, values) = raster::read_band::<u8>(&p, 1).unwrap();
    let mut grid = info.grid.clone();
    grid.crs_wkt = gdal::spatial_ref::SpatialRef::from_epsg(32649)
        .unwrap()
        .to_wkt()
        .unwrap();
    raster::write_geotiff(&p, &grid, &[&values], &raster::WriteOptions::default()).unwrap();
    let e = demand_fails(d.path());
    assert!(
        e.contains("slope.tif") && e.contains("CRS") && e.contains("48N") && e.contains("49N"),
        "{e}"
    );
}

#[test]
fn a_class_code_the_config_does_not_name_is_an_error() {
    let d = bencat_with(|t| {
        t.replace(
            "[[classes]]\ncode = 2\nname = \"water\"",
            "[[classes]]\ncode = 7\nname = \"water\"",
        )
    });
    let e = demand_fails(d.path());
    assert!(
        e.contains("class code(s) 2 (") && e.contains("not named in [[classes]]"),
        "{e}"
    );
    assert!(e.contains("known codes: 1, 3, 4, 7"), "{e}");
}

#[test]
fn a_conversion_matrix_of_the_wrong_shape_is_an_error() {
    let d =
        bencat_with(|t| t.replacen("  [0, 0, 1, 1],  # cropland -> built-up, cropland\n", "", 1));
    let e = demand_fails(d.path());
    assert!(
        e.contains("study.toml")
            && e.contains("scenarios[0].matrix")
            && e.contains("3 rows, expected 4"),
        "{e}"
    );
}

#[test]
fn a_target_year_not_reachable_in_whole_steps_is_an_error() {
    let d = bencat_with(|t| t.replace("target_year = 2060", "target_year = 2055"));
    let e = demand_fails(d.path());
    assert!(
        e.contains("markov.target_year") && e.contains("2055") && e.contains("whole steps of 10"),
        "{e}"
    );
}

#[test]
fn target_year_and_target_years_together_or_a_bad_staged_year_are_errors() {
    let d = bencat_with(|t| {
        t.replace(
            "target_year = 2060",
            "target_year = 2060\ntarget_years = [2030, 2060]",
        )
    });
    let e = demand_fails(d.path());
    assert!(
        e.contains("study.toml")
            && e.contains("markov.target_year ")
            && e.contains("markov.target_years"),
        "{e}"
    );
    let d = bencat_with(|t| t.replace("target_year = 2060", "target_years = [2030, 2045]"));
    let e = demand_fails(d.path());
    assert!(
        e.contains("markov.target_years[1]")
            && e.contains("2045")
            && e.contains("whole steps of 10"),
        "{e}"
    );
}

#[test]
fn negative_carbon_pools_are_an_error() {
    let d = bencat_with(|t| t.replace("soil = 25.3", "soil = -25.3"));
    let e = demand_fails(d.path());
    assert!(
        e.contains("classes[2].carbon.soil") && e.contains("-25.3"),
        "{e}"
    );
}

#[test]
fn an_unknown_config_key_is_an_error() {
    let d = bencat_with(|t| t.replace("[ca]\n", "[ca]\nneighborhood = 5\n"));
    let e = demand_fails(d.path());
    assert!(
        e.contains("study.toml") && e.contains("ca") && e.contains("unknown field `neighborhood`"),
        "{e}"
    );
}

#[test]
fn a_folder_given_as_config_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let out = flus(
        &["demand", d.path().to_str().unwrap()],
        None,
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("is a folder"), "{}", out.stderr);
}
