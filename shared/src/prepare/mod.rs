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

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{LayerConfig, ZonesConfig};
use crate::error::{Error, Result};
use crate::raster::Resample;

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

mod mem;
mod vector;
mod warp;
mod zones;

pub use vector::{distance, proximity, rasterize, read_features, restriction, VectorFeature};
pub use warp::{slope_aspect, warp};
pub use zones::{zones, Zone, ZoneFields};

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
