//! In-memory GDAL datasets on a grid: made, filled and read back whole.

use crate::error::{Error, Result};
use crate::grid::Grid;
use gdal::raster::GdalType;
use gdal::{Dataset, DriverManager};
use std::path::Path;

pub(super) fn mem_dataset<T: GdalType>(grid: &Grid, context: &Path) -> Result<Dataset> {
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

pub(super) fn read_all<T: GdalType + Copy + Default>(
    ds: &Dataset,
    context: &Path,
) -> Result<Vec<T>> {
    let (w, h) = ds.raster_size();
    let mut data = vec![T::default(); w * h];
    ds.rasterband(1)
        .map_err(|e| Error::raster(context, e))?
        .read_into_slice::<T>((0, 0), (w, h), (w, h), &mut data, None)
        .map_err(|e| Error::raster(context, e))?;
    Ok(data)
}

pub(super) fn write_all<T: GdalType + Copy>(
    ds: &Dataset,
    data: &[T],
    context: &Path,
) -> Result<()> {
    let (w, h) = ds.raster_size();
    let mut buf = gdal::raster::Buffer::new((w, h), data.to_vec());
    ds.rasterband(1)
        .map_err(|e| Error::raster(context, e))?
        .write((0, 0), (w, h), &mut buf)
        .map_err(|e| Error::raster(context, e))
}
