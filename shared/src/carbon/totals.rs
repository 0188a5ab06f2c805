//! Carbon totals by class, by zone and overall, computed from integer cell counts:
//! storage (t) = density (t/ha) * cells * cell area (ha); mean density (kg/m2) =
//! total t * 1000 / area m2; change = alternate - baseline.

use super::counts::CarbonCounts;
use super::pools::PoolsTable;
use crate::error::{Error, Result};

/// Square metres per hectare.
pub const M2_PER_HA: f64 = 10_000.0;

/// Storage (t) of `cells` cells of density `density_t_ha` and cell area `cell_area_m2`.
#[inline]
pub fn storage_t(density_t_ha: f64, cells: u64, cell_area_m2: f64) -> f64 {
    density_t_ha * cells as f64 * (cell_area_m2 / M2_PER_HA)
}

/// Mean density in kg/m2 of `total_t` tonnes over `area_m2`; 0 for an empty area.
#[inline]
pub fn mean_density_kg_m2(total_t: f64, area_m2: f64) -> f64 {
    if area_m2 > 0.0 {
        total_t * 1000.0 / area_m2
    } else {
        0.0
    }
}

/// Totals of one class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassTotals {
    /// Land-use code.
    pub code: i64,
    /// Class name from the pools table (may be empty).
    pub name: String,
    /// Total density of the class, t/ha.
    pub density_t_ha: f64,
    /// Cells of the class in the baseline map.
    pub baseline_cells: u64,
    /// Cells of the class in the alternate map.
    pub alternate_cells: Option<u64>,
    /// Storage of the class in the baseline map, t.
    pub baseline_t: f64,
    /// Storage of the class in the alternate map, t.
    pub alternate_t: Option<f64>,
}

/// Totals of one zone.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneTotals {
    /// Zone code.
    pub zone: i64,
    /// Counted cells of the zone (the same in both maps).
    pub cells: u64,
    /// Area of those cells, m2.
    pub area_m2: f64,
    /// Baseline storage, t.
    pub baseline_t: f64,
    /// Alternate storage, t.
    pub alternate_t: Option<f64>,
}

impl ZoneTotals {
    /// Alternate - baseline, t.
    pub fn change_t(&self) -> Option<f64> {
        self.alternate_t.map(|a| a - self.baseline_t)
    }
}

/// Totals of a carbon computation.
#[derive(Clone, Debug, PartialEq)]
pub struct CarbonTotals {
    /// Area of one cell, m2.
    pub cell_area_m2: f64,
    /// Counted cells (the same in both maps).
    pub cells: u64,
    /// Their area, m2.
    pub area_m2: f64,
    /// Baseline storage, t (sum of the class totals in class order).
    pub baseline_t: f64,
    /// Alternate storage, t.
    pub alternate_t: Option<f64>,
    /// Per class, in the pools table's code order.
    pub by_class: Vec<ClassTotals>,
    /// Per zone, in ascending zone code.
    pub by_zone: Vec<ZoneTotals>,
}

impl CarbonTotals {
    /// Alternate - baseline, t.
    pub fn change_t(&self) -> Option<f64> {
        self.alternate_t.map(|a| a - self.baseline_t)
    }

    /// Baseline mean density, kg/m2.
    pub fn baseline_mean_density_kg_m2(&self) -> f64 {
        mean_density_kg_m2(self.baseline_t, self.area_m2)
    }

    /// Alternate mean density, kg/m2.
    pub fn alternate_mean_density_kg_m2(&self) -> Option<f64> {
        self.alternate_t
            .map(|a| mean_density_kg_m2(a, self.area_m2))
    }
}

/// Sum of `density[k] * cells[k] * cell area` in class order.
fn sum_storage(densities: &[f64], cells: &[u64], cell_area_m2: f64) -> f64 {
    densities
        .iter()
        .zip(cells)
        .map(|(&d, &n)| storage_t(d, n, cell_area_m2))
        .fold(0.0, |acc, x| acc + x)
}

/// Turns counts + pools + cell area (m2) into totals by class, by zone and overall.
pub fn totals(
    counts: &CarbonCounts,
    pools: &PoolsTable,
    cell_area_m2: f64,
) -> Result<CarbonTotals> {
    if pools.codes() != counts.classes {
        return Err(Error::Data(
            "carbon counts were made with another pools table (different classes)".into(),
        ));
    }
    if !cell_area_m2.is_finite() || cell_area_m2 <= 0.0 {
        return Err(Error::Data(format!(
            "cell area is {cell_area_m2} m2, expected a positive number"
        )));
    }
    let dens = pools.densities();
    let base_cells = counts.class_cells(false).unwrap_or_default();
    let alt_cells = counts.class_cells(true);
    let by_class: Vec<ClassTotals> = pools
        .rows()
        .iter()
        .enumerate()
        .map(|(k, r)| ClassTotals {
            code: r.code,
            name: r.name.clone(),
            density_t_ha: dens[k],
            baseline_cells: base_cells[k],
            alternate_cells: alt_cells.as_ref().map(|a| a[k]),
            baseline_t: storage_t(dens[k], base_cells[k], cell_area_m2),
            alternate_t: alt_cells
                .as_ref()
                .map(|a| storage_t(dens[k], a[k], cell_area_m2)),
        })
        .collect();
    let by_zone: Vec<ZoneTotals> = counts
        .baseline
        .iter()
        .map(|(&zone, b)| {
            let cells: u64 = b.iter().sum();
            ZoneTotals {
                zone,
                cells,
                area_m2: cells as f64 * cell_area_m2,
                baseline_t: sum_storage(&dens, b, cell_area_m2),
                alternate_t: counts.alternate.as_ref().map(|alt| {
                    alt.get(&zone)
                        .map(|a| sum_storage(&dens, a, cell_area_m2))
                        .unwrap_or(0.0)
                }),
            }
        })
        .collect();
    let cells: u64 = base_cells.iter().sum();
    Ok(CarbonTotals {
        cell_area_m2,
        cells,
        area_m2: cells as f64 * cell_area_m2,
        baseline_t: sum_storage(&dens, &base_cells, cell_area_m2),
        alternate_t: alt_cells
            .as_ref()
            .map(|a| sum_storage(&dens, a, cell_area_m2)),
        by_class,
        by_zone,
    })
}
