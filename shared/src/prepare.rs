//! `flus prepare`: from raw inputs to layers on one reference grid, with GDAL.
//!
//! Every output is a GeoTIFF on the reference grid (size, geotransform and CRS of the
//! reference land-use map), written by [`raster::write_geotiff`] (tiled, DEFLATE,
//! temporary name renamed at the end):
//!
//! - [`warp`]: a raster warped onto the grid (nearest for classes, bilinear for
//!   continuous values); nearest keeps the source data type, bilinear writes Float32.
//! - [`slope_aspect`]: slope and aspect in degrees from a DEM, which is first warped onto
//!   the grid (bilinear), then run through GDAL's DEM processing (Horn's method, edges
//!   computed). Aspect follows GDAL: 0 = north, clockwise, the direction the slope faces
//!   (downhill). Flat cells, where GDAL writes its nodata value -9999, get
//!   [`ASPECT_FLAT`] (-1) instead, so that they stay valid cells; -9999 (nodata) is kept
//!   only where the DEM has no data.
//! - [`distance`]: distance in map units (metres for projected CRSs) from every cell
//!   centre to the nearest cell touched by the lines or points of a vector file
//!   (rasterised with ALL_TOUCHED, then GDAL proximity with DISTUNITS=GEO), Float32. The
//!   distance is defined on every cell of the grid (no nodata): the study's valid mask
//!   comes from the land-use map. Features outside the grid are seen up to one grid
//!   extent beyond each edge (the proximity is computed on a grid padded that far).
//! - [`restriction`]: 0 inside the polygons (restricted), 1 outside, Byte, no nodata. A
//!   cell is inside when its centre is (GDAL's default rasterisation rule).
//! - [`zones`]: zone code per polygon (1..n in feature order, or an integer attribute),
//!   Int32 with nodata 0 outside every polygon (cell centre rule; a later feature
//!   overwrites an earlier one where they overlap), plus a `code,name` CSV.
//!
//! Vector inputs may be any OGR format (GeoJSON, GeoPackage, Shapefile...); the first
//! layer is used. Geometries are reprojected to the reference CRS when the layer's CRS
//! differs; a layer without a CRS is refused when the reference has one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gdal::cpl::CslStringList;
use gdal::raster::processing::dem::{self, AspectOptions, SlopeOptions};
use gdal::raster::{GdalType, RasterizeOptions};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{FieldValue, Geometry, LayerAccess};
use gdal::{Dataset, DriverManager};
use serde::Serialize;

use crate::config::{LayerConfig, ZonesConfig};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster::{self, Resample, WriteOptions};

/// Aspect value of flat cells (slope 0) in [`slope_aspect`]'s output.
pub const ASPECT_FLAT: f32 = -1.0;
/// Nodata value of the slope and aspect outputs (GDAL's gdaldem value).
pub const DEM_NODATA: f32 = -9999.0;
/// Nodata value of the zones output: cells outside every polygon.
pub const ZONE_NODATA: i32 = 0;

/// What a prepared layer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// A raster warped onto the reference grid.
    Warp,
    /// Slope in degrees from a DEM.
    Slope,
    /// Aspect in degrees from a DEM.
    Aspect,
    /// Distance to vector features, in map units.
    Distance,
    /// Restriction: 0 inside polygons, 1 outside.
    Restriction,
    /// Zone codes from polygons.
    Zones,
}

/// One prepared layer and a summary of its values.
#[derive(Clone, Debug, Serialize)]
pub struct Output {
    /// Layer name (the file is `NAME.tif`).
    pub name: String,
    /// What the layer is.
    pub kind: OutputKind,
    /// The GeoTIFF written.
    pub path: PathBuf,
    /// Cells that are not nodata.
    pub cells_with_data: usize,
    /// Smallest value among the cells with data (`None` when there are none).
    pub min: Option<f64>,
    /// Largest value among the cells with data (`None` when there are none).
    pub max: Option<f64>,
}

/// A `--warp NAME=PATH[:nearest|bilinear]` argument.
#[derive(Clone, Debug, PartialEq)]
pub struct WarpSpec {
    /// Output name.
    pub name: String,
    /// Source raster.
    pub path: PathBuf,
    /// Resampling; `None`: nearest for integer rasters, bilinear for floating point ones.
    pub resample: Option<Resample>,
}

/// Parses a resampling name: `nearest` or `bilinear`.
pub fn parse_resample(name: &str) -> Result<Resample> {
    match name {
        "nearest" => Ok(Resample::Nearest),
        "bilinear" => Ok(Resample::Bilinear),
        other => Err(Error::Data(format!(
            "unknown resampling `{other}`: expected `nearest` or `bilinear`"
        ))),
    }
}

/// Checks an output name: letters, digits, `_` and `-`, not empty.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::Data(format!(
            "layer name `{name}`: expected letters, digits, `_` or `-` (it becomes NAME.tif)"
        )));
    }
    Ok(())
}

/// Parses `NAME=PATH` (the value of `--distance` or `--restrict`; `flag` names the option
/// in errors).
pub fn parse_named_path(flag: &str, value: &str) -> Result<(String, PathBuf)> {
    let (name, path) = value
        .split_once('=')
        .ok_or_else(|| Error::Data(format!("{flag} `{value}`: expected NAME=PATH")))?;
    check_name(name).map_err(|e| Error::Data(format!("{flag} `{value}`: {e}")))?;
    if path.is_empty() {
        return Err(Error::Data(format!(
            "{flag} `{value}`: expected NAME=PATH, the path is empty"
        )));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

/// Parses `NAME=PATH[:nearest|bilinear]` (a `:` after the last `/` starts the
/// resampling name).
pub fn parse_warp_spec(value: &str) -> Result<WarpSpec> {
    let (name, rest) = parse_named_path("--warp", value)?;
    let rest = rest.to_string_lossy().to_string();
    let file_start = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (path, resample) = match rest[file_start..].rfind(':') {
        Some(i) => {
            let at = file_start + i;
            let r = parse_resample(&rest[at + 1..])
                .map_err(|e| Error::Data(format!("--warp `{value}`: {e}")))?;
            (rest[..at].to_string(), Some(r))
        }
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(Error::Data(format!(
            "--warp `{value}`: expected NAME=PATH[:nearest|bilinear], the path is empty"
        )));
    }
    Ok(WarpSpec {
        name,
        path: PathBuf::from(path),
        resample,
    })
}

fn is_nodata(v: f64, nodata: Option<f64>) -> bool {
    v.is_nan() || nodata.is_some_and(|n| v == n)
}

fn summarize(
    name: &str,
    kind: OutputKind,
    path: &Path,
    values: impl Iterator<Item = f64>,
    nodata: Option<f64>,
) -> Output {
    let mut count = 0usize;
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    for v in values {
        if is_nodata(v, nodata) {
            continue;
        }
        count += 1;
        min = min.min(v);
        max = max.max(v);
    }
    Output {
        name: name.to_string(),
        kind,
        path: path.to_path_buf(),
        cells_with_data: count,
        min: (count > 0).then_some(min),
        max: (count > 0).then_some(max),
    }
}

fn write_converted<T: GdalType + Copy>(
    out: &Path,
    grid: &Grid,
    values: &[f64],
    nodata: Option<f64>,
    convert: impl Fn(f64) -> T,
) -> Result<()> {
    let data: Vec<T> = values.iter().map(|&v| convert(v)).collect();
    raster::write_geotiff(
        out,
        grid,
        &[&data],
        &WriteOptions {
            nodata,
            ..Default::default()
        },
    )
}

/// Nodata marker for an integer type when the source declares none: the type's extreme
/// value (largest for unsigned types, smallest for signed ones).
fn integer_sentinel(data_type: &str) -> Option<f64> {
    match data_type {
        "Byte" => Some(u8::MAX as f64),
        "UInt16" => Some(u16::MAX as f64),
        "Int16" => Some(i16::MIN as f64),
        "UInt32" => Some(u32::MAX as f64),
        "Int32" => Some(i32::MIN as f64),
        _ => None,
    }
}

/// Warps band 1 of `src` onto `reference` and writes it to `out`.
///
/// Nearest neighbour keeps the source data type and nodata; when an integer source
/// declares no nodata and the reference reaches beyond it, the type's extreme value
/// (255 for Byte, -32768 for Int16...) becomes the nodata value. Bilinear writes
/// Float32 with the source's nodata (NaN when it declares none and some cells are
/// uncovered). `resample = None` picks nearest for integer sources, bilinear otherwise.
pub fn warp(
    src: &Path,
    reference: &Grid,
    resample: Option<Resample>,
    name: &str,
    out: &Path,
) -> Result<Output> {
    let info = raster::info(src)?;
    let integer = integer_sentinel(&info.data_type).is_some();
    let resample = resample.unwrap_or(if integer {
        Resample::Nearest
    } else {
        Resample::Bilinear
    });
    // Uncovered cells hold the declared nodata, or NaN when the source declares none.
    let (mut values, _) = raster::warp_to_grid(src, reference, resample)?;
    let declared = info.nodata;
    let uncovered = values.iter().any(|v| v.is_nan());
    let data_type = match resample {
        Resample::Nearest => info.data_type.as_str(),
        Resample::Bilinear if info.data_type == "Float64" => "Float64",
        Resample::Bilinear => "Float32",
    };
    let out_nodata = match (declared, integer_sentinel(data_type)) {
        (Some(n), _) => Some(n),
        (None, Some(sentinel)) if uncovered => {
            if values.contains(&sentinel) {
                return Err(Error::raster(
                    src,
                    format!(
                        "declares no nodata, the reference grid reaches beyond it and its \
                         values use {sentinel}, the only free nodata marker of {data_type}: \
                         set a nodata value on the source"
                    ),
                ));
            }
            for v in values.iter_mut().filter(|v| v.is_nan()) {
                *v = sentinel;
            }
            Some(sentinel)
        }
        (None, None) if uncovered => Some(f64::NAN),
        (None, _) => None,
    };
    match data_type {
        "Byte" => write_converted(out, reference, &values, out_nodata, |v| v as u8)?,
        "UInt16" => write_converted(out, reference, &values, out_nodata, |v| v as u16)?,
        "Int16" => write_converted(out, reference, &values, out_nodata, |v| v as i16)?,
        "UInt32" => write_converted(out, reference, &values, out_nodata, |v| v as u32)?,
        "Int32" => write_converted(out, reference, &values, out_nodata, |v| v as i32)?,
        "Float64" => write_converted(out, reference, &values, out_nodata, |v| v)?,
        _ => write_converted(out, reference, &values, out_nodata, |v| v as f32)?,
    }
    Ok(summarize(
        name,
        OutputKind::Warp,
        out,
        values.iter().copied(),
        out_nodata,
    ))
}

fn mem_dataset<T: GdalType>(grid: &Grid, context: &Path) -> Result<Dataset> {
    let err = |e: gdal::errors::GdalError| Error::raster(context, e);
    let mem = DriverManager::get_driver_by_name("MEM").map_err(err)?;
    let mut ds = mem
        .create_with_band_type::<T, _>("", grid.width, grid.height, 1)
        .map_err(err)?;
    ds.set_geo_transform(&grid.geotransform).map_err(err)?;
    if !grid.crs_wkt.is_empty() {
        ds.set_projection(&grid.crs_wkt).map_err(err)?;
    }
    Ok(ds)
}

fn read_all<T: GdalType + Copy + Default>(ds: &Dataset, context: &Path) -> Result<Vec<T>> {
    let (w, h) = ds.raster_size();
    let mut data = vec![T::default(); w * h];
    ds.rasterband(1)
        .map_err(|e| Error::raster(context, e))?
        .read_into_slice::<T>((0, 0), (w, h), (w, h), &mut data, None)
        .map_err(|e| Error::raster(context, e))?;
    Ok(data)
}

fn write_all<T: GdalType + Copy>(ds: &Dataset, data: &[T], context: &Path) -> Result<()> {
    let (w, h) = ds.raster_size();
    let mut buf = gdal::raster::Buffer::new((w, h), data.to_vec());
    ds.rasterband(1)
        .map_err(|e| Error::raster(context, e))?
        .write((0, 0), (w, h), &mut buf)
        .map_err(|e| Error::raster(context, e))
}

/// Marks DEM cells without data inside GDAL's DEM processing (never a real elevation).
const DEM_INPUT_NODATA: f32 = f32::MIN;

/// Slope and aspect (degrees) of `dem` on `reference`, written to `slope_out` and
/// `aspect_out` (Float32, nodata [`DEM_NODATA`]).
///
/// The DEM is warped onto the grid (bilinear) first. Slope uses Horn's method with edges
/// computed; a geographic reference CRS uses GDAL's scale of 111120 m per degree.
/// Aspect: 0 = north, 90 = east (clockwise), the downhill direction; flat cells get
/// [`ASPECT_FLAT`].
pub fn slope_aspect(
    dem: &Path,
    reference: &Grid,
    slope_out: &Path,
    aspect_out: &Path,
) -> Result<(Output, Output)> {
    let (values, nodata) = raster::warp_to_grid(dem, reference, Resample::Bilinear)?;
    let has_data: Vec<bool> = values
        .iter()
        .map(|&v| !(v.is_nan() || v == nodata))
        .collect();
    let input: Vec<f32> = values
        .iter()
        .zip(&has_data)
        .map(|(&v, &ok)| if ok { v as f32 } else { DEM_INPUT_NODATA })
        .collect();
    let src = mem_dataset::<f32>(reference, dem)?;
    write_all(&src, &input, dem)?;
    src.rasterband(1)
        .map_err(|e| Error::raster(dem, e))?
        .set_no_data_value(Some(DEM_INPUT_NODATA as f64))
        .map_err(|e| Error::raster(dem, e))?;
    let geographic = !reference.crs_wkt.is_empty()
        && SpatialRef::from_wkt(&reference.crs_wkt).is_ok_and(|s| s.is_geographic());

    let mut sopts = SlopeOptions::new();
    sopts.with_output_format("MEM").with_compute_edges(true);
    if geographic {
        sopts.with_scale(111120.0);
    }
    let slope_ds = dem::slope(&src, "", &sopts)
        .map_err(|e| Error::raster(dem, format!("GDAL slope failed: {e}")))?;
    let mut slope: Vec<f32> = read_all(&slope_ds, dem)?;

    let mut aopts = AspectOptions::new();
    aopts.with_output_format("MEM").with_compute_edges(true);
    let aspect_ds = dem::aspect(&src, "", &aopts)
        .map_err(|e| Error::raster(dem, format!("GDAL aspect failed: {e}")))?;
    let mut aspect: Vec<f32> = read_all(&aspect_ds, dem)?;
    drop(src);

    for i in 0..has_data.len() {
        if !has_data[i] {
            slope[i] = DEM_NODATA;
            aspect[i] = DEM_NODATA;
        } else if aspect[i] == DEM_NODATA {
            // gdaldem marks flat cells with its nodata value: keep them as data.
            aspect[i] = ASPECT_FLAT;
        }
    }
    let opts = WriteOptions {
        nodata: Some(DEM_NODATA as f64),
        ..Default::default()
    };
    raster::write_geotiff(slope_out, reference, &[&slope], &opts)?;
    raster::write_geotiff(aspect_out, reference, &[&aspect], &opts)?;
    let nd = Some(DEM_NODATA as f64);
    Ok((
        summarize(
            "slope",
            OutputKind::Slope,
            slope_out,
            slope.iter().map(|&v| v as f64),
            nd,
        ),
        summarize(
            "aspect",
            OutputKind::Aspect,
            aspect_out,
            aspect.iter().map(|&v| v as f64),
            nd,
        ),
    ))
}

/// One feature of a vector file, its geometry in the reference CRS.
pub struct VectorFeature {
    /// 0-based position of the feature in the layer.
    pub index: usize,
    /// Geometry, reprojected to the reference CRS when needed.
    pub geometry: Geometry,
    /// Values of the requested attributes (in the order asked for).
    pub values: Vec<Option<FieldValue>>,
}

fn traditional(mut s: SpatialRef) -> SpatialRef {
    s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    s
}

/// Reads the features of the first layer of `path`, reprojected to `reference`'s CRS,
/// with the values of the attributes `fields`. Features without geometry are skipped;
/// a layer without any feature with a geometry is an error.
pub fn read_features(path: &Path, reference: &Grid, fields: &[&str]) -> Result<Vec<VectorFeature>> {
    if !path.exists() {
        return Err(Error::vector(path, "file not found"));
    }
    let ds = Dataset::open(path)
        .map_err(|e| Error::vector(path, format!("not a readable vector file ({e})")))?;
    if ds.layer_count() == 0 {
        return Err(Error::vector(
            path,
            "has no vector layer (expected lines, points or polygons)",
        ));
    }
    let mut layer = ds.layer(0).map_err(|e| Error::vector(path, e))?;
    let mut field_index = Vec::with_capacity(fields.len());
    for f in fields {
        let i = layer.defn().field_index(f).map_err(|_| {
            let names: Vec<String> = layer.defn().fields().map(|d| d.name()).collect();
            Error::vector(
                path,
                format!("has no attribute `{f}` (attributes: {})", names.join(", ")),
            )
        })?;
        field_index.push(i);
    }
    let transform = match (layer.spatial_ref(), reference.crs_wkt.is_empty()) {
        (None, false) => {
            return Err(Error::vector(
                path,
                format!(
                    "has no CRS while the reference grid is in {}: give the file a CRS",
                    raster::crs_name(&reference.crs_wkt)
                ),
            ))
        }
        (Some(s), true) => {
            tracing::warn!(
                file = %path.display(),
                "the reference grid has no CRS; taking the vector's coordinates as they are ({})",
                s.name().unwrap_or_default()
            );
            None
        }
        (None, true) => None,
        (Some(s), false) => {
            let target = SpatialRef::from_wkt(&reference.crs_wkt)
                .map_err(|e| Error::vector(path, format!("reference CRS unreadable: {e}")))?;
            if s == target {
                None
            } else {
                let ct = CoordTransform::new(&traditional(s.clone()), &traditional(target))
                    .map_err(|e| {
                        Error::vector(
                            path,
                            format!(
                                "no transformation from {} to {}: {e}",
                                s.name().unwrap_or_default(),
                                raster::crs_name(&reference.crs_wkt)
                            ),
                        )
                    })?;
                Some(ct)
            }
        }
    };
    let mut out = Vec::new();
    for (index, feature) in layer.features().enumerate() {
        let Some(g) = feature.geometry() else {
            continue;
        };
        if g.is_empty() {
            continue;
        }
        let geometry = match &transform {
            Some(ct) => g.transform(ct).map_err(|e| {
                Error::vector(
                    path,
                    format!("feature {index}: reprojection to the reference CRS failed ({e})"),
                )
            })?,
            None => g.clone(),
        };
        let mut values = Vec::with_capacity(field_index.len());
        for &i in &field_index {
            values.push(feature.field(i).map_err(|e| {
                Error::vector(path, format!("feature {index}: attribute unreadable ({e})"))
            })?);
        }
        out.push(VectorFeature {
            index,
            geometry,
            values,
        });
    }
    if out.is_empty() {
        return Err(Error::vector(
            path,
            "has no features (expected at least one feature with a geometry)",
        ));
    }
    Ok(out)
}

/// Burns `geometries` (in `grid`'s CRS) with `burn` values onto `grid` initialised with
/// `init`, with GDAL's rasteriser; `all_touched` burns every cell a geometry touches,
/// otherwise cells whose centre is inside. `context` names the source in errors.
pub fn rasterize(
    grid: &Grid,
    geometries: &[Geometry],
    burn: &[f64],
    init: f64,
    all_touched: bool,
    context: &Path,
) -> Result<Vec<f64>> {
    let mut ds = mem_dataset::<f64>(grid, context)?;
    ds.rasterband(1)
        .map_err(|e| Error::raster(context, e))?
        .fill(init, None)
        .map_err(|e| Error::raster(context, e))?;
    let options = RasterizeOptions {
        all_touched,
        ..Default::default()
    };
    gdal::raster::rasterize(&mut ds, &[1], geometries, burn, Some(options))
        .map_err(|e| Error::vector(context, format!("rasterisation failed: {e}")))?;
    read_all(&ds, context)
}

/// Distance in map units from every cell centre of `grid` to the nearest cell centre
/// where `targets` is non-zero (GDAL proximity, DISTUNITS=GEO).
pub fn proximity(grid: &Grid, targets: &[u8], context: &Path) -> Result<Vec<f32>> {
    if targets.len() != grid.cells() {
        return Err(Error::raster(
            context,
            format!(
                "{} target cells for a grid of {} cells",
                targets.len(),
                grid.cells()
            ),
        ));
    }
    let src = mem_dataset::<u8>(grid, context)?;
    let dst = mem_dataset::<f32>(grid, context)?;
    let mut opts = CslStringList::new();
    for (k, v) in [("VALUES", "1"), ("DISTUNITS", "GEO")] {
        opts.set_name_value(k, v)
            .map_err(|e| Error::raster(context, e))?;
    }
    let binary: Vec<u8> = targets.iter().map(|&t| u8::from(t != 0)).collect();
    write_all(&src, &binary, context)?;
    let sb = src.rasterband(1).map_err(|e| Error::raster(context, e))?;
    let db = dst.rasterband(1).map_err(|e| Error::raster(context, e))?;
    // SAFETY: both bands belong to datasets alive for the whole call; the option list
    // outlives it and GDAL only reads it.
    let rv = unsafe {
        gdal_sys::GDALComputeProximity(
            sb.c_rasterband(),
            db.c_rasterband(),
            opts.as_ptr(),
            None,
            std::ptr::null_mut(),
        )
    };
    if rv != gdal_sys::CPLErr::CE_None {
        return Err(Error::raster(context, "GDAL proximity failed"));
    }
    read_all(&dst, context)
}

/// `grid` grown on each side to cover `envelope` (minx, maxx, miny, maxy), by at most
/// the grid's own width (columns) or height (rows). Returns the grown grid and the
/// column and row of the original grid's first cell in it. Rotated grids are not grown.
fn padded_grid(grid: &Grid, envelope: (f64, f64, f64, f64)) -> (Grid, usize, usize) {
    let g = &grid.geotransform;
    if g[2] != 0.0 || g[4] != 0.0 || g[1] == 0.0 || g[5] == 0.0 {
        return (grid.clone(), 0, 0);
    }
    let (minx, maxx, miny, maxy) = envelope;
    // Extent of the envelope in (fractional) columns and rows of the grid.
    let cols = [(minx - g[0]) / g[1], (maxx - g[0]) / g[1]];
    let rows = [(miny - g[3]) / g[5], (maxy - g[3]) / g[5]];
    let (c0, c1) = (cols[0].min(cols[1]), cols[0].max(cols[1]));
    let (r0, r1) = (rows[0].min(rows[1]), rows[0].max(rows[1]));
    let grow = |before: f64, limit: usize| -> usize {
        if before.is_finite() && before > 0.0 {
            (before.ceil() as usize).min(limit)
        } else {
            0
        }
    };
    let left = grow(-c0, grid.width);
    let right = grow(c1 - grid.width as f64, grid.width);
    let top = grow(-r0, grid.height);
    let bottom = grow(r1 - grid.height as f64, grid.height);
    let mut gt = *g;
    gt[0] -= left as f64 * g[1];
    gt[3] -= top as f64 * g[5];
    (
        Grid {
            width: grid.width + left + right,
            height: grid.height + top + bottom,
            geotransform: gt,
            crs_wkt: grid.crs_wkt.clone(),
        },
        left,
        top,
    )
}

fn envelope_of(features: &[VectorFeature]) -> (f64, f64, f64, f64) {
    let mut e = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for f in features {
        let g = f.geometry.envelope();
        e.0 = e.0.min(g.MinX);
        e.1 = e.1.max(g.MaxX);
        e.2 = e.2.min(g.MinY);
        e.3 = e.3.max(g.MaxY);
    }
    e
}

/// Distance (map units, Float32, no nodata) from every cell of `reference` to the
/// nearest line or point of `vector`, written to `out`.
pub fn distance(vector: &Path, reference: &Grid, name: &str, out: &Path) -> Result<Output> {
    let features = read_features(vector, reference, &[])?;
    let (padded, left, top) = padded_grid(reference, envelope_of(&features));
    let geometries: Vec<Geometry> = features.into_iter().map(|f| f.geometry).collect();
    let burn = vec![1.0; geometries.len()];
    let burnt = rasterize(&padded, &geometries, &burn, 0.0, true, vector)?;
    let targets: Vec<u8> = burnt.iter().map(|&v| u8::from(v != 0.0)).collect();
    if !targets.contains(&1) {
        return Err(Error::vector(
            vector,
            "no feature lies on the reference grid or within one grid extent of it",
        ));
    }
    let dist = proximity(&padded, &targets, vector)?;
    let mut data = Vec::with_capacity(reference.cells());
    for row in 0..reference.height {
        let start = (row + top) * padded.width + left;
        data.extend_from_slice(&dist[start..start + reference.width]);
    }
    raster::write_geotiff(out, reference, &[&data], &WriteOptions::default())?;
    Ok(summarize(
        name,
        OutputKind::Distance,
        out,
        data.iter().map(|&v| v as f64),
        None,
    ))
}

/// Restriction layer from the polygons of `vector`: 0 where a cell's centre is inside a
/// polygon (restricted), 1 elsewhere; Byte, no nodata; written to `out`.
pub fn restriction(vector: &Path, reference: &Grid, name: &str, out: &Path) -> Result<Output> {
    let features = read_features(vector, reference, &[])?;
    let geometries: Vec<Geometry> = features.into_iter().map(|f| f.geometry).collect();
    let burn = vec![0.0; geometries.len()];
    let values = rasterize(reference, &geometries, &burn, 1.0, false, vector)?;
    let data: Vec<u8> = values.iter().map(|&v| v as u8).collect();
    raster::write_geotiff(out, reference, &[&data], &WriteOptions::default())?;
    Ok(summarize(
        name,
        OutputKind::Restriction,
        out,
        values.iter().copied(),
        None,
    ))
}

/// Where zone codes and names come from.
#[derive(Clone, Debug, Default)]
pub struct ZoneFields {
    /// Integer attribute holding the zone code (>= 1); `None`: 1..n in feature order.
    pub code: Option<String>,
    /// Attribute holding the zone name; `None`: the name is the code.
    pub name: Option<String>,
}

/// One zone: its code and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// Zone code in the raster.
    pub code: i32,
    /// Zone name.
    pub name: String,
}

fn field_to_code(v: &Option<FieldValue>) -> Option<i64> {
    match v {
        Some(FieldValue::IntegerValue(i)) => Some(*i as i64),
        Some(FieldValue::Integer64Value(i)) => Some(*i),
        Some(FieldValue::RealValue(r)) if r.fract() == 0.0 && r.abs() < 1e15 => Some(*r as i64),
        Some(FieldValue::StringValue(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn field_to_name(v: &Option<FieldValue>) -> String {
    match v {
        None => String::new(),
        Some(FieldValue::StringValue(s)) => s.clone(),
        Some(FieldValue::IntegerValue(i)) => i.to_string(),
        Some(FieldValue::Integer64Value(i)) => i.to_string(),
        Some(FieldValue::RealValue(r)) => r.to_string(),
        Some(other) => format!("{other:?}"),
    }
}

/// Zone raster from the polygons of `vector`: Int32 zone codes ([`ZONE_NODATA`] = 0
/// outside every polygon) written to `out`, and the `code,name` table (sorted by code)
/// written to `table`. Features sharing a code must share a name.
pub fn zones(
    vector: &Path,
    reference: &Grid,
    fields: &ZoneFields,
    out: &Path,
    table: &Path,
) -> Result<(Output, Vec<Zone>)> {
    let mut asked: Vec<&str> = Vec::new();
    if let Some(c) = &fields.code {
        asked.push(c);
    }
    if let Some(n) = &fields.name {
        asked.push(n);
    }
    let features = read_features(vector, reference, &asked)?;
    let mut codes = Vec::with_capacity(features.len());
    let mut by_code: BTreeMap<i32, (usize, String)> = BTreeMap::new();
    for (k, f) in features.iter().enumerate() {
        let code = match &fields.code {
            Some(field) => {
                let v = &f.values[0];
                match field_to_code(v).and_then(|c| i32::try_from(c).ok()) {
                    Some(c) if c >= 1 => c,
                    _ => {
                        return Err(Error::vector(
                            vector,
                            format!(
                                "feature {}: zone code attribute `{field}` holds {}, expected \
                                 a whole number from 1 to {} (0 marks cells outside every zone)",
                                f.index,
                                v.as_ref()
                                    .map(|x| format!("{x:?}"))
                                    .unwrap_or_else(|| "nothing (null)".into()),
                                i32::MAX
                            ),
                        ))
                    }
                }
            }
            None => i32::try_from(k + 1)
                .map_err(|_| Error::vector(vector, "more zones than an Int32 raster can number"))?,
        };
        let name = match &fields.name {
            Some(_) => field_to_name(f.values.last().unwrap_or(&None)),
            None => code.to_string(),
        };
        if let Some((first, prev)) = by_code.get(&code) {
            if *prev != name {
                return Err(Error::vector(
                    vector,
                    format!(
                        "zone code {code} is used by feature {first} (`{prev}`) and feature {} \
                         (`{name}`): expected one name per code",
                        f.index
                    ),
                ));
            }
        } else {
            by_code.insert(code, (f.index, name));
        }
        codes.push(code as f64);
    }
    let geometries: Vec<Geometry> = features.into_iter().map(|f| f.geometry).collect();
    let values = rasterize(
        reference,
        &geometries,
        &codes,
        ZONE_NODATA as f64,
        false,
        vector,
    )?;
    let data: Vec<i32> = values.iter().map(|&v| v as i32).collect();
    raster::write_geotiff(
        out,
        reference,
        &[&data],
        &WriteOptions {
            nodata: Some(ZONE_NODATA as f64),
            ..Default::default()
        },
    )?;
    let zones: Vec<Zone> = by_code
        .into_iter()
        .map(|(code, (_, name))| Zone { code, name })
        .collect();
    let rows: Vec<Vec<String>> = zones
        .iter()
        .map(|z| vec![z.code.to_string(), z.name.clone()])
        .collect();
    crate::files::write_csv(table, &["code".into(), "name".into()], &rows)?;
    Ok((
        summarize(
            "zones",
            OutputKind::Zones,
            out,
            values.iter().copied(),
            Some(ZONE_NODATA as f64),
        ),
        zones,
    ))
}

#[derive(Serialize)]
struct PreparedToml {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    drivers: Vec<LayerConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    restrictions: Vec<LayerConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zones: Option<ZonesConfig>,
}

fn relative(dir: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The `[[drivers]]`, `[[restrictions]]` and `[zones]` entries of `outputs` as study
/// config TOML, paths relative to `dir` (where the outputs were written).
pub fn prepared_toml(dir: &Path, outputs: &[Output]) -> Result<String> {
    let layer = |o: &Output| LayerConfig {
        name: o.name.clone(),
        path: relative(dir, &o.path),
        band: 1,
        nodata: None,
    };
    let doc = PreparedToml {
        drivers: outputs
            .iter()
            .filter(|o| {
                matches!(
                    o.kind,
                    OutputKind::Warp
                        | OutputKind::Slope
                        | OutputKind::Aspect
                        | OutputKind::Distance
                )
            })
            .map(layer)
            .collect(),
        restrictions: outputs
            .iter()
            .filter(|o| o.kind == OutputKind::Restriction)
            .map(layer)
            .collect(),
        zones: outputs
            .iter()
            .find(|o| o.kind == OutputKind::Zones)
            .map(|o| ZonesConfig {
                path: relative(dir, &o.path),
                field: None,
            }),
    };
    let body = toml::to_string(&doc)
        .map_err(|e| Error::Data(format!("prepared.toml could not be written: {e}")))?;
    Ok(format!(
        "# Written by `flus prepare`: layers on the reference grid. Paste into a study.toml\n\
         # (paths are relative to this folder; zone names are in the CSV beside the zones raster).\n\n{body}"
    ))
}
