//! Reading one layer onto the reference grid: as is when it is on the grid, warped when
//! `align` is set, with the nodata value in force and the cells that have data.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{LayerConfig, NodataSetting, Study};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster::{self, Resample};

/// What every layer reader shares: the study, the reference grid and the mask of valid
/// cells, which a reader may only clear.
pub(super) struct LayerContext<'a> {
    pub(super) study: &'a Study,
    pub(super) reference: &'a Path,
    pub(super) grid: &'a Grid,
    pub(super) mask: &'a [AtomicBool],
}

impl LayerContext<'_> {
    /// Marks cell `i` as not valid (a layer has no data there).
    pub(super) fn clear(&self, i: usize) {
        self.mask[i].store(false, Ordering::Relaxed);
    }
}

/// Reads band `band` of `path` onto `grid`: as is when it is on the grid (a strip of rows
/// at a time), warped when `align` is set (whole), otherwise an error naming both files.
/// `f(first cell, values, has data, nodata in force)` sees every cell once, in order;
/// a layer without any data cell is an error (after `f` saw it).
pub(super) fn read_on_grid(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    path: &Path,
    band: usize,
    nodata: Option<&NodataSetting>,
    resample: Resample,
    warped: &mut Vec<PathBuf>,
    mut f: impl FnMut(usize, &[f64], &[bool], Option<f64>) -> Result<()>,
) -> Result<()> {
    let info = raster::info(path)?;
    let same = raster::check_same_grid(
        reference,
        grid,
        path,
        &info.grid,
        study.config.study.grid_tolerance,
    );
    let in_force = |declared: Option<f64>| match nodata {
        None => declared,
        Some(NodataSetting::Value(v)) => Some(*v),
        Some(NodataSetting::Keyword(w)) if w == "none" => None,
        Some(NodataSetting::Keyword(_)) => declared,
    };
    let mut has_data = Vec::new();
    let mut any = false;
    let mut feed = |first: usize, values: &[f64], nodata: Option<f64>| -> Result<()> {
        has_data.clear();
        has_data.extend(
            values
                .iter()
                .map(|&v| !v.is_nan() && nodata.is_none_or(|nd| v != nd)),
        );
        any |= has_data.iter().any(|&d| d);
        f(first, values, &has_data, nodata)
    };
    let nodata = match same {
        Ok(()) => {
            let nd = in_force(info.nodata);
            raster::read_band_strips::<f64>(path, band, |row, v| feed(row * grid.width, v, nd))?;
            nd
        }
        Err(Error::GridMismatch { difference, .. }) if study.config.study.align => {
            tracing::info!(file = %path.display(), %difference, "warping onto the land-use grid");
            warped.push(path.to_path_buf());
            let (v, nd) = raster::warp_to_grid(path, grid, resample)?;
            let nd = in_force(if nd.is_nan() { None } else { Some(nd) });
            feed(0, &v, nd)?;
            nd
        }
        Err(e) => return Err(e),
    };
    if !any {
        return Err(Error::raster(
            path,
            format!(
                "every cell is nodata ({}); expected a layer with data",
                nodata.map_or("NaN".to_string(), |nd| nd.to_string())
            ),
        ));
    }
    Ok(())
}

/// [`read_on_grid`] of the band, nodata setting and file of layer `cfg` of the config.
pub(super) fn read_layer(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    path: &Path,
    cfg: &LayerConfig,
    resample: Resample,
    warped: &mut Vec<PathBuf>,
    f: impl FnMut(usize, &[f64], &[bool], Option<f64>) -> Result<()>,
) -> Result<()> {
    read_on_grid(
        study,
        reference,
        grid,
        path,
        cfg.band,
        cfg.nodata.as_ref(),
        resample,
        warped,
        f,
    )
}
