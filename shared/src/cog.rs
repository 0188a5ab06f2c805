//! Cloud-optimized GeoTIFF outputs (`[study] output_format = "cog"`): a finished GeoTIFF
//! rewritten by GDAL's COG driver — internal tiles, DEFLATE, overviews, the image file
//! directories ahead of the pixel data — so that a client reading it from object storage
//! or a web server fetches only the header and the blocks it shows (HTTP range
//! requests). The colour table and the category names of a land-use map are kept;
//! overviews of class maps are resampled by nearest neighbour (they must hold class
//! codes), those of continuous rasters by averaging.

use std::path::Path;

use gdal::raster::RasterCreationOptions;
use gdal::{DriverManager, Metadata};

use crate::error::{Error, Result};
use crate::raster::{self, aux_name, remove_partial, temp_name};

/// Rewrites the GeoTIFF at `path` as a cloud-optimized GeoTIFF, through a temporary file
/// renamed over `path` when complete: `path` holds either the old file or the whole new
/// one, never a part. Values, grid, nodata, band names, colour table and category names
/// are unchanged.
pub fn convert_in_place(path: &Path) -> Result<()> {
    let tmp = temp_name(path);
    let result = write_cog(path, &tmp).and_then(|()| {
        // the category names travel in a PAM side file, like the GTiff driver's
        let (tmp_aux, aux) = (aux_name(&tmp), aux_name(path));
        if tmp_aux.exists() {
            std::fs::rename(&tmp_aux, &aux).map_err(|e| Error::io(&aux, e))?;
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    });
    if result.is_err() {
        remove_partial(&tmp);
    }
    result
}

/// GDAL's COG creation options for a raster whose overviews are `resampling`.
fn cog_options(path: &Path, resampling: &str) -> Result<RasterCreationOptions> {
    let err = |e: gdal::errors::GdalError| Error::raster(path, format!("COG options: {e}"));
    let mut opts = RasterCreationOptions::new();
    for (k, v) in [
        ("COMPRESS", "DEFLATE"),
        ("BLOCKSIZE", "512"),
        ("OVERVIEWS", "AUTO"),
        ("RESAMPLING", resampling),
        ("BIGTIFF", "IF_SAFER"),
        // blocks are compressed on every core and written in order: the same bytes
        ("NUM_THREADS", "ALL_CPUS"),
    ] {
        opts.set_name_value(k, v).map_err(err)?;
    }
    Ok(opts)
}

fn write_cog(path: &Path, tmp: &Path) -> Result<()> {
    let src = raster::open(path)?;
    let categorical = src
        .rasterband(1)
        .map(|b| b.color_table().is_some())
        .map_err(|e| Error::raster(path, e))?;
    let resampling = if categorical { "NEAREST" } else { "AVERAGE" };
    let driver = DriverManager::get_driver_by_name("COG")
        .map_err(|e| Error::raster(path, format!("GDAL has no COG driver: {e}")))?;
    // SAFETY: CPLErrorReset touches only this thread's error state.
    unsafe { gdal_sys::CPLErrorReset() };
    let out = src
        .create_copy(&driver, tmp, &cog_options(path, resampling)?)
        .map_err(|e| Error::raster(path, format!("writing the COG failed: {e}")))?;
    drop(out);
    // the COG driver drops category names: set again, they go to the PAM side file
    let names = raster::category_names(path, 1)?;
    if !names.is_empty() {
        let ds = raster::open(tmp)?;
        let band = ds.rasterband(1).map_err(|e| Error::raster(path, e))?;
        // GTiff loads its PAM side file lazily, on the first description or metadata
        // read: load it before adding to it
        let _ = band.description();
        raster::set_category_names(&band, &names);
    }
    // SAFETY: CPLGetLastError* read only this thread's error state.
    let last = unsafe { gdal_sys::CPLGetLastErrorType() };
    if last >= gdal_sys::CPLErr::CE_Failure {
        // SAFETY: the message is a NUL-terminated string owned by GDAL, copied at once.
        let msg = unsafe { std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }
            .to_string_lossy()
            .to_string();
        return Err(Error::raster(
            path,
            format!("writing the COG failed: {msg}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Grid;
    use crate::raster::{read_band, write_geotiff, PaletteEntry, WriteOptions};

    fn grid(width: usize, height: usize) -> Grid {
        Grid {
            width,
            height,
            geotransform: [500000.0, 30.0, 0.0, 1200000.0, 0.0, -30.0],
            crs_wkt: gdal::spatial_ref::SpatialRef::from_epsg(32648)
                .unwrap()
                .to_wkt()
                .unwrap(),
        }
    }

    #[test]
    fn a_class_map_becomes_a_tiled_cog_with_overviews_and_keeps_values_and_colours() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("landuse.tif");
        let g = grid(1300, 1100);
        let data: Vec<u8> = (0..g.cells()).map(|i| (i / 977 % 3 + 1) as u8).collect();
        let opts = WriteOptions {
            nodata: Some(0.0),
            palette: vec![
                PaletteEntry {
                    value: 1,
                    name: "forest".into(),
                    rgb: [0, 128, 0],
                },
                PaletteEntry {
                    value: 2,
                    name: "built-up".into(),
                    rgb: [200, 0, 0],
                },
            ],
            band_names: vec!["land use".into()],
        };
        write_geotiff(&p, &g, &[&data], &opts).unwrap();
        convert_in_place(&p).unwrap();
        let ds = raster::open(&p).unwrap();
        // GDAL marks a file whose layout is a COG (IFDs first, ghost header)
        assert_eq!(
            ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
            Some("COG")
        );
        let band = ds.rasterband(1).unwrap();
        assert_eq!(band.block_size(), (512, 512));
        // 1300 x 1100 > 512: overviews down to one block (1300/2 = 650, 1300/4 = 325)
        assert_eq!(band.overview_count().unwrap(), 2);
        let ct = band.color_table().expect("colour table kept");
        let e = ct.entry_as_rgb(2).unwrap();
        assert_eq!((e.r, e.g, e.b), (200, 0, 0));
        let names = raster::category_names(&p, 1).unwrap();
        assert_eq!(names.get(1).map(String::as_str), Some("forest"));
        assert_eq!(names.get(2).map(String::as_str), Some("built-up"));
        let (info, back) = read_band::<u8>(&p, 1).unwrap();
        assert_eq!(back, data);
        assert_eq!(info.grid.geotransform, g.geotransform);
        assert_eq!(info.nodata, Some(0.0));
        assert!(!temp_name(&p).exists());
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("absent.tif");
        let e = convert_in_place(&p).unwrap_err().to_string();
        assert!(e.contains("absent.tif"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
