//! `flus carbon --json` (and `carbon_summary.json`): the carbon model's summary as serde
//! structs, the keys InVEST users and scripts read (and `flus bench` reads back).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use flus_shared::carbon::{self, CarbonCounts, CarbonTotals, Valuation};
use flus_shared::zones::Zones;

use super::carbon::Args;

/// The whole summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CarbonSummaryJson {
    /// The baseline land-use raster, as given.
    pub baseline: Option<PathBuf>,
    /// The alternate (future) raster, as given.
    pub alternate: Option<PathBuf>,
    /// The carbon pools CSV, as given.
    pub pools: Option<PathBuf>,
    /// The zone raster or polygons, as given.
    pub zones: Option<PathBuf>,
    /// Area of one cell, m² (null on a lon/lat grid, where cells differ).
    pub cell_area_m2: Option<f64>,
    /// Whether the grid is geographic (areas per row of cells).
    pub geographic: bool,
    /// Cells counted.
    pub cells: u64,
    /// Their area, m².
    pub area_m2: f64,
    /// Carbon stored in the baseline, t.
    pub baseline_total_t: f64,
    /// Carbon stored in the alternate, t.
    pub alternate_total_t: Option<f64>,
    /// Alternate minus baseline, t.
    pub change_t: Option<f64>,
    /// Baseline storage per area, kg/m².
    pub baseline_mean_density_kg_m2: f64,
    /// Alternate storage per area, kg/m².
    pub alternate_mean_density_kg_m2: Option<f64>,
    /// Per land-use code.
    pub by_class: BTreeMap<String, ClassJson>,
    /// Cells left out, and why.
    pub missing: MissingJson,
    /// The files written, by key.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Per zone name (with zones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_zone: Option<BTreeMap<String, ZoneJson>>,
    /// The valuation's inputs (with a price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valuation: Option<ValuationJson>,
    /// Net present value of the change (with a price).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub npv_total: Option<Option<f64>>,
}

/// Reads a key that is there (`npv_total`, null when the change is unknown) as `Some`:
/// only a missing key is `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

/// One land-use code's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassJson {
    /// Its name in the pools table.
    pub name: String,
    /// Its carbon density, t/ha (the four pools' sum).
    pub density_t_ha: f64,
    /// Its cells in the baseline.
    pub cells: u64,
    /// Their area, m².
    pub area_m2: f64,
    /// Their carbon, t.
    pub baseline_t: f64,
    /// Its cells in the alternate.
    pub alternate_cells: Option<u64>,
    /// Their area, m².
    pub alternate_area_m2: Option<f64>,
    /// Their carbon, t.
    pub alternate_t: Option<f64>,
    /// Alternate minus baseline, t.
    pub change_t: Option<f64>,
}

/// Cells left out of the totals.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MissingJson {
    /// All of them.
    pub cells: u64,
    /// Without data in a map.
    pub nodata_cells: u64,
    /// Outside every zone.
    pub outside_zones_cells: u64,
    /// Of a code the pools table lacks.
    pub unknown_code_cells: u64,
    /// Those codes.
    pub codes: Vec<i64>,
    /// Cells per such code.
    pub cells_by_code: BTreeMap<String, u64>,
}

/// One zone's figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZoneJson {
    /// Its code in the zone raster.
    pub code: i64,
    /// Its cells.
    pub cells: u64,
    /// Their area, m².
    pub area_m2: f64,
    /// Baseline carbon, t.
    pub baseline_t: f64,
    /// Alternate carbon, t.
    pub alternate_t: Option<f64>,
    /// Alternate minus baseline, t.
    pub change_t: Option<f64>,
    /// Baseline storage per area, kg/m².
    pub baseline_mean_density_kg_m2: f64,
    /// Alternate storage per area, kg/m².
    pub alternate_mean_density_kg_m2: Option<f64>,
    /// Net present value of the change (with a price).
    pub npv: Option<f64>,
}

/// The valuation's inputs and constant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValuationJson {
    /// Price per tonne of carbon.
    pub price: f64,
    /// Annual discount rate, %.
    pub discount_rate: f64,
    /// Annual change of the price, %.
    pub rate_change: f64,
    /// Year of the baseline.
    pub years_baseline: i32,
    /// Year of the alternate.
    pub years_alternate: i32,
    /// NPV per tonne of change.
    pub valuation_constant: f64,
}

/// What the summary is made of.
pub struct SummaryInputs<'a> {
    /// The command's arguments (`--baseline`, `--alternate`, `--pools`, `--zones` as
    /// given).
    pub args: &'a Args,
    /// The totals.
    pub tot: &'a CarbonTotals,
    /// The counts (for the cells left out).
    pub counts: &'a CarbonCounts,
    /// The zones, with `--zones`.
    pub zones: Option<&'a Zones>,
    /// The valuation and its constant (NPV per tonne of change), with a price.
    pub valuation: Option<(Valuation, f64)>,
    /// The files written.
    pub outputs: BTreeMap<String, PathBuf>,
}

impl CarbonSummaryJson {
    /// The summary of `s`.
    pub fn new(s: SummaryInputs<'_>) -> Self {
        let (tot, counts, args) = (s.tot, s.counts, s.args);
        let constant = s.valuation.map(|(_, k)| k);
        let by_class = tot
            .by_class
            .iter()
            .map(|c| (c.code.to_string(), ClassJson::new(c)))
            .collect();
        let by_zone = s.zones.map(|z| {
            tot.by_zone
                .iter()
                .map(|t| (z.name_of(t.zone), ZoneJson::new(t, constant)))
                .collect()
        });
        let (valuation, npv_total) = match s.valuation {
            Some((v, k)) => (
                Some(ValuationJson {
                    price: v.price,
                    discount_rate: v.discount_rate,
                    rate_change: v.rate_change,
                    years_baseline: v.year_baseline,
                    years_alternate: v.year_alternate,
                    valuation_constant: k,
                }),
                Some(tot.change_t().map(|c| c * k)),
            ),
            None => (None, None),
        };
        Self {
            baseline: args.baseline.clone(),
            alternate: args.alternate.clone(),
            pools: args.pools.clone(),
            zones: args.zones.clone(),
            cell_area_m2: tot.cell_area_m2,
            geographic: tot.cell_area_m2.is_none(),
            cells: tot.cells,
            area_m2: tot.area_m2,
            baseline_total_t: tot.baseline_t,
            alternate_total_t: tot.alternate_t,
            change_t: tot.change_t(),
            baseline_mean_density_kg_m2: tot.baseline_mean_density_kg_m2(),
            alternate_mean_density_kg_m2: tot.alternate_mean_density_kg_m2(),
            by_class,
            missing: MissingJson {
                cells: counts.excluded_cells(),
                nodata_cells: counts.nodata_cells,
                outside_zones_cells: counts.outside_zones_cells,
                unknown_code_cells: counts.unknown_cells,
                codes: counts.unknown_codes.keys().copied().collect(),
                cells_by_code: counts
                    .unknown_codes
                    .iter()
                    .map(|(c, n)| (c.to_string(), *n))
                    .collect(),
            },
            outputs: s.outputs,
            by_zone,
            valuation,
            npv_total,
        }
    }
}

impl ClassJson {
    fn new(c: &carbon::ClassTotals) -> Self {
        Self {
            name: c.name.clone(),
            density_t_ha: c.density_t_ha,
            cells: c.baseline_cells,
            area_m2: c.baseline_area_m2,
            baseline_t: c.baseline_t,
            alternate_cells: c.alternate_cells,
            alternate_area_m2: c.alternate_area_m2,
            alternate_t: c.alternate_t,
            change_t: c.alternate_t.map(|a| a - c.baseline_t),
        }
    }
}

impl ZoneJson {
    fn new(t: &carbon::ZoneTotals, constant: Option<f64>) -> Self {
        Self {
            code: t.zone,
            cells: t.cells,
            area_m2: t.area_m2,
            baseline_t: t.baseline_t,
            alternate_t: t.alternate_t,
            change_t: t.change_t(),
            baseline_mean_density_kg_m2: carbon::mean_density_kg_m2(t.baseline_t, t.area_m2),
            alternate_mean_density_kg_m2: t
                .alternate_t
                .map(|a| carbon::mean_density_kg_m2(a, t.area_m2)),
            npv: constant.and_then(|k| t.change_t().map(|c| c * k)),
        }
    }
}
