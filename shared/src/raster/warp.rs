//! Warping a layer onto a reference grid with GDAL's warper ([`warp_to_grid`]).

use std::path::Path;

use gdal::DriverManager;

use super::{info_of, open};
use crate::error::{Error, Result};
use crate::grid::Grid;

/// Resampling used when a layer is warped onto the reference grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Nearest neighbour: for class maps, restrictions and zones.
    Nearest,
    /// Bilinear: for continuous drivers.
    Bilinear,
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
