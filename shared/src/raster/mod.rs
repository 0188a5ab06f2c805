//! GDAL raster I/O: header information, reading bands of any type (whole or by window),
//! warping a layer onto a reference grid, and writing tiled, compressed GeoTIFFs to a
//! temporary name that is renamed on success.
//!
//! This module holds the header ([`RasterInfo`], [`info`]), opening a file ([`open`]) and
//! the CRS helpers; reading is in `read`, warping in `warp`, writing in `write` and the
//! category names of class maps in `categories`, all re-exported here.

use std::path::{Path, PathBuf};

use gdal::spatial_ref::SpatialRef;
use gdal::Dataset;

use crate::error::{Error, Result};
use crate::grid::Grid;

mod categories;
mod read;
mod warp;
mod write;

#[cfg(test)]
mod tests;

pub use categories::category_names;
pub(crate) use categories::set_category_names;
pub use read::{read_band, read_band_strips, read_window, RowReader};
pub use warp::{warp_to_grid, Resample};
pub(crate) use write::{aux_name, remove_partial, temp_name};
pub use write::{write_geotiff, Encoding, PaletteEntry, StripWriter, WriteOptions, DEFLATE_LEVEL};

/// Rows written (or read) per GDAL call when streaming a raster a block at a time.
pub const STRIP_ROWS: usize = 256;

/// What a raster's header says.
#[derive(Clone, Debug)]
pub struct RasterInfo {
    /// The file.
    pub path: PathBuf,
    /// Its grid (size, geotransform, CRS).
    pub grid: Grid,
    /// Number of bands.
    pub bands: usize,
    /// GDAL data type name of band 1 (Byte, Int16, Int32, Float32, ...).
    pub data_type: String,
    /// Declared nodata value of band 1.
    pub nodata: Option<f64>,
    /// Block (tile or strip) size of band 1.
    pub block_size: (usize, usize),
    /// Short name of the GDAL driver that opened it (GTiff, VRT, ...).
    pub driver: String,
}

/// The GDAL library version in use, e.g. "3.6.2".
pub fn gdal_version() -> String {
    gdal::version::version_info("RELEASE_NAME")
}

/// Whether `path` is one of GDAL's virtual file systems (`/vsicurl/https://...`,
/// `/vsis3/bucket/key`, `/vsigs/...`, `/vsiaz/...`): read by GDAL over the network (HTTP
/// range requests), not from the local file system.
pub fn is_virtual(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with("/vsi"))
}

/// Opens `path` read-only with GDAL, naming the file in the error. A virtual path
/// ([`is_virtual`]) is opened by GDAL alone; its error carries GDAL's message (for
/// HTTP, the response code).
pub fn open(path: &Path) -> Result<Dataset> {
    if is_virtual(path) {
        let ds = Dataset::open(path)
            .map_err(|e| Error::raster(path, format!("cannot be read ({})", gdal_message(e))))?;
        return check_bands(ds, path);
    }
    if !path.exists() {
        return Err(Error::raster(path, "file not found"));
    }
    if path.is_dir() {
        return Err(Error::raster(path, "is a folder, expected a raster file"));
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(Error::raster(
            path,
            "is an empty file (0 bytes), expected a raster",
        ));
    }
    let ds = Dataset::open(path)
        .map_err(|e| Error::raster(path, format!("not a readable raster ({e})")))?;
    check_bands(ds, path)
}

/// GDAL's own message of an open error, with the thread's last CPL error (where GDAL
/// puts the HTTP status of a failed request).
fn gdal_message(e: gdal::errors::GdalError) -> String {
    match e {
        gdal::errors::GdalError::NullPointer { msg, .. } if !msg.is_empty() => msg,
        // GDAL's object stores answer a missing object or bucket without a message
        gdal::errors::GdalError::NullPointer { .. } => "no such object, or access refused: \
            check the address, and the credentials and endpoint in the environment \
            (AWS_ACCESS_KEY_ID, AWS_S3_ENDPOINT, GS_ACCESS_KEY_ID, ...)"
            .to_string(),
        e => e.to_string(),
    }
}

fn check_bands(ds: Dataset, path: &Path) -> Result<Dataset> {
    // A few hundred bytes can declare thousands of pixel-interleaved bands: reading band 1
    // would then load a block of every band (found by the raster_header fuzz target: 7168
    // bands, 1.9 GB). flus reads single-band layers.
    let bands = ds.raster_count();
    if bands > MAX_BANDS {
        return Err(Error::raster(
            path,
            format!("has {bands} bands, expected a single-band raster (at most {MAX_BANDS} bands)"),
        ));
    }
    Ok(ds)
}

/// Most bands a raster read by flus may have.
pub const MAX_BANDS: usize = 64;

fn grid_of(ds: &Dataset, path: &Path) -> Result<Grid> {
    let (width, height) = ds.raster_size();
    if width == 0 || height == 0 {
        return Err(Error::raster(
            path,
            format!("empty raster ({width} x {height} cells)"),
        ));
    }
    let geotransform = ds.geo_transform().map_err(|_| {
        Error::raster(
            path,
            "has no geotransform (expected a georeferenced raster)",
        )
    })?;
    Ok(Grid {
        width,
        height,
        geotransform,
        crs_wkt: ds.projection(),
    })
}

/// Reads the header of `path`.
pub fn info(path: &Path) -> Result<RasterInfo> {
    let ds = open(path)?;
    info_of(&ds, path)
}

fn info_of(ds: &Dataset, path: &Path) -> Result<RasterInfo> {
    let grid = grid_of(ds, path)?;
    let bands = ds.raster_count();
    if bands == 0 {
        return Err(Error::raster(path, "has no bands"));
    }
    let band = ds.rasterband(1).map_err(|e| Error::raster(path, e))?;
    Ok(RasterInfo {
        path: path.to_path_buf(),
        grid,
        bands,
        data_type: band.band_type().name(),
        nodata: band.no_data_value(),
        block_size: band.block_size(),
        driver: ds.driver().short_name(),
    })
}

/// Writes `data` to `path` and reads it as a raster: header, then band 1 when it has at
/// most 4 million cells. The body of the `raster_header` fuzz target and of its
/// regression tests: errors are fine, a panic is a bug.
pub fn fuzz_header(path: &Path, data: &[u8]) {
    if std::fs::write(path, data).is_err() {
        return;
    }
    if let Ok(i) = info(path) {
        let _ = same_crs(&i.grid.crs_wkt, &i.grid.crs_wkt);
        let _ = crs_name(&i.grid.crs_wkt);
        if i.grid.width.saturating_mul(i.grid.height) <= 4_000_000 {
            let _ = read_band::<f64>(path, 1);
        }
    }
}

/// True when two WKT strings describe the same CRS (both empty counts as the same).
pub fn same_crs(a: &str, b: &str) -> bool {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => true,
        (false, false) => match (SpatialRef::from_wkt(a), SpatialRef::from_wkt(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
        _ => false,
    }
}

/// Short human name of a CRS (e.g. "WGS 84 / UTM zone 48N"), or the WKT's start.
pub fn crs_name(wkt: &str) -> String {
    if wkt.is_empty() {
        return "no CRS".into();
    }
    SpatialRef::from_wkt(wkt)
        .ok()
        .and_then(|s| s.name())
        .unwrap_or_else(|| wkt.chars().take(60).collect())
}

/// Checks that `other` is on `reference`'s grid (size, placement within `tolerance`
/// cells, CRS); the error names both files and the difference.
pub fn check_same_grid(
    reference: &Path,
    ref_grid: &Grid,
    other: &Path,
    other_grid: &Grid,
    tolerance: f64,
) -> Result<()> {
    if let Some(d) = ref_grid.placement_difference(other_grid, tolerance) {
        return Err(Error::GridMismatch {
            a: reference.to_path_buf(),
            b: other.to_path_buf(),
            difference: d,
            hint: crate::error::ALIGN_HINT,
        });
    }
    if ref_grid.crs_wkt.is_empty() != other_grid.crs_wkt.is_empty() {
        // A raster without a CRS on the same placement: take it as on the reference's
        // CRS (GeoSOS-FLUS tutorial data has such files), but say so.
        tracing::warn!(
            reference = %reference.display(),
            other = %other.display(),
            "one of the two rasters has no CRS; assuming they share {}",
            crs_name(if ref_grid.crs_wkt.is_empty() { &other_grid.crs_wkt } else { &ref_grid.crs_wkt })
        );
        return Ok(());
    }
    if !same_crs(&ref_grid.crs_wkt, &other_grid.crs_wkt) {
        return Err(Error::GridMismatch {
            a: reference.to_path_buf(),
            b: other.to_path_buf(),
            difference: format!(
                "CRS {} vs {}",
                crs_name(&ref_grid.crs_wkt),
                crs_name(&other_grid.crs_wkt)
            ),
            hint: crate::error::ALIGN_HINT,
        });
    }
    Ok(())
}
