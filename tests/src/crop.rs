//! A small study for the fault tests: a window of the shipped Ben Cat study (same
//! classes, drivers and scenarios), so a whole `flus run` takes seconds in a debug build.

use std::path::{Path, PathBuf};

use flus_shared::raster::{self, WriteOptions};

/// Ben Cat's rasters and whether each holds bytes (else Float32).
const LAYERS: [(&str, bool); 8] = [
    ("landuse_2000.tif", true),
    ("landuse_2010.tif", true),
    ("landuse_2020.tif", true),
    ("dem.tif", true),
    ("slope.tif", true),
    ("population_2015.tif", false),
    ("dist_river.tif", false),
    ("dist_road.tif", false),
];

/// The window of Ben Cat (column, row, size) that the end-to-end tests share: all four
/// classes, built-up growing 2010 -> 2020, enough water for the ANN's uniform sample.
pub const TEST_WINDOW: (usize, usize, usize) = (350, 600, 300);

/// [`bencat_window`] of [`TEST_WINDOW`] into `dir`, emptied first; the config's path.
pub fn test_window(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let (x0, y0, size) = TEST_WINDOW;
    bencat_window(dir, x0, y0, size)
}

/// Cuts the window of `size` x `size` cells at column `x0`, row `y0` out of every
/// raster of `examples/bencat` (each in its own pixel grid, like `gdal_translate
/// -srcwin`: dist_road.tif keeps its slight offset and is still warped by `align`),
/// writes them with the study config into `dst` and returns the config's path.
///
/// The config is Ben Cat's with three changes a small window needs: output folder
/// `out`, ANN sample 10 per mille (the window holds few water cells) and 100 GWR points.
pub fn bencat_window(dst: &Path, x0: usize, y0: usize, size: usize) -> PathBuf {
    let src = crate::repo_root().join("examples/bencat");
    std::fs::create_dir_all(dst).expect("crop folder");
    for (name, bytes) in LAYERS {
        let from = src.join(name);
        let info = raster::info(&from).unwrap_or_else(|e| panic!("{e}"));
        let mut grid = info.grid.clone();
        let gt = &mut grid.geotransform;
        gt[0] += x0 as f64 * gt[1] + y0 as f64 * gt[2];
        gt[3] += x0 as f64 * gt[4] + y0 as f64 * gt[5];
        grid.width = size;
        grid.height = size;
        let opts = WriteOptions {
            nodata: info.nodata,
            ..Default::default()
        };
        let to = dst.join(name);
        let res = if bytes {
            raster::read_window::<u8>(&from, 1, x0, y0, size, size)
                .and_then(|v| raster::write_geotiff(&to, &grid, &[&v], &opts))
        } else {
            raster::read_window::<f32>(&from, 1, x0, y0, size, size)
                .and_then(|v| raster::write_geotiff(&to, &grid, &[&v], &opts))
        };
        res.unwrap_or_else(|e| panic!("cropping {name}: {e}"));
    }
    std::fs::copy(src.join("carbon_pools.csv"), dst.join("carbon_pools.csv"))
        .expect("copy carbon_pools.csv");
    let toml = std::fs::read_to_string(src.join("study.toml")).expect("Ben Cat study.toml");
    let mut toml = format!(
        "# A {size} x {size} window (column {x0}, row {y0}) of examples/bencat, for fast tests.\n{toml}"
    );
    for (from, to) in [
        ("output = \"../../out/bencat\"", "output = \"out\""),
        ("sample_per_mille = 20", "sample_per_mille = 10"),
        ("sample_points = 1000", "sample_points = 100"),
    ] {
        assert!(
            toml.contains(from),
            "examples/bencat/study.toml no longer holds {from:?}: update tests/src/crop.rs"
        );
        toml = toml.replace(from, to);
    }
    let path = dst.join("study.toml");
    std::fs::write(&path, toml).expect("write study.toml");
    path
}
