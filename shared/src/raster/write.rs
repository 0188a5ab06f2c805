//! Writing rasters: tiled, DEFLATE-compressed GeoTIFFs, whole ([`write_geotiff`]) or a
//! strip of rows at a time ([`StripWriter`]), with nodata, band names and a class map's
//! palette, under a temporary name renamed to the final one when complete.

use std::path::{Path, PathBuf};

use gdal::raster::{
    ColorEntry, ColorTable, GdalType, PaletteInterpretation, RasterCreationOptions,
};
use gdal::{Dataset, DriverManager, Metadata};

use super::categories::set_category_names;
use super::STRIP_ROWS;
use crate::error::{Error, Result};
use crate::grid::Grid;

/// One class entry of a class map's colour table and category names.
#[derive(Clone, Debug)]
pub struct PaletteEntry {
    /// Pixel value.
    pub value: u8,
    /// Class name (shown as category name in QGIS).
    pub name: String,
    /// Colour, RGB.
    pub rgb: [u8; 3],
}

/// How a raster is written.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Nodata value of every band.
    pub nodata: Option<f64>,
    /// Colour table and category names (single-band Byte rasters only).
    pub palette: Vec<PaletteEntry>,
    /// Band descriptions (band names shown by QGIS).
    pub band_names: Vec<String>,
}

/// DEFLATE level of every output unless an [`Encoding`] says otherwise: level 1, not
/// GDAL's default 6. On `flus run`'s whole-study benchmark the outputs' compression was
/// the coordinator's largest CPU cost (about a third of it); level 1 takes less than half
/// the time for files 1.2-1.5 times as large (docs/scaling.md), still half the size of
/// LZW, which InVEST writes. The values are the same at every level.
pub const DEFLATE_LEVEL: u8 = 1;

/// How a [`StripWriter`] compresses its blocks (DEFLATE unless `uncompressed`; the
/// values are the same, only the file's bytes and the time taken differ).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Encoding {
    /// Threads compressing blocks in GDAL (its `NUM_THREADS`); 0 or 1: the writing
    /// thread compresses.
    pub threads: usize,
    /// DEFLATE level 1-12 (GDAL's `ZLEVEL`); `None`: [`DEFLATE_LEVEL`].
    pub level: Option<u8>,
    /// No compression at all (test and benchmark inputs).
    pub uncompressed: bool,
}

pub(crate) fn aux_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".aux.xml");
    PathBuf::from(s)
}

pub(crate) fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial.tif"))
}

/// Writes `bands` (each `grid.cells()` values, row-major) as a tiled, DEFLATE-compressed
/// GeoTIFF on `grid`, a strip of rows at a time, to a temporary name that is renamed to
/// `path` only when everything was written. The same file as a [`StripWriter`] fed the
/// bands one after the other.
pub fn write_geotiff<T: GdalType + Copy>(
    path: &Path,
    grid: &Grid,
    bands: &[&[T]],
    options: &WriteOptions,
) -> Result<()> {
    if bands.is_empty() {
        return Err(Error::raster(path, "nothing to write (no bands)"));
    }
    for b in bands {
        if b.len() != grid.cells() {
            return Err(Error::raster(
                path,
                format!(
                    "band has {} values, the grid {} cells",
                    b.len(),
                    grid.cells()
                ),
            ));
        }
    }
    let mut writer = StripWriter::<T>::create(path, grid, bands.len(), options)?;
    let w = grid.width.max(1);
    for (bi, data) in bands.iter().enumerate() {
        for chunk in data.chunks(STRIP_ROWS * w) {
            writer.write_rows(bi, chunk)?;
        }
    }
    writer.finish()
}

/// A tiled, DEFLATE-compressed GeoTIFF written a few rows at a time, so that neither
/// the caller nor GDAL's block cache holds more than a strip of blocks: every band's
/// rows are appended top to bottom with [`StripWriter::write_rows`], and each band's
/// blocks are flushed to the file as soon as a row of blocks is complete. The file has
/// a temporary name until [`StripWriter::finish`] renames it to its path; dropped
/// unfinished, the temporary file is removed.
///
/// Blocks are stored in the order their rows are completed: a raster written band after
/// band in strips of [`STRIP_ROWS`] rows is byte for byte the file [`write_geotiff`]
/// writes; other strip heights give the same values (the file's bytes may differ).
pub struct StripWriter<T: GdalType + Copy> {
    ds: Option<Dataset>,
    tmp: PathBuf,
    path: PathBuf,
    width: usize,
    height: usize,
    /// Rows written so far, per band.
    rows_done: Vec<usize>,
    _values: std::marker::PhantomData<T>,
}

impl<T: GdalType + Copy> StripWriter<T> {
    /// Creates the temporary file of `path` on `grid` with `bands` bands of type `T`,
    /// their nodata, names and palette from `options`.
    pub fn create(path: &Path, grid: &Grid, bands: usize, options: &WriteOptions) -> Result<Self> {
        Self::create_encoded(path, grid, bands, options, Encoding::default())
    }

    /// [`Self::create`] with the blocks compressed as `encoding` says.
    pub fn create_encoded(
        path: &Path,
        grid: &Grid,
        bands: usize,
        options: &WriteOptions,
        encoding: Encoding,
    ) -> Result<Self> {
        if bands == 0 {
            return Err(Error::raster(path, "nothing to write (no bands)"));
        }
        crate::files::check_output(path)?;
        let tmp = temp_name(path);
        // GDAL reports some write failures (a full disk, a file-size limit) only through
        // its error state, not through the return values of the calls: it is checked
        // when the file is finished.
        // SAFETY: CPLErrorReset touches only this thread's error state.
        unsafe { gdal_sys::CPLErrorReset() };
        match create_geotiff::<T>(&tmp, path, grid, bands, options, encoding) {
            Ok(ds) => Ok(Self {
                ds: Some(ds),
                tmp,
                path: path.to_path_buf(),
                width: grid.width,
                height: grid.height,
                rows_done: vec![0; bands],
                _values: std::marker::PhantomData,
            }),
            Err(e) => {
                remove_partial(&tmp);
                Err(e)
            }
        }
    }

    /// Appends whole rows (`rows.len()` a multiple of the grid width) to band `band`
    /// (0-based), below the rows written to it before.
    pub fn write_rows(&mut self, band: usize, rows: &[T]) -> Result<()> {
        let path = self.path.clone();
        let err = |e: gdal::errors::GdalError| Error::raster(&path, format!("write failed: {e}"));
        let w = self.width;
        let Some(&done) = self.rows_done.get(band) else {
            return Err(Error::raster(
                &path,
                format!(
                    "band {} written, the raster has {} band(s)",
                    band + 1,
                    self.rows_done.len()
                ),
            ));
        };
        if w == 0 || !rows.len().is_multiple_of(w) || done + rows.len() / w > self.height {
            return Err(Error::raster(
                &path,
                format!(
                    "{} values written below row {done} of band {}: expected whole rows of {w} \
                     cells within the {} rows of the grid",
                    rows.len(),
                    band + 1,
                    self.height
                ),
            ));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let ds = self
            .ds
            .as_ref()
            .ok_or_else(|| Error::raster(&path, "write after the file was closed"))?;
        let mut rb = ds.rasterband(band + 1).map_err(err)?;
        // written up to each boundary of a row of blocks, which is then flushed: a block
        // reaches the file once, complete, whatever the caller's strips
        let mut done = done;
        let mut part = rows;
        while !part.is_empty() {
            let room = STRIP_ROWS - done % STRIP_ROWS;
            let n = (part.len() / w).min(room);
            let (now_rows, rest) = part.split_at(n * w);
            let mut buf = gdal::raster::Buffer::new((w, n), now_rows.to_vec());
            rb.write((0, done as isize), (w, n), &mut buf)
                .map_err(err)?;
            done += n;
            self.rows_done[band] = done;
            part = rest;
            if done.is_multiple_of(STRIP_ROWS) || done == self.height {
                // SAFETY: the band handle belongs to the open dataset `ds`.
                let rv = unsafe { gdal_sys::GDALFlushRasterCache(rb.c_rasterband()) };
                if rv != gdal_sys::CPLErr::CE_None {
                    return Err(Error::raster(
                        &path,
                        format!(
                            "write failed: flushing rows up to {done} of band {}",
                            band + 1
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks that every band has all its rows, closes the file and renames it to its
    /// path.
    pub fn finish(mut self) -> Result<()> {
        let path = self.path.clone();
        if let Some(b) = self.rows_done.iter().position(|&r| r != self.height) {
            return Err(Error::raster(
                &path,
                format!(
                    "band {} has {} of its {} rows written; expected every row",
                    b + 1,
                    self.rows_done[b],
                    self.height
                ),
            ));
        }
        let err = |e: gdal::errors::GdalError| Error::raster(&path, format!("write failed: {e}"));
        let mut result = match self.ds.take() {
            Some(mut ds) => ds
                .flush_cache()
                .map_err(err)
                .and_then(|_| ds.close().map_err(err)),
            None => Err(Error::raster(&path, "the file was already closed")),
        };
        // SAFETY: CPLGetLastError* read only this thread's error state.
        let last = unsafe { gdal_sys::CPLGetLastErrorType() };
        if result.is_ok() && last >= gdal_sys::CPLErr::CE_Failure {
            // SAFETY: the message is a NUL-terminated string owned by GDAL, copied at once.
            let msg = unsafe { std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }
                .to_string_lossy()
                .to_string();
            result = Err(Error::raster(&path, format!("write failed: {msg}")));
        }
        if result.is_ok() {
            // GTiff keeps category names in a PAM side file: it moves with the raster.
            let tmp_aux = aux_name(&self.tmp);
            let aux = aux_name(&path);
            let _ = std::fs::remove_file(&aux);
            result = (|| {
                if tmp_aux.exists() {
                    std::fs::rename(&tmp_aux, &aux).map_err(|e| Error::io(&aux, e))?;
                }
                std::fs::rename(&self.tmp, &path).map_err(|e| Error::io(&path, e))?;
                crate::files::record_written(&path);
                Ok(())
            })();
        }
        if result.is_err() {
            remove_partial(&self.tmp);
        }
        result
    }
}

impl<T: GdalType + Copy> Drop for StripWriter<T> {
    fn drop(&mut self) {
        if let Some(ds) = self.ds.take() {
            drop(ds);
            remove_partial(&self.tmp);
        }
    }
}

pub(crate) fn remove_partial(tmp: &Path) {
    let _ = std::fs::remove_file(tmp);
    let _ = std::fs::remove_file(aux_name(tmp));
}

fn create_geotiff<T: GdalType + Copy>(
    tmp: &Path,
    path: &Path,
    grid: &Grid,
    bands: usize,
    options: &WriteOptions,
    encoding: Encoding,
) -> Result<Dataset> {
    let err = |e: gdal::errors::GdalError| Error::raster(path, format!("write failed: {e}"));
    let driver = DriverManager::get_driver_by_name("GTiff").map_err(err)?;
    let mut copts = RasterCreationOptions::new();
    for (k, v) in [
        ("TILED", "YES"),
        ("BLOCKXSIZE", "256"),
        ("BLOCKYSIZE", "256"),
        (
            "COMPRESS",
            if encoding.uncompressed {
                "NONE"
            } else {
                "DEFLATE"
            },
        ),
        ("BIGTIFF", "IF_SAFER"),
    ] {
        copts.set_name_value(k, v).map_err(err)?;
    }
    if bands > 1 {
        copts.set_name_value("INTERLEAVE", "BAND").map_err(err)?;
    }
    if encoding.threads > 1 {
        copts
            .set_name_value("NUM_THREADS", &encoding.threads.to_string())
            .map_err(err)?;
    }
    if !encoding.uncompressed {
        let level = encoding.level.unwrap_or(DEFLATE_LEVEL);
        copts
            .set_name_value("ZLEVEL", &level.clamp(1, 12).to_string())
            .map_err(err)?;
    }
    let mut ds = driver
        .create_with_band_type_with_options::<T, _>(tmp, grid.width, grid.height, bands, &copts)
        .map_err(err)?;
    ds.set_geo_transform(&grid.geotransform).map_err(err)?;
    if !grid.crs_wkt.is_empty() {
        ds.set_projection(&grid.crs_wkt).map_err(err)?;
    }
    for bi in 0..bands {
        let mut band = ds.rasterband(bi + 1).map_err(err)?;
        band.set_no_data_value(options.nodata).map_err(err)?;
        if let Some(name) = options.band_names.get(bi) {
            band.set_description(name).map_err(err)?;
        }
        if !options.palette.is_empty() && bi == 0 {
            let mut table = ColorTable::new(PaletteInterpretation::Rgba);
            let max = options.palette.iter().map(|p| p.value).max().unwrap_or(0);
            let mut names = vec![String::new(); max as usize + 1];
            for p in &options.palette {
                table.set_color_entry(
                    p.value as u16,
                    &ColorEntry::rgba(p.rgb[0] as i16, p.rgb[1] as i16, p.rgb[2] as i16, 255),
                );
                names[p.value as usize] = p.name.clone();
            }
            band.set_color_table(&table);
            set_category_names(&band, &names);
        }
    }
    Ok(ds)
}
