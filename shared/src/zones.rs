//! Zones (cities, counties, ...) on the study grid: integer codes per cell, read from a
//! raster on the same grid or rasterised from polygons with GDAL, with a name per code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gdal::raster::{rasterize, RasterizeOptions};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Feature, FieldValue, Geometry, Layer, LayerAccess};
use gdal::{Dataset, DriverManager};

use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster;

/// Zone codes on a grid.
#[derive(Clone, Debug)]
pub struct Zones {
    /// The file the zones come from.
    pub path: PathBuf,
    /// Zone code per cell as f64 (row-major); NaN or `nodata` = outside every zone.
    pub values: Vec<f64>,
    /// Declared nodata value.
    pub nodata: Option<f64>,
    /// Name of each zone code (polygon zones); empty for raster zones.
    pub names: BTreeMap<i64, String>,
}

impl Zones {
    /// The name of `zone`: its name when known, else its code.
    pub fn name_of(&self, zone: i64) -> String {
        self.names
            .get(&zone)
            .cloned()
            .unwrap_or_else(|| zone.to_string())
    }
}

/// True when GDAL opens `path` as a vector dataset with at least one layer and no bands.
pub fn is_vector(path: &Path) -> Result<bool> {
    let ds = raster::open(path)?;
    Ok(ds.raster_count() == 0 && ds.layer_count() > 0)
}

/// Reads zone codes from band 1 of the raster `path`, which must be on `grid` (the
/// grid of `reference`); the error names both files.
pub fn zones_from_raster(path: &Path, reference: &Path, grid: &Grid) -> Result<Zones> {
    let (info, values) = raster::read_band::<f64>(path, 1)?;
    raster::check_same_grid(reference, grid, path, &info.grid, 0.01)?;
    Ok(Zones {
        path: path.to_path_buf(),
        values,
        nodata: info.nodata,
        names: BTreeMap::new(),
    })
}

fn is_areal(g: &Geometry) -> bool {
    // SAFETY: OGR_GT_Flatten is a pure function of the type code.
    let t = unsafe { gdal_sys::OGR_GT_Flatten(g.geometry_type()) };
    matches!(
        t,
        gdal_sys::OGRwkbGeometryType::wkbPolygon
            | gdal_sys::OGRwkbGeometryType::wkbMultiPolygon
            | gdal_sys::OGRwkbGeometryType::wkbCurvePolygon
            | gdal_sys::OGRwkbGeometryType::wkbMultiSurface
    )
}

/// Rasterises the polygons of the first layer of `path` onto `grid` with GDAL (a cell
/// belongs to a polygon when its centre is inside; where polygons overlap the later
/// feature wins). Zone codes:
/// - no `field`: the feature's position in the layer, 1-based, named by its FID;
/// - an integer `field` (or a real one holding whole numbers): the field's value;
/// - a text `field`: its distinct values sorted, numbered 1.., named by the value.
///
/// Geometries are reprojected to the grid's CRS when both CRSs are known.
pub fn zones_from_polygons(path: &Path, field: Option<&str>, grid: &Grid) -> Result<Zones> {
    let ds = raster::open(path)?;
    if ds.layer_count() == 0 {
        return Err(Error::vector(
            path,
            "has no vector layer, expected polygons",
        ));
    }
    let mut layer = ds
        .layer(0)
        .map_err(|e| Error::vector(path, format!("cannot read layer 1 ({e})")))?;
    let field_info = field_index(&layer, path, field)?;
    let transform = reprojection(&layer, path, grid)?;
    let mut geoms: Vec<Geometry> = Vec::new();
    let mut keys: Vec<Key> = Vec::new();
    let mut names: BTreeMap<i64, String> = BTreeMap::new();
    for (pos, feature) in layer.features().enumerate() {
        let fid = feature
            .fid()
            .map(|f| f.to_string())
            .unwrap_or_else(|| pos.to_string());
        geoms.push(feature_polygon(&feature, &fid, path, transform.as_ref())?);
        let key = match &field_info {
            None => {
                let code = pos as i64 + 1;
                names.insert(code, fid.clone());
                Key::Code(code)
            }
            Some((name, idx)) => field_key(&feature, &fid, name, *idx, path)?,
        };
        keys.push(key);
    }
    if geoms.is_empty() {
        return Err(Error::vector(
            path,
            "has no features, expected zone polygons",
        ));
    }
    let burn = zone_codes(&keys, field_info.is_some(), &mut names);
    let values = burn_on_grid(path, grid, &geoms, &burn)?;
    Ok(Zones {
        path: path.to_path_buf(),
        values,
        nodata: None,
        names,
    })
}

/// A feature's zone as its field holds it: a code, or a text numbered later.
enum Key {
    /// A zone code.
    Code(i64),
    /// A zone name, numbered with the other names.
    Text(String),
}

/// The zone field `field`, when given, as (name, index) in the fields of `layer`; an
/// error listing the fields when there is no such field.
fn field_index(
    layer: &Layer<'_>,
    path: &Path,
    field: Option<&str>,
) -> Result<Option<(String, usize)>> {
    let Some(name) = field else {
        return Ok(None);
    };
    let defn = layer.defn();
    let names: Vec<String> = defn.fields().map(|f| f.name()).collect();
    let idx = names.iter().position(|n| n == name).ok_or_else(|| {
        Error::vector(
            path,
            format!("no field `{name}` (fields: {})", names.join(", ")),
        )
    })?;
    Ok(Some((name.to_string(), idx)))
}

/// The transformation from the CRS of `layer` to the CRS of `grid`, when both are known
/// and differ.
fn reprojection(layer: &Layer<'_>, path: &Path, grid: &Grid) -> Result<Option<CoordTransform>> {
    let target_srs = if grid.crs_wkt.is_empty() {
        None
    } else {
        let mut s = SpatialRef::from_wkt(&grid.crs_wkt)
            .map_err(|e| Error::vector(path, format!("grid CRS not understood ({e})")))?;
        s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        Some(s)
    };
    let layer_srs = layer.spatial_ref().map(|mut s| {
        s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        s
    });
    Ok(match (&layer_srs, &target_srs) {
        (Some(src), Some(dst)) if src != dst => {
            Some(CoordTransform::new(src, dst).map_err(|e| {
                Error::vector(path, format!("cannot reproject to the grid's CRS ({e})"))
            })?)
        }
        _ => None,
    })
}

/// The geometry of feature `fid`, reprojected by `transform` when given; an error when
/// it has none or is not a polygon or multipolygon.
fn feature_polygon(
    feature: &Feature<'_>,
    fid: &str,
    path: &Path,
    transform: Option<&CoordTransform>,
) -> Result<Geometry> {
    let g = feature.geometry().ok_or_else(|| {
        Error::vector(
            path,
            format!("feature {fid} has no geometry, expected a polygon"),
        )
    })?;
    if !is_areal(g) {
        return Err(Error::vector(
            path,
            format!(
                "feature {fid} is a {}, expected a polygon or multipolygon",
                g.geometry_name()
            ),
        ));
    }
    Ok(match transform {
        Some(t) => g.transform(t).map_err(|e| {
            Error::vector(path, format!("feature {fid}: reprojection failed ({e})"))
        })?,
        None => g.clone(),
    })
}

/// The zone of feature `fid` in its field `name` (at `idx`): an integer, a real holding
/// a whole number, or a text; an error when the field is empty or holds anything else.
fn field_key(feature: &Feature<'_>, fid: &str, name: &str, idx: usize, path: &Path) -> Result<Key> {
    let value = feature
        .field(idx)
        .map_err(|e| Error::vector(path, format!("feature {fid}, field `{name}`: {e}")))?
        .ok_or_else(|| {
            Error::vector(
                path,
                format!("feature {fid}: field `{name}` is empty, expected a zone"),
            )
        })?;
    Ok(match value {
        FieldValue::IntegerValue(v) => Key::Code(v.into()),
        FieldValue::Integer64Value(v) => Key::Code(v),
        FieldValue::RealValue(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Key::Code(v as i64),
        FieldValue::RealValue(v) => {
            return Err(Error::vector(
                path,
                format!("feature {fid}: field `{name}` is {v}, expected a whole-number zone code"),
            ))
        }
        FieldValue::StringValue(s) => Key::Text(s),
        other => {
            return Err(Error::vector(
                path,
                format!("feature {fid}: field `{name}` holds {other:?}, expected an integer or a text zone name"),
            ))
        }
    })
}

/// The code burnt for each of `keys`: a code as it is, a text numbered 1.. in the
/// sorted order of the distinct texts. Adds to `names` each text under its code and,
/// when the zones come from a field (`from_field`), each code not yet named under itself.
fn zone_codes(keys: &[Key], from_field: bool, names: &mut BTreeMap<i64, String>) -> Vec<f64> {
    let texts: BTreeSet<&str> = keys
        .iter()
        .filter_map(|k| match k {
            Key::Text(s) => Some(s.as_str()),
            Key::Code(_) => None,
        })
        .collect();
    let text_code: BTreeMap<&str, i64> = texts
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as i64 + 1))
        .collect();
    let mut burn = Vec::with_capacity(keys.len());
    for k in keys {
        let code = match k {
            Key::Code(c) => *c,
            Key::Text(s) => {
                let c = text_code[s.as_str()];
                names.insert(c, s.clone());
                c
            }
        };
        if from_field && matches!(k, Key::Code(_)) {
            names.entry(code).or_insert_with(|| code.to_string());
        }
        burn.push(code as f64);
    }
    burn
}

fn burn_on_grid(path: &Path, grid: &Grid, geoms: &[Geometry], burn: &[f64]) -> Result<Vec<f64>> {
    let err = |e: gdal::errors::GdalError| Error::vector(path, format!("rasterising failed ({e})"));
    let mem = DriverManager::get_driver_by_name("MEM").map_err(err)?;
    let mut dst: Dataset = mem
        .create_with_band_type::<f64, _>("", grid.width, grid.height, 1)
        .map_err(err)?;
    dst.set_geo_transform(&grid.geotransform).map_err(err)?;
    if !grid.crs_wkt.is_empty() {
        dst.set_projection(&grid.crs_wkt).map_err(err)?;
    }
    dst.rasterband(1)
        .map_err(err)?
        .fill(f64::NAN, None)
        .map_err(err)?;
    rasterize(
        &mut dst,
        &[1],
        geoms,
        burn,
        Some(RasterizeOptions::default()),
    )
    .map_err(err)?;
    let mut data = vec![0f64; grid.cells()];
    dst.rasterband(1)
        .map_err(err)?
        .read_into_slice::<f64>(
            (0, 0),
            (grid.width, grid.height),
            (grid.width, grid.height),
            &mut data,
            None,
        )
        .map_err(err)?;
    Ok(data)
}

/// The names of the zone codes of a zone raster's band 1, when it carries them: its
/// category names (entry i names code i; empty entries skipped), else its raster
/// attribute table (the column of usage Name, or named `name`, for the code in the
/// column of usage MinMax or Min, or named `value` or `code`, else the row number).
/// Empty when the raster has neither: the codes then stand for themselves.
pub fn raster_zone_names(path: &Path) -> Result<BTreeMap<i64, String>> {
    let categories = raster::category_names(path, 1)?;
    let named: BTreeMap<i64, String> = categories
        .into_iter()
        .enumerate()
        .filter(|(_, n)| !n.trim().is_empty())
        .map(|(i, n)| (i as i64, n))
        .collect();
    if !named.is_empty() {
        return Ok(named);
    }
    rat_names(path)
}

/// The names of a raster attribute table (see [`raster_zone_names`]).
fn rat_names(path: &Path) -> Result<BTreeMap<i64, String>> {
    use gdal_sys::GDALRATFieldUsage as Usage;
    let ds = raster::open(path)?;
    let band = ds.rasterband(1).map_err(|e| Error::raster(path, e))?;
    let _ = gdal::Metadata::description(&band);
    let mut out = BTreeMap::new();
    // SAFETY: the band handle belongs to `ds`, alive for the whole block; the table is
    // owned by the band and only read; every string is copied before the next call.
    unsafe {
        let rat = gdal_sys::GDALGetDefaultRAT(band.c_rasterband());
        if rat.is_null() {
            return Ok(out);
        }
        let cols = gdal_sys::GDALRATGetColumnCount(rat);
        let col_named = |want: &[&str]| -> i32 {
            (0..cols)
                .find(|&c| {
                    let p = gdal_sys::GDALRATGetNameOfCol(rat, c);
                    !p.is_null()
                        && want.iter().any(|w| {
                            std::ffi::CStr::from_ptr(p)
                                .to_string_lossy()
                                .eq_ignore_ascii_case(w)
                        })
                })
                .unwrap_or(-1)
        };
        let mut name_col = gdal_sys::GDALRATGetColOfUsage(rat, Usage::GFU_Name);
        if name_col < 0 {
            name_col = col_named(&["name", "zone_name"]);
        }
        if name_col < 0 {
            return Ok(out);
        }
        let mut value_col = gdal_sys::GDALRATGetColOfUsage(rat, Usage::GFU_MinMax);
        if value_col < 0 {
            value_col = gdal_sys::GDALRATGetColOfUsage(rat, Usage::GFU_Min);
        }
        if value_col < 0 {
            value_col = col_named(&["value", "code"]);
        }
        for row in 0..gdal_sys::GDALRATGetRowCount(rat) {
            let code = if value_col >= 0 {
                gdal_sys::GDALRATGetValueAsInt(rat, row, value_col) as i64
            } else {
                row as i64
            };
            let p = gdal_sys::GDALRATGetValueAsString(rat, row, name_col);
            if p.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(p).to_string_lossy().to_string();
            if !name.trim().is_empty() {
                out.insert(code, name);
            }
        }
    }
    Ok(out)
}
