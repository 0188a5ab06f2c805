//! Reading rasters: a band whole ([`read_band`]), a strip of rows at a time
//! ([`read_band_strips`], [`RowReader`]) or a window ([`read_window`]).

use std::path::Path;

use gdal::raster::GdalType;
use gdal::Dataset;

use super::{info_of, open, RasterInfo, STRIP_ROWS};
use crate::error::{Error, Result};

/// Opens `path` and checks that it has band `band` (1-based).
fn open_band(path: &Path, band: usize) -> Result<(Dataset, RasterInfo)> {
    let ds = open(path)?;
    let info = info_of(&ds, path)?;
    if band == 0 || band > info.bands {
        return Err(Error::raster(
            path,
            format!("has {} band(s), band {band} was asked for", info.bands),
        ));
    }
    Ok((ds, info))
}

/// Reads the full-width rows `y0..y0 + chunk.len() / width` of `rb` into `chunk`.
fn read_rows<T: GdalType + Copy>(
    rb: &gdal::raster::RasterBand,
    path: &Path,
    y0: usize,
    width: usize,
    chunk: &mut [T],
) -> Result<()> {
    let rows = chunk.len() / width;
    rb.read_into_slice::<T>((0, y0 as isize), (width, rows), (width, rows), chunk, None)
        .map_err(|e| {
            Error::raster(
                path,
                format!("read failed at row {y0}: the file is truncated or corrupt ({e})"),
            )
        })
}

/// Reads band `band` (1-based) of `path` entirely, converted to `T`.
pub fn read_band<T: GdalType + Copy + Default>(
    path: &Path,
    band: usize,
) -> Result<(RasterInfo, Vec<T>)> {
    let (ds, info) = open_band(path, band)?;
    let (w, h) = (info.grid.width, info.grid.height);
    let mut data = vec![T::default(); w * h];
    let rb = ds.rasterband(band).map_err(|e| Error::raster(path, e))?;
    for (strip, chunk) in data.chunks_mut(STRIP_ROWS * w).enumerate() {
        read_rows(&rb, path, strip * STRIP_ROWS, w, chunk)?;
    }
    Ok((info, data))
}

/// Reads band `band` (1-based) of `path` a strip of [`STRIP_ROWS`] rows at a time,
/// converted to `T`: `f(first row, values of the strip's rows)`. Neither a copy of the
/// band nor GDAL's cache of its blocks outgrows a strip. Returns the header.
pub fn read_band_strips<T: GdalType + Copy + Default>(
    path: &Path,
    band: usize,
    mut f: impl FnMut(usize, &[T]) -> Result<()>,
) -> Result<RasterInfo> {
    let (ds, info) = open_band(path, band)?;
    let (w, h) = (info.grid.width, info.grid.height);
    let rb = ds.rasterband(band).map_err(|e| Error::raster(path, e))?;
    let mut data = vec![T::default(); STRIP_ROWS.min(h) * w];
    for y0 in (0..h).step_by(STRIP_ROWS) {
        let rows = STRIP_ROWS.min(h - y0);
        let chunk = &mut data[..rows * w];
        read_rows(&rb, path, y0, w, chunk)?;
        // the strip's blocks are read: out of GDAL's cache
        // SAFETY: the band handle belongs to the open dataset `ds`.
        unsafe { gdal_sys::GDALFlushRasterCache(rb.c_rasterband()) };
        f(y0, chunk)?;
    }
    Ok(info)
}

/// Band `band` of an open raster read a run of full-width rows at a time, in any order,
/// without a copy of the band: each read leaves GDAL's cache of the band empty.
pub struct RowReader {
    ds: Dataset,
    band: usize,
    info: RasterInfo,
}

impl RowReader {
    /// Opens band `band` (1-based) of `path`.
    pub fn open(path: &Path, band: usize) -> Result<Self> {
        let (ds, info) = open_band(path, band)?;
        Ok(Self { ds, band, info })
    }

    /// The raster's header.
    pub fn info(&self) -> &RasterInfo {
        &self.info
    }

    /// Reads rows `y0..y0 + out.len() / width` into `out` (a whole number of rows),
    /// converted to `T`.
    pub fn read<T: GdalType + Copy>(&self, y0: usize, out: &mut [T]) -> Result<()> {
        let path = &self.info.path;
        let w = self.info.grid.width;
        if !out.len().is_multiple_of(w) || y0 + out.len() / w > self.info.grid.height {
            return Err(Error::raster(
                path,
                format!(
                    "{} values asked from row {y0}: expected whole rows of {w} cells within its {} rows",
                    out.len(),
                    self.info.grid.height
                ),
            ));
        }
        let rb = self
            .ds
            .rasterband(self.band)
            .map_err(|e| Error::raster(path, e))?;
        read_rows(&rb, path, y0, w, out)?;
        // SAFETY: the band handle belongs to the open dataset `self.ds`.
        unsafe { gdal_sys::GDALFlushRasterCache(rb.c_rasterband()) };
        Ok(())
    }
}

/// Reads a window (`x`, `y`, `w`, `h` in cells) of band `band` (1-based) of `path`.
pub fn read_window<T: GdalType + Copy + Default>(
    path: &Path,
    band: usize,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
) -> Result<Vec<T>> {
    let ds = open(path)?;
    let (width, height) = ds.raster_size();
    if x + w > width || y + h > height {
        return Err(Error::raster(
            path,
            format!("window {x},{y} {w}x{h} outside the raster's {width}x{height} cells"),
        ));
    }
    let rb = ds.rasterband(band).map_err(|e| Error::raster(path, e))?;
    let mut data = vec![T::default(); w * h];
    rb.read_into_slice::<T>((x as isize, y as isize), (w, h), (w, h), &mut data, None)
        .map_err(|e| Error::raster(path, e))?;
    Ok(data)
}
