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

/// Opens `path` read-only with GDAL, naming the file in the error.
pub fn open(path: &Path) -> Result<Dataset> {
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
        });
    }
    Ok(())
}

/// Reads band `band` (1-based) of `path` entirely, converted to `T`.
pub fn read_band<T: GdalType + Copy + Default>(
    path: &Path,
    band: usize,
) -> Result<(RasterInfo, Vec<T>)> {
    let ds = open(path)?;
    let info = info_of(&ds, path)?;
    if band == 0 || band > info.bands {
        return Err(Error::raster(
            path,
            format!("has {} band(s), band {band} was asked for", info.bands),
        ));
    }
    let (w, h) = (info.grid.width, info.grid.height);
    let mut data = vec![T::default(); w * h];
    let rb = ds.rasterband(band).map_err(|e| Error::raster(path, e))?;
    for (strip, chunk) in data.chunks_mut(STRIP_ROWS * w).enumerate() {
        let rows = chunk.len() / w;
        rb.read_into_slice::<T>(
            (0, (strip * STRIP_ROWS) as isize),
            (w, rows),
            (w, rows),
            chunk,
            None,
        )
        .map_err(|e| {
            Error::raster(
                path,
                format!(
                    "read failed at row {}: the file is truncated or corrupt ({e})",
                    strip * STRIP_ROWS
                ),
            )
        })?;
    }
    Ok((info, data))
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

fn aux_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".aux.xml");
    PathBuf::from(s)
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial.tif"))
}

/// Writes `bands` (each `grid.cells()` values, row-major) as a tiled, DEFLATE-compressed
/// GeoTIFF on `grid`, a strip of rows at a time, to a temporary name that is renamed to
/// `path` only when everything was written.
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
    let tmp = temp_name(path);
    // GDAL reports some write failures (a full disk, a file-size limit) only through
    // its error state, not through the return values of the calls: check it.
    // SAFETY: CPLErrorReset and CPLGetLastError* touch only this thread's error state.
    unsafe { gdal_sys::CPLErrorReset() };
    let mut result = write_geotiff_to(&tmp, path, grid, bands, options);
    let last = unsafe { gdal_sys::CPLGetLastErrorType() };
    if result.is_ok() && last >= gdal_sys::CPLErr::CE_Failure {
        // SAFETY: the message is a NUL-terminated string owned by GDAL, copied at once.
        let msg = unsafe { std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }
            .to_string_lossy()
            .to_string();
        result = Err(Error::raster(path, format!("write failed: {msg}")));
    }
    match result {
        Ok(()) => {
            // GTiff keeps category names in a PAM side file: it moves with the raster.
            let tmp_aux = aux_name(&tmp);
            let aux = aux_name(path);
            let _ = std::fs::remove_file(&aux);
            if tmp_aux.exists() {
                std::fs::rename(&tmp_aux, &aux).map_err(|e| Error::io(&aux, e))?;
            }
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(aux_name(&tmp));
            Err(e)
        }
    }
}

fn write_geotiff_to<T: GdalType + Copy>(
    tmp: &Path,
    path: &Path,
    grid: &Grid,
    bands: &[&[T]],
    options: &WriteOptions,
) -> Result<()> {
    let err = |e: gdal::errors::GdalError| Error::raster(path, format!("write failed: {e}"));
    let driver = DriverManager::get_driver_by_name("GTiff").map_err(err)?;
    let mut copts = RasterCreationOptions::new();
    for (k, v) in [
        ("TILED", "YES"),
        ("BLOCKXSIZE", "256"),
        ("BLOCKYSIZE", "256"),
        ("COMPRESS", "DEFLATE"),
        ("BIGTIFF", "IF_SAFER"),
    ] {
        copts.set_name_value(k, v).map_err(err)?;
    }
    if bands.len() > 1 {
        copts.set_name_value("INTERLEAVE", "BAND").map_err(err)?;
    }
    let mut ds = driver
        .create_with_band_type_with_options::<T, _>(
            tmp,
            grid.width,
            grid.height,
            bands.len(),
            &copts,
        )
        .map_err(err)?;
    ds.set_geo_transform(&grid.geotransform).map_err(err)?;
    if !grid.crs_wkt.is_empty() {
        ds.set_projection(&grid.crs_wkt).map_err(err)?;
    }
    let w = grid.width;
    for (bi, data) in bands.iter().enumerate() {
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
        for (strip, chunk) in data.chunks(STRIP_ROWS * w).enumerate() {
            let rows = chunk.len() / w;
            let mut buf = gdal::raster::Buffer::new((w, rows), chunk.to_vec());
            band.write((0, (strip * STRIP_ROWS) as isize), (w, rows), &mut buf)
                .map_err(err)?;
        }
    }
    ds.flush_cache().map_err(err)?;
    ds.close().map_err(err)?;
    Ok(())
}

fn set_category_names(band: &gdal::raster::RasterBand<'_>, names: &[String]) {
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
