//! Replays the kept inputs of the `config` and `raster_header` fuzz targets
//! (`fuzz/seeds/<target>/` and, once fuzzing finds something, the crashing inputs in
//! `fuzz/regressions/<target>/`) through the targets' functions, and checks that the
//! seeds are what the targets start from: valid configs and readable rasters.

use std::path::{Path, PathBuf};

fn kept(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut v = Vec::new();
    for sub in ["seeds", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(root.join(sub).join(target)) {
            for e in rd.flatten() {
                v.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn kept_config_inputs_are_handled_and_the_seeds_are_valid_studies() {
    let inputs = kept("config");
    assert!(inputs.len() >= 2, "the two example studies are the seeds");
    for (p, data) in &inputs {
        flus_shared::config::fuzz_parse(data);
        if p.to_string_lossy().contains("/seeds/") {
            let text = std::str::from_utf8(data).unwrap();
            let c = flus_shared::config::parse(text, p).unwrap();
            c.validate(p).unwrap();
        }
    }
}

#[test]
fn kept_raster_inputs_are_handled_and_the_seeds_are_readable() {
    let inputs = kept("raster_header");
    assert!(inputs.len() >= 2);
    let d = tempfile::tempdir().unwrap();
    for (p, data) in &inputs {
        flus_shared::raster::fuzz_header(&d.path().join("input.tif"), data);
        if p.to_string_lossy().contains("/seeds/") {
            // landuse16.tif: 16 x 16 cells, dem8.tif: 8 x 8 (gdal_translate -srcwin)
            let i = flus_shared::raster::info(p).unwrap();
            let side = if p.ends_with("landuse16.tif") { 16 } else { 8 };
            assert_eq!(
                (i.grid.width, i.grid.height),
                (side, side),
                "{}",
                p.display()
            );
        }
    }
}

#[test]
fn a_tiny_file_declaring_thousands_of_bands_is_refused_before_any_read() {
    // Found by the raster_header target: 831 bytes declaring 7168 pixel-interleaved
    // Float32 bands of 8 x 8 cells (gdalinfo lists 7168 bands); reading band 1 loaded a
    // block of every band, 1.9 GB.
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions/raster_header/oom-7168-bands.tif");
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 831);
    let e = flus_shared::raster::read_band::<f64>(&p, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("oom-7168-bands.tif") && e.contains("7168 bands") && e.contains("single-band"),
        "{e}"
    );
}
