//! Vector inputs onto the reference grid: reading features in the reference CRS,
//! rasterising them, [`distance`] (GDAL proximity) and [`restriction`] rasters.

use std::path::Path;

use gdal::cpl::CslStringList;
use gdal::raster::RasterizeOptions;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{FieldValue, Geometry, LayerAccess};
use gdal::Dataset;

use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster::{self, WriteOptions};

use super::mem::{mem_dataset, read_all, write_all};
use super::{summarize, Output, OutputKind};

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
    let field_index = field_indices(path, &layer, fields)?;
    let transform = to_reference(path, layer.spatial_ref(), reference)?;
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

/// The indices of attributes `fields` in `layer` of `path`; a missing one is an error
/// listing the layer's attributes.
fn field_indices(path: &Path, layer: &gdal::vector::Layer, fields: &[&str]) -> Result<Vec<usize>> {
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
    Ok(field_index)
}

/// The transformation from a layer's CRS `source` to `reference`'s CRS: None when they
/// are the same or when the reference has no CRS (a warning when the layer has one); an
/// error when the layer has none but the reference has.
fn to_reference(
    path: &Path,
    source: Option<SpatialRef>,
    reference: &Grid,
) -> Result<Option<CoordTransform>> {
    Ok(match (source, reference.crs_wkt.is_empty()) {
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
    })
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
