//! GDAL raster I/O: header information, reading bands of any type (whole or by window),
//! warping a layer onto a reference grid, and writing tiled, compressed GeoTIFFs to a
//! temporary name that is renamed on success.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use gdal::raster::{
    ColorEntry, ColorTable, GdalType, PaletteInterpretation, RasterCreationOptions,
};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager, Metadata};

use crate::error::{Error, Result};
use crate::grid::Grid;

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

/// Resampling used when a layer is warped onto the reference grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Nearest neighbour: for class maps, restrictions and zones.
    Nearest,
    /// Bilinear: for continuous drivers.
    Bilinear,
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

/// Warps band 1 of `path` onto `target` (GDAL's warper, `resample`), returning the
/// values as f64 and the nodata value used for cells the source does not cover.
pub fn warp_to_grid(path: &Path, target: &Grid, resample: Resample) -> Result<(Vec<f64>, f64)> {
    let src = open(path)?;
    let src_info = info_of(&src, path)?;
    let nodata = src_info.nodata.unwrap_or(f64::NAN);
    let mem = DriverManager::get_driver_by_name("MEM").map_err(|e| Error::raster(path, e))?;
    let mut dst = mem
        .create_with_band_type::<f64, _>("", target.width, target.height, 1)
        .map_err(|e| Error::raster(path, e))?;
    dst.set_geo_transform(&target.geotransform)
        .map_err(|e| Error::raster(path, e))?;
    let wkt = if target.crs_wkt.is_empty() {
        src_info.grid.crs_wkt.clone()
    } else {
        target.crs_wkt.clone()
    };
    dst.set_projection(&wkt)
        .map_err(|e| Error::raster(path, e))?;
    {
        let mut b = dst.rasterband(1).map_err(|e| Error::raster(path, e))?;
        b.set_no_data_value(Some(nodata))
            .map_err(|e| Error::raster(path, e))?;
        b.fill(nodata, None).map_err(|e| Error::raster(path, e))?;
    }
    let alg = match resample {
        Resample::Nearest => gdal_sys::GDALResampleAlg::GRA_NearestNeighbour,
        Resample::Bilinear => gdal_sys::GDALResampleAlg::GRA_Bilinear,
    };
    // SAFETY: both handles are valid open datasets for the duration of the call; null
    // WKT pointers make GDAL use each dataset's own projection.
    let rv = unsafe {
        gdal_sys::GDALReprojectImage(
            src.c_dataset(),
            std::ptr::null(),
            dst.c_dataset(),
            std::ptr::null(),
            alg,
            0.0,
            0.0,
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rv != gdal_sys::CPLErr::CE_None {
        return Err(Error::raster(
            path,
            "GDAL warp onto the reference grid failed",
        ));
    }
    let mut data = vec![0f64; target.cells()];
    dst.rasterband(1)
        .map_err(|e| Error::raster(path, e))?
        .read_into_slice::<f64>(
            (0, 0),
            (target.width, target.height),
            (target.width, target.height),
            &mut data,
            None,
        )
        .map_err(|e| Error::raster(path, e))?;
    Ok((data, nodata))
}

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

/// Category names of band `band` (1-based) of the raster at `path`: entry i names the
/// value i; empty when the band has none.
pub fn category_names(path: &Path, band: usize) -> Result<Vec<String>> {
    let ds = open(path)?;
    let b = ds.rasterband(band).map_err(|e| Error::raster(path, e))?;
    // GTiff loads its PAM side file (where the names are) lazily, on the first
    // description or metadata read, not on a category-name read
    let _ = b.description();
    // SAFETY: the band handle belongs to `ds`; GDAL owns the returned null-terminated
    // list of C strings, copied here before `ds` is closed.
    let names = unsafe {
        let list = gdal_sys::GDALGetRasterCategoryNames(b.c_rasterband());
        let mut out = Vec::new();
        if !list.is_null() {
            let mut i = 0;
            while !(*list.add(i)).is_null() {
                out.push(
                    std::ffi::CStr::from_ptr(*list.add(i))
                        .to_string_lossy()
                        .to_string(),
                );
                i += 1;
            }
        }
        out
    };
    Ok(names)
}

pub(crate) fn set_category_names(band: &gdal::raster::RasterBand<'_>, names: &[String]) {
    let c: Vec<CString> = names
        .iter()
        .map(|n| CString::new(n.replace('\0', "")).unwrap_or_default())
        .collect();
    let mut ptrs: Vec<*mut std::os::raw::c_char> = c.iter().map(|s| s.as_ptr() as *mut _).collect();
    ptrs.push(std::ptr::null_mut());
    // SAFETY: `ptrs` is a null-terminated array of valid C strings that outlives the
    // call; GDAL copies the list.
    unsafe {
        gdal_sys::GDALSetRasterCategoryNames(band.c_rasterband(), ptrs.as_mut_ptr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            width: 300,
            height: 270,
            geotransform: [500000.0, 30.0, 0.0, 1200000.0, 0.0, -30.0],
            crs_wkt: SpatialRef::from_epsg(32648).unwrap().to_wkt().unwrap(),
        }
    }

    #[test]
    fn writes_tiled_compressed_geotiff_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("classes.tif");
        let g = grid();
        let data: Vec<u8> = (0..g.cells()).map(|i| (i % 5) as u8).collect();
        let opts = WriteOptions {
            nodata: Some(0.0),
            palette: vec![PaletteEntry {
                value: 1,
                name: "forest".into(),
                rgb: [0, 128, 0],
            }],
            band_names: vec!["land use".into()],
        };
        write_geotiff(&p, &g, &[&data], &opts).unwrap();
        let (info, back) = read_band::<u8>(&p, 1).unwrap();
        assert_eq!(back, data);
        assert_eq!(info.nodata, Some(0.0));
        assert_eq!(info.block_size, (256, 256));
        assert!(same_crs(&info.grid.crs_wkt, &g.crs_wkt));
        assert_eq!(info.grid.geotransform, g.geotransform);
        let ds = Dataset::open(&p).unwrap();
        assert_eq!(
            ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
                .as_deref(),
            Some("DEFLATE")
        );
        let band = ds.rasterband(1).unwrap();
        let ct = band.color_table().unwrap();
        assert_eq!(ct.entry_as_rgb(1).unwrap().g, 128);
        // no temporary file is left behind
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        let mut names: Vec<String> = left
            .iter()
            .map(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["classes.tif".to_string(), "classes.tif.aux.xml".to_string()]
        );
    }

    #[test]
    fn a_raster_written_in_strips_is_the_file_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let g = grid(); // 300 x 270: two rows of 256 x 256 blocks
                        // band b, column x, row y: 100000 b + 10 y + x / 4 (exact in f32)
        let value = |b: usize, x: usize, y: usize| (100000 * b + 10 * y) as f32 + x as f32 / 4.0;
        let bands: Vec<Vec<f32>> = (0..2)
            .map(|b| (0..g.cells()).map(|i| value(b, i % 300, i / 300)).collect())
            .collect();
        let opts = WriteOptions {
            nodata: Some(-1.0),
            palette: Vec::new(),
            band_names: vec!["a".into(), "b".into()],
        };
        let whole = dir.path().join("whole.tif");
        write_geotiff(&whole, &g, &[&bands[0], &bands[1]], &opts).unwrap();
        // strips of STRIP_ROWS rows, band after band: the same bytes
        let strips = dir.path().join("strips.tif");
        let mut w = StripWriter::<f32>::create(&strips, &g, 2, &opts).unwrap();
        for (b, band) in bands.iter().enumerate() {
            for rows in band.chunks(STRIP_ROWS * 300) {
                w.write_rows(b, rows).unwrap();
            }
        }
        // nothing under the final name until it is finished
        assert!(!strips.exists());
        w.finish().unwrap();
        assert_eq!(
            std::fs::read(&whole).unwrap(),
            std::fs::read(&strips).unwrap()
        );
        // 7 rows at a time, the bands interleaved: strips straddle the block boundary
        // at row 256; the same values
        let sevens = dir.path().join("sevens.tif");
        let mut w = StripWriter::<f32>::create(&sevens, &g, 2, &opts).unwrap();
        for (a, b) in bands[0].chunks(7 * 300).zip(bands[1].chunks(7 * 300)) {
            w.write_rows(0, a).unwrap();
            w.write_rows(1, b).unwrap();
        }
        w.finish().unwrap();
        for p in [&strips, &sevens] {
            let (_, b1) = read_band::<f32>(p, 1).unwrap();
            let (_, b2) = read_band::<f32>(p, 2).unwrap();
            // row 269, column 299 of band 2: 100000 + 2690 + 74.75
            assert_eq!(b2[269 * 300 + 299], 102764.75);
            // row 256 (first row of the second block row), column 1 of band 1: 2560.25
            assert_eq!(b1[256 * 300 + 1], 2560.25);
            // row 255, column 4 of band 1: 2550 + 1
            assert_eq!(b1[255 * 300 + 4], 2551.0);
            assert_eq!(b1, bands[0]);
            assert_eq!(b2, bands[1]);
        }
    }

    #[test]
    fn an_unfinished_strip_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let g = grid();
        let p = dir.path().join("part.tif");
        let mut w = StripWriter::<u8>::create(&p, &g, 1, &WriteOptions::default()).unwrap();
        w.write_rows(0, &vec![1u8; 300 * 10]).unwrap();
        // a partial row and rows past the bottom are refused
        assert!(w.write_rows(0, &[1u8; 299]).is_err());
        assert!(w.write_rows(0, &vec![1u8; 300 * 261]).is_err());
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("10 of its 270 rows"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(!p.exists());
    }

    #[test]
    fn reads_a_window_and_every_band_type() {
        let dir = tempfile::tempdir().unwrap();
        let g = grid();
        let f: Vec<f32> = (0..g.cells()).map(|i| i as f32 * 0.5).collect();
        let p = dir.path().join("f.tif");
        write_geotiff(&p, &g, &[&f], &WriteOptions::default()).unwrap();
        let win: Vec<f64> = read_window(&p, 1, 10, 20, 3, 2).unwrap();
        assert_eq!(
            win,
            vec![
                (20.0 * 300.0 + 10.0) * 0.5,
                3005.5,
                3006.0,
                3155.0,
                3155.5,
                3156.0
            ]
        );
        let i16s: Vec<i16> = (0..g.cells()).map(|i| (i % 1000) as i16 - 500).collect();
        let p16 = dir.path().join("i16.tif");
        write_geotiff(&p16, &g, &[&i16s], &WriteOptions::default()).unwrap();
        assert_eq!(read_band::<f64>(&p16, 1).unwrap().1[1], -499.0);
        assert_eq!(info(&p16).unwrap().data_type, "Int16");
    }

    #[test]
    fn missing_and_corrupt_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.tif");
        let e = info(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.tif") && e.contains("not found"), "{e}");
        let bad = dir.path().join("bad.tif");
        std::fs::write(&bad, b"II*\0garbage that is not a tiff").unwrap();
        let e = info(&bad).unwrap_err().to_string();
        assert!(
            e.contains("bad.tif") && e.contains("not a readable raster"),
            "{e}"
        );
    }

    #[test]
    fn warp_moves_values_onto_a_shifted_grid() {
        let dir = tempfile::tempdir().unwrap();
        let g = grid();
        let vals: Vec<f32> = (0..g.cells()).map(|i| (i % g.width) as f32).collect();
        let p = dir.path().join("x.tif");
        write_geotiff(
            &p,
            &g,
            &[&vals],
            &WriteOptions {
                nodata: Some(-1.0),
                ..Default::default()
            },
        )
        .unwrap();
        let mut t = g.clone();
        t.geotransform[0] += 60.0; // two cells east
        let (out, nodata) = warp_to_grid(&p, &t, Resample::Nearest).unwrap();
        assert_eq!(nodata, -1.0);
        assert_eq!(out[0], 2.0);
        assert_eq!(out[g.width - 1], -1.0); // east of the source: nodata
    }
}
