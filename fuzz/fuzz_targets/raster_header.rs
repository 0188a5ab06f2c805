//! The raster header path (GDAL open + header checks) on arbitrary file contents.
#![no_main]

use libfuzzer_sys::fuzz_target;

thread_local! {
    static DIR: tempfile::TempDir = tempfile::tempdir().expect("temp dir");
}

fuzz_target!(|data: &[u8]| {
    DIR.with(|d| flus_shared::raster::fuzz_header(&d.path().join("input.tif"), data));
});
