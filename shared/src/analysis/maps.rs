//! The local coefficient maps of a driver analysis: their coarse grid ([`CoarseGrid`],
//! [`coarse_grid`]) and the writing of one map.

use std::path::Path;

use rayon::prelude::*;

use crate::error::Result;
use crate::grid::Grid;
use crate::gwr::{GwrModel, LocalFitter, Weighting};
use crate::raster;

/// The coarse grid of the local coefficient maps: the study grid aggregated by a whole
/// factor so that it is at most 300 cells wide (the grid itself when narrower), with a
/// cell valid where any of its study cells is valid.
#[derive(Debug, Clone)]
pub struct CoarseGrid {
    /// The coarse grid (CRS of the study grid, geotransform scaled by the factor).
    pub grid: Grid,
    /// Study cells per coarse cell along each axis.
    pub factor: usize,
    /// Valid coarse cells.
    pub valid: Vec<bool>,
}

/// Widest coefficient map, cells.
pub const COEFFICIENT_MAP_WIDTH: usize = 300;

/// The coarse grid of `grid` and `mask` (see [`CoarseGrid`]).
pub fn coarse_grid(grid: &Grid, mask: &[bool]) -> CoarseGrid {
    let f = grid.width.div_ceil(COEFFICIENT_MAP_WIDTH).max(1);
    let (w, h) = (grid.width.div_ceil(f), grid.height.div_ceil(f));
    let mut valid = vec![false; w * h];
    // a coarse row from its f rows of cells, a run of f cells per coarse cell; the
    // coarse rows at once
    valid
        .par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(cy, coarse_row)| {
            for y in cy * f..((cy + 1) * f).min(grid.height) {
                let row = &mask[y * grid.width..(y + 1) * grid.width];
                for (v, cells) in coarse_row.iter_mut().zip(row.chunks(f)) {
                    *v |= cells.contains(&true);
                }
            }
        });
    let g = grid.geotransform;
    let ff = f as f64;
    CoarseGrid {
        grid: Grid {
            width: w,
            height: h,
            geotransform: [g[0], g[1] * ff, g[2] * ff, g[3], g[4] * ff, g[5] * ff],
            crs_wkt: grid.crs_wkt.clone(),
        },
        factor: f,
        valid,
    }
}

/// Nodata of the coefficient maps.
pub const COEFFICIENT_NODATA: f32 = f32::MIN;

/// Writes the local coefficients of `model` at the centres of the valid cells of
/// `coarse` with `bandwidth` (one Float32 band per parameter, named `b_<parameter>`).
pub(super) fn write_coefficient_map(
    path: &Path,
    coarse: &CoarseGrid,
    model: &GwrModel,
    fitter: &dyn LocalFitter,
    weighting: &Weighting,
    bandwidth: f64,
) -> Result<()> {
    let cells: Vec<usize> = (0..coarse.valid.len())
        .filter(|&i| coarse.valid[i])
        .collect();
    let at: Vec<[f64; 2]> = cells
        .iter()
        .map(|&i| {
            let (x, y) = coarse
                .grid
                .cell_centre(i % coarse.grid.width, i / coarse.grid.width);
            [x, y]
        })
        .collect();
    let p = model.data().p();
    let beta = fitter.predict(weighting, bandwidth, &at)?;
    let mut bands = vec![vec![COEFFICIENT_NODATA; coarse.grid.cells()]; p];
    for (k, &cell) in cells.iter().enumerate() {
        for (b, band) in bands.iter_mut().enumerate() {
            let v = beta[k * p + b];
            if v.is_finite() {
                band[cell] = v as f32;
            }
        }
    }
    let refs: Vec<&[f32]> = bands.iter().map(|b| b.as_slice()).collect();
    raster::write_geotiff(
        path,
        &coarse.grid,
        &refs,
        &raster::WriteOptions {
            nodata: Some(COEFFICIENT_NODATA as f64),
            band_names: model
                .data()
                .names()
                .iter()
                .map(|n| format!("b_{n}"))
                .collect(),
            ..Default::default()
        },
    )
}
