//! `[study] output_format = "cog"`: every raster of a `flus run` is a cloud-optimized
//! GeoTIFF by GDAL's own validator, and holds the same values, grid and colours as the
//! default GeoTIFF output of the same run.

use std::path::{Path, PathBuf};
use std::process::Command;

use flus_e2e::{crop::bencat_window, run_one_scenario};
use flus_shared::raster;

/// Runs the urbanized scenario of `study` (no validation, one local worker) into `out`.
fn run(study: &Path, out: &Path) {
    let o = run_one_scenario(study, "urbanized", out);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

fn tifs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tif"))
        .collect();
    v.sort();
    v
}

/// GDAL's COG validator (`validate_cloud_optimized_geotiff.py` of GDAL's Python
/// utilities, Debian's python3-gdal) on `path`: its exit code and output.
fn gdal_validate(path: &Path) -> (bool, String) {
    let o = Command::new("/usr/bin/python3")
        .args([
            "-m",
            "osgeo_utils.samples.validate_cloud_optimized_geotiff",
            "--full-check=yes",
        ])
        .arg(path)
        .output()
        .expect("python3 with GDAL's Python utilities (python3-gdal; deploy/install-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// GDAL's `LAYOUT` item of the file's image structure metadata.
fn layout(path: &Path) -> Option<String> {
    use gdal::Metadata;
    gdal::Dataset::open(path)
        .unwrap()
        .metadata_item("LAYOUT", "IMAGE_STRUCTURE")
}

#[test]
fn cog_outputs_pass_gdals_layout_check_and_hold_the_gtiff_values() {
    let d = tempfile::tempdir().unwrap();
    let study = bencat_window(&d.path().join("study"), 300, 500, 600);
    let text = std::fs::read_to_string(&study).unwrap();
    assert!(text.contains("\n[study]\n"));
    let cog_study = study.with_file_name("study_cog.toml");
    std::fs::write(
        &cog_study,
        text.replacen("\n[study]\n", "\n[study]\noutput_format = \"cog\"\n", 1),
    )
    .unwrap();
    let (plain, cog) = (d.path().join("gtiff"), d.path().join("cog"));
    run(&study, &plain);
    run(&cog_study, &cog);

    let names: Vec<_> = tifs(&plain)
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    let cog_names: Vec<_> = tifs(&cog)
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, cog_names);
    // land use of 2020 and 2060, the suitability, the carbon rasters, the GWR maps
    for n in [
        "landuse_2020.tif",
        "landuse_urbanized_2060.tif",
        "suitability_2020.tif",
        "carbon_storage_2020_t.tif",
        "carbon_storage_urbanized_2060_t.tif",
        "carbon_change_urbanized_2060_t.tif",
        "gwr_coef_built-up.tif",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing: {names:?}");
    }
    for name in &names {
        let (a, b) = (plain.join(name), cog.join(name));
        let (ok, msg) = gdal_validate(&b);
        assert!(ok, "{}: {msg}", b.display());
        assert!(msg.contains("is a valid cloud optimized GeoTIFF"), "{msg}");
        // GDAL marks the COG layout (header and IFDs ahead of the data); the default
        // output is a tiled GeoTIFF without it
        assert_eq!(layout(&b).as_deref(), Some("COG"), "{name:?}");
        assert_eq!(layout(&a), None, "{name:?}");
        // blocks of 512; the 600 x 600 study grid gets one overview of 300 x 300, the
        // coarse grid of the GWR coefficient maps (one block) none
        let ds = gdal::Dataset::open(&b).unwrap();
        let band = ds.rasterband(1).unwrap();
        assert_eq!(band.block_size(), (512, 512), "{name:?}");
        let overviews = if ds.raster_size() == (600, 600) { 1 } else { 0 };
        assert_eq!(band.overview_count().unwrap(), overviews, "{name:?}");
        let (ia, ib) = (raster::info(&a).unwrap(), raster::info(&b).unwrap());
        assert_eq!(ia.grid.geotransform, ib.grid.geotransform, "{name:?}");
        assert!(raster::same_crs(&ia.grid.crs_wkt, &ib.grid.crs_wkt));
        assert_eq!((ia.bands, ia.nodata), (ib.bands, ib.nodata), "{name:?}");
        for band in 1..=ia.bands {
            if ia.data_type == "Byte" {
                let (_, va) = raster::read_band::<u8>(&a, band).unwrap();
                let (_, vb) = raster::read_band::<u8>(&b, band).unwrap();
                assert!(va == vb, "{name:?} band {band}: values differ");
            } else {
                let (_, va) = raster::read_band::<f32>(&a, band).unwrap();
                let (_, vb) = raster::read_band::<f32>(&b, band).unwrap();
                let same = va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same && va.len() == vb.len(),
                    "{name:?} band {band}: values differ"
                );
            }
        }
        let cats = raster::category_names(&a, 1).unwrap();
        assert_eq!(cats, raster::category_names(&b, 1).unwrap(), "{name:?}");
        if name.to_string_lossy().starts_with("landuse_") {
            assert!(cats.iter().any(|c| c == "built-up"), "{name:?}: {cats:?}");
        }
    }
}
