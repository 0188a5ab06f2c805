//! The valid cells (where every layer has data): the maps masked to them, and the checks
//! that there are enough of them on a CRS that gives right areas.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use super::NO_CLASS;
use crate::config::Study;
use crate::error::{Error, Result};
use crate::grid::Grid;

/// Fewest valid cells a study may have (the smallest GWR sample the config accepts).
pub const MIN_VALID_CELLS: usize = 10;

/// The land-use maps with [`NO_CLASS`] in every cell that is not valid in `mask`.
pub(super) fn mask_maps(raw_maps: BTreeMap<i32, Vec<u8>>, mask: &[bool]) -> BTreeMap<i32, Vec<u8>> {
    raw_maps
        .into_iter()
        .map(|(y, mut m)| {
            m.par_iter_mut()
                .zip(mask.par_iter())
                .filter(|(_, &valid)| !valid)
                .for_each(|(c, _)| *c = NO_CLASS);
            (y, m)
        })
        .collect()
}

/// Checks the valid cells of `mask`: at least one, a CRS in units that give right areas
/// (metres or degrees), and at least [`MIN_VALID_CELLS`].
pub(super) fn check_valid_cells(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    mask: &[bool],
) -> Result<()> {
    let valid = mask.par_iter().filter(|&&v| v).count();
    if valid == 0 {
        return Err(Error::Data(format!(
            "{}: no valid cell: the nodata masks of the layers do not overlap anywhere",
            study.file.display()
        )));
    }
    // a CRS in feet (or any unit but metres and degrees) would give wrong areas
    crate::area::crs_kind(&grid.crs_wkt, &reference.display().to_string())?;
    if valid < MIN_VALID_CELLS {
        return Err(Error::Data(format!(
            "{}: only {valid} valid cell(s) (cells where every layer has data); expected at \
             least {MIN_VALID_CELLS}: a change, a sample or a metric on fewer means nothing",
            study.file.display()
        )));
    }
    Ok(())
}
