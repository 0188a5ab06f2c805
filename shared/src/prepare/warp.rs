//! Rasters onto the reference grid: [`warp`] and [`slope_aspect`] (GDAL warp and DEM
//! processing through in-memory datasets).

use std::path::Path;

use gdal::raster::processing::dem::{self, AspectOptions, SlopeOptions};
use gdal::raster::GdalType;
use gdal::spatial_ref::SpatialRef;

use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster::{self, Resample, WriteOptions};

use super::mem::{mem_dataset, read_all, write_all};
use super::{summarize, Output, OutputKind, ASPECT_FLAT, DEM_NODATA};

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
