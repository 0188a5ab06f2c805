//! Category names of a class map's band (shown by QGIS as class names): read with
//! [`category_names`], set when a class map is written.

use std::ffi::CString;
use std::path::Path;

use gdal::Metadata;

use super::open;
use crate::error::{Error, Result};

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
