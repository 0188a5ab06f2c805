//! Regression tests of the `config` and `raster_header` fuzz targets: every input kept
//! in `fuzz/regressions/<target>/` runs through the target's function without a panic.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            v.push(std::fs::read(e.path()).unwrap());
        }
    }
    v
}

#[test]
fn config_inputs_found_by_fuzzing_are_handled() {
    for data in inputs("config") {
        flus_shared::config::fuzz_parse(&data);
    }
}

#[test]
fn raster_header_inputs_found_by_fuzzing_are_handled() {
    let d = tempfile::tempdir().unwrap();
    for data in inputs("raster_header") {
        flus_shared::raster::fuzz_header(&d.path().join("input.tif"), &data);
    }
}
