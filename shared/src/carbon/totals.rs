//! Carbon totals by class, by zone and overall, computed from integer cell counts:
//! storage (t) = density (t/ha) * cells * cell area (ha); mean density (kg/m2) =
//! total t * 1000 / area m2; change = alternate - baseline.

use super::counts::CarbonCounts;
use super::pools::PoolsTable;
use crate::area::CellAreas;
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
    /// Their area, m2.
    pub baseline_area_m2: f64,
    /// Cells of the class in the alternate map.
    pub alternate_cells: Option<u64>,
    /// Their area, m2.
    pub alternate_area_m2: Option<f64>,
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
    /// Area of one cell, m2 (`None` when it varies by row: a geographic grid).
    pub cell_area_m2: Option<f64>,
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

/// Area and storage of one map's cells per class: from counts x the one cell area, or
/// from the summed per-row areas.
struct MapSums {
    area: Vec<f64>,
    storage: Vec<f64>,
}

impl MapSums {
    fn new(dens: &[f64], cells: &[u64], areas: Option<&[f64]>, cell_area: Option<f64>) -> Self {
        let (area, storage) = dens
            .iter()
            .enumerate()
            .map(|(k, &d)| match (areas, cell_area) {
                (Some(a), _) => (a[k], d * a[k] / M2_PER_HA),
                (None, c) => {
                    let c = c.unwrap_or(0.0);
                    (cells[k] as f64 * c, storage_t(d, cells[k], c))
                }
            })
            .unzip();
        MapSums { area, storage }
    }

    /// Storage summed in class order.
    fn total_t(&self) -> f64 {
        self.storage.iter().fold(0.0, |acc, x| acc + x)
    }

    fn total_area(&self) -> f64 {
        self.area.iter().fold(0.0, |acc, x| acc + x)
    }
}

fn sum_zones(m: &std::collections::BTreeMap<i64, Vec<f64>>, k: usize) -> Vec<f64> {
    let mut out = vec![0.0; k];
    for v in m.values() {
        for (o, x) in out.iter_mut().zip(v) {
            *o += x;
        }
    }
    out
}

/// Turns counts + pools + cell areas into totals by class, by zone and overall. With
/// per-row areas the counts must carry their area sums
/// ([`super::CarbonCounts::count_on_grid`]).
pub fn totals(
    counts: &CarbonCounts,
    pools: &PoolsTable,
    areas: &CellAreas,
) -> Result<CarbonTotals> {
    if pools.codes() != counts.classes {
        return Err(Error::Data(
            "carbon counts were made with another pools table (different classes)".into(),
        ));
    }
    let cell_area = areas.uniform();
    if let Some(c) = cell_area {
        if !c.is_finite() || c <= 0.0 {
            return Err(Error::Data(format!(
                "cell area is {c} m2, expected a positive number"
            )));
        }
    } else if counts.areas.is_none() {
        return Err(Error::Data(
            "cell areas vary by row but the carbon counts carry no area sums".into(),
        ));
    }
    let k = counts.classes.len();
    let dens = pools.densities();
    let base_cells = counts.class_cells(false).unwrap_or_default();
    let alt_cells = counts.class_cells(true);
    let sums = counts.areas.as_ref();
    let base_area = sums.map(|a| sum_zones(&a.baseline, k));
    let alt_area = sums.and_then(|a| a.alternate.as_ref().map(|m| sum_zones(m, k)));
    let base = MapSums::new(&dens, &base_cells, base_area.as_deref(), cell_area);
    let alt = alt_cells
        .as_ref()
        .map(|c| MapSums::new(&dens, c, alt_area.as_deref(), cell_area));
    let by_class: Vec<ClassTotals> = pools
        .rows()
        .iter()
        .enumerate()
        .map(|(i, r)| ClassTotals {
            code: r.code,
            name: r.name.clone(),
            density_t_ha: dens[i],
            baseline_cells: base_cells[i],
            baseline_area_m2: base.area[i],
            alternate_cells: alt_cells.as_ref().map(|a| a[i]),
            alternate_area_m2: alt.as_ref().map(|a| a.area[i]),
            baseline_t: base.storage[i],
            alternate_t: alt.as_ref().map(|a| a.storage[i]),
        })
        .collect();
    let zero = vec![0.0; k];
    let by_zone: Vec<ZoneTotals> = counts
        .baseline
        .iter()
        .map(|(&zone, b)| {
            let za = sums.map(|a| a.baseline.get(&zone).unwrap_or(&zero).as_slice());
            let zb = MapSums::new(&dens, b, za, cell_area);
            let alternate_t = counts.alternate.as_ref().map(|alt| {
                let none = vec![0u64; k];
                let c = alt.get(&zone).unwrap_or(&none);
                let aa = sums
                    .and_then(|a| a.alternate.as_ref())
                    .map(|m| m.get(&zone).unwrap_or(&zero).as_slice());
                MapSums::new(&dens, c, aa, cell_area).total_t()
            });
            ZoneTotals {
                zone,
                cells: b.iter().sum(),
                area_m2: zb.total_area(),
                baseline_t: zb.total_t(),
                alternate_t,
            }
        })
        .collect();
    Ok(CarbonTotals {
        cell_area_m2: cell_area,
        cells: base_cells.iter().sum(),
        area_m2: base.total_area(),
        baseline_t: base.total_t(),
        alternate_t: alt.as_ref().map(|a| a.total_t()),
        by_class,
        by_zone,
    })
}
