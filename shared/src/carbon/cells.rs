//! Per-cell carbon rasters: storage in t per cell and density in t/ha for one map, the
//! change alternate - baseline (t per cell) and its net present value. Cells that are
//! not counted (see [`CarbonLayers::classify`]) hold [`CARBON_NODATA`], so every raster
//! sums to the totals.

use super::counts::{CarbonLayers, CellClass};
use super::pools::PoolsTable;
use super::totals::M2_PER_HA;
use crate::area::AreaWindow;
use crate::error::Result;

/// Nodata value of the Float32 carbon rasters (the lowest f32).
pub const CARBON_NODATA: f32 = f32::MIN;

/// Unit of a storage raster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageUnit {
    /// Tonnes of carbon in the cell.
    TonnesPerCell,
    /// Tonnes per hectare (the class density).
    TonnesPerHa,
}

/// Which map a storage raster is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Map {
    /// The baseline map.
    Baseline,
    /// The alternate map.
    Alternate,
}

/// Storage of `map` per cell, in `unit`; [`CARBON_NODATA`] where the cell is not counted.
/// `areas` gives the area of each cell of the layers.
pub fn storage_cells(
    pools: &PoolsTable,
    layers: &CarbonLayers<'_>,
    map: Map,
    unit: StorageUnit,
    areas: AreaWindow<'_>,
) -> Result<Vec<f32>> {
    let n = layers.len()?;
    let index = pools.index();
    let dens = pools.densities();
    let mut out = vec![CARBON_NODATA; n];
    for (i, o) in out.iter_mut().enumerate() {
        if let CellClass::Valid {
            baseline,
            alternate,
            ..
        } = layers.classify(&index, i)?
        {
            let k = match map {
                Map::Baseline => Some(baseline),
                Map::Alternate => alternate,
            };
            if let Some(k) = k {
                *o = match unit {
                    StorageUnit::TonnesPerCell => dens[k] * (areas.at(i) / M2_PER_HA),
                    StorageUnit::TonnesPerHa => dens[k],
                } as f32;
            }
        }
    }
    Ok(out)
}

/// Change alternate - baseline in t per cell, times `multiplier` (1 for the change
/// raster, the valuation constant for the NPV raster); [`CARBON_NODATA`] where the cell
/// is not counted or there is no alternate map.
pub fn change_cells(
    pools: &PoolsTable,
    layers: &CarbonLayers<'_>,
    areas: AreaWindow<'_>,
    multiplier: f64,
) -> Result<Vec<f32>> {
    let n = layers.len()?;
    let index = pools.index();
    let dens = pools.densities();
    let mut out = vec![CARBON_NODATA; n];
    for (i, o) in out.iter_mut().enumerate() {
        if let CellClass::Valid {
            baseline,
            alternate: Some(a),
            ..
        } = layers.classify(&index, i)?
        {
            let ha = areas.at(i) / M2_PER_HA;
            *o = ((dens[a] * ha - dens[baseline] * ha) * multiplier) as f32;
        }
    }
    Ok(out)
}
