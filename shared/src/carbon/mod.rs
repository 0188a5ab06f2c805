//! Carbon storage as the InVEST carbon model computes it (docs/design.md §7).
//!
//! - [`pools`]: the pools table (c_above, c_below, c_soil, c_dead in t/ha per class),
//!   read from and written to InVEST's CSV layout.
//! - [`counts`]: integer cell counts per (zone, class) of the baseline and alternate
//!   maps; parts of a grid merge by addition, so totals do not depend on tiling.
//! - [`totals`]: storage (t) = density (t/ha) * cells * cell area (ha), by class, by
//!   zone and overall; mean density kg/m2 = t * 1000 / m2; change = alternate - baseline.
//! - [`cells`]: per-cell rasters (t per cell, t/ha, change, NPV).
//! - [`indexed`]: the same rasters of maps of class indices, by per-row tables.
//! - [`blocks`]: counts and per-cell rasters of a block of cells in one pass (the
//!   streaming of `flus carbon`).
//! - [`valuation`]: InVEST's net present value of a change.
//! - [`correction`]: the paper's precipitation correction of densities (eq. 10-11).
//! - [`chain`]: the paper's density chain (Tables 4 -> 5 -> 6): national soil density,
//!   biomass ratio and carbon shares to the four pools.
//!
//! A cell counts when the baseline, the alternate (if any) and the zones (if any) all
//! have data there and both of its land-use codes are in the pools table; cells with a
//! code missing from the table are an error by default ([`OnMissing::Error`]) or are
//! left out and reported ([`OnMissing::Exclude`]).

pub mod blocks;
pub mod cells;
pub mod chain;
pub mod correction;
pub mod counts;
pub mod indexed;
pub mod pools;
pub mod totals;
pub mod valuation;

pub use blocks::{CellKernel, CellRaster};
pub use cells::{change_cells, storage_cells, Map, StorageUnit, CARBON_NODATA};
pub use chain::{chain_pools, read_chain_csv, ChainRow};
pub use correction::{correct_densities, correction_factor, CorrectionTarget};
pub use counts::{
    add_row_areas, AreaSums, CarbonCounts, CarbonLayers, CellClass, CodeLayer, OnMissing, NO_ZONE,
};
pub use indexed::IndexedPools;
pub use pools::{read_pools_csv, write_pools_csv, ClassPools, Pools, PoolsTable};
pub use totals::{mean_density_kg_m2, storage_t, totals, CarbonTotals, ClassTotals, ZoneTotals};
pub use valuation::Valuation;

#[cfg(test)]
mod tests;
