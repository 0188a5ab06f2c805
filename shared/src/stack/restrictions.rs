//! The restriction layers: the cells that never change.

use std::path::{Path, PathBuf};

use super::on_grid::read_layer;
use crate::config::Study;
use crate::error::Result;
use crate::grid::Grid;
use crate::raster::Resample;

/// Reads the restriction layers onto `grid`, one after the other, clearing in `mask` the
/// cells where one has no data; returns the restricted cells (a layer is 0 there).
pub(super) fn read_restrictions(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    mask: &mut [bool],
    warped: &mut Vec<PathBuf>,
) -> Result<Vec<bool>> {
    let mut restricted = vec![false; grid.cells()];
    for r in &study.config.restrictions {
        let path = study.resolve(&r.path);
        read_layer(
            study,
            reference,
            grid,
            &path,
            r,
            Resample::Nearest,
            warped,
            |first, values, has_data, _| {
                for (j, (&v, &data)) in values.iter().zip(has_data).enumerate() {
                    mask[first + j] &= data;
                    if data && v == 0.0 {
                        restricted[first + j] = true;
                    }
                }
                Ok(())
            },
        )?;
    }
    Ok(restricted)
}
