//! The study's raster stack: every layer of a study read onto the reference grid (the
//! first land-use map's), checked or warped, with class codes mapped to indices and the
//! valid mask (the intersection of all layers' nodata masks).
//!
//! This module holds the [`Stack`] itself; loading it is in `load` (the land-use maps and
//! the drivers read several at a time, then the restrictions and the zones), reading a
//! layer onto the grid in `on_grid`, the land-use maps and their code table in `landuse`,
//! the drivers in `drivers`, their scratch files in `spill`, the restrictions in
//! `restrictions`, the zones in `zones`, the checks of the valid cells in `valid` and
//! class rasters read on their own in `codes`, all re-exported here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::error::Result;
use crate::grid::Grid;

mod codes;
mod drivers;
mod landuse;
mod load;
mod on_grid;
mod restrictions;
mod spill;
mod valid;
mod zones;

#[cfg(test)]
mod tests;

pub use codes::{index_maps, read_codes, CodeMap};
pub use drivers::{Driver, DriverValues, SpillFile};
pub use load::{load, load_spilled};
pub use spill::remove_scratch;
pub use valid::MIN_VALID_CELLS;

/// Class index of cells that are not valid.
pub const NO_CLASS: u8 = 255;

/// Every layer of a study on one grid.
#[derive(Clone, Debug)]
pub struct Stack {
    /// The reference grid.
    pub grid: Grid,
    /// The file that defines it.
    pub reference: PathBuf,
    /// Valid cells: every layer has data.
    pub mask: Vec<bool>,
    /// Land-use maps by year, as class indices ([`NO_CLASS`] where not valid).
    pub maps: BTreeMap<i32, Vec<u8>>,
    /// Drivers in config order.
    pub drivers: Vec<Driver>,
    /// Cells that never change (a restriction layer is 0 there).
    pub restricted: Vec<bool>,
    /// Zone code per cell, when zones are configured.
    pub zones: Option<Vec<i32>>,
    /// Names of the zone codes from the zone raster (category names or attribute
    /// table; [`crate::zones::raster_zone_names`]); empty when it has none.
    pub zone_names: BTreeMap<i64, String>,
    /// Layers that were warped onto the grid (`align = true`).
    pub warped: Vec<PathBuf>,
}

impl Stack {
    /// The cell areas of the grid (per row on a geographic grid, see [`crate::area`]).
    pub fn cell_areas(&self) -> Result<crate::area::CellAreas> {
        crate::area::CellAreas::of_grid(&self.grid, &self.reference.display().to_string())
    }

    /// Number of valid cells.
    pub fn valid_cells(&self) -> u64 {
        self.mask.par_iter().filter(|&&v| v).count() as u64
    }

    /// Cells per class of the map of `year` (over valid cells).
    pub fn counts(&self, year: i32, k: usize) -> Vec<u64> {
        let mut c = vec![0u64; k];
        if let Some(m) = self.maps.get(&year) {
            for &v in m {
                if (v as usize) < k {
                    c[v as usize] += 1;
                }
            }
        }
        c
    }
}
