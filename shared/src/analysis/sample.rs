//! The sample of a driver analysis: the seeded sample of valid cells
//! ([`sample_cells`]), the carbon change at them ([`carbon_change_at`]) and the X and Y
//! columns of the GWRs at them ([`DriverSample`], [`driver_sample`]).

use rayon::prelude::*;

use crate::carbon::totals::storage_t;
use crate::config::Study;
use crate::error::{Error, Result};
use crate::gwr::{self, GwrData, GwrModel, INTERCEPT};
use crate::rng::{stream, CounterRng};
use crate::stack::Stack;

/// A seeded sample of `n` valid cells (the smallest Philox keys; ascending cell order).
pub fn sample_cells(mask: &[bool], n: usize, seed: u64) -> Vec<usize> {
    let valid = mask.par_iter().filter(|&&v| v).count();
    if n > valid {
        crate::notices::warn(format!(
            "gwr.sample_points = {n} is more than the {valid} valid cells: the GWR uses all {valid}"
        ));
    }
    let n = n.min(valid);
    let rng = CounterRng::new(seed);
    // the n smallest (key, cell) pairs, without a pair per valid cell in memory
    // (a 32-bit key in the high half keeps the order of (key, cell) pairs)
    let keyed = crate::select::smallest_n_spread(
        || {
            mask.par_iter()
                .enumerate()
                .filter(|(_, &v)| v)
                .map(|(i, _)| {
                    let k = rng.block(stream::GWR_SAMPLE, 0, i as u64, 0)[0];
                    ((k as u64) << 32, i)
                })
        },
        n,
        valid,
    );
    let mut cells: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    cells.sort_unstable();
    cells
}

/// The sample of a driver analysis: the sampled cells with their coordinates, the X
/// columns (intercept, the drivers as they are, then standardised when the study asks
/// for it) and the Y columns (each class's suitability, then each scenario's carbon
/// change), ready to be sent once to cluster workers.
#[derive(Debug, Clone)]
pub struct DriverSample {
    /// Sampled cells (row-major grid indices, ascending).
    pub cells: Vec<usize>,
    /// Their cell centres.
    pub coords: Vec<[f64; 2]>,
    /// X column names: `Intercept`, the drivers, then `std_<driver>` when standardised.
    pub columns: Vec<String>,
    /// n x columns, row-major.
    pub x: Vec<f64>,
    /// Y column names: `suitability_<class>` then `carbon_change_<scenario>`.
    pub y_columns: Vec<String>,
    /// n x y_columns, row-major.
    pub y: Vec<f64>,
    /// Coordinates are (longitude, latitude) degrees of a geographic grid: distances
    /// are great-circle km.
    pub spherical: bool,
    drivers: usize,
    standardize: bool,
}

impl DriverSample {
    /// Number of points.
    pub fn n(&self) -> usize {
        self.cells.len()
    }

    pub(super) fn y_col(&self, c: usize) -> Vec<f64> {
        let m = self.y_columns.len();
        (0..self.n()).map(|i| self.y[i * m + c]).collect()
    }

    pub(super) fn x_col(&self, c: usize) -> Vec<f64> {
        let w = self.columns.len();
        (0..self.n()).map(|i| self.x[i * w + c]).collect()
    }

    /// X columns of the model on every driver: the intercept, then the drivers
    /// (standardised ones when the study asks for it).
    pub fn all_drivers(&self) -> Vec<usize> {
        let first = if self.standardize {
            1 + self.drivers
        } else {
            1
        };
        std::iter::once(0)
            .chain(first..first + self.drivers)
            .collect()
    }

    /// Builds the model of Y column `y` on X `columns` (intercept first) with the
    /// checks of [`GwrData::new`], and verifies that its design matrix is exactly the
    /// sample's columns (what a worker fits).
    pub fn model(&self, y: usize, columns: &[usize]) -> Result<GwrModel> {
        let factors: Vec<(String, Vec<f64>)> = columns[1..]
            .iter()
            .map(|&c| (self.columns[c].clone(), self.x_col(c)))
            .collect();
        let data = GwrData::new(
            &self.y_columns[y],
            self.y_col(y),
            factors,
            self.coords.clone(),
        )?;
        let w = self.columns.len();
        let same = (0..self.n()).all(|i| {
            data.row(i)
                .iter()
                .zip(columns)
                .all(|(a, &c)| a.to_bits() == self.x[i * w + c].to_bits())
        });
        if !same {
            return Err(Error::Data(format!(
                "GWR sample: the design of `{}` differs from the sample's columns",
                self.y_columns[y]
            )));
        }
        Ok(GwrModel::new(data.with_spherical(self.spherical)))
    }
}

/// Carbon storage change (t per cell) of `cells`: density of the scenario's class minus
/// density of the base map's class (t/ha, 0 for classes without pools) times the cell
/// area in ha, as the carbon tables count it.
pub fn carbon_change_at(
    density: &[f64],
    base: &[u8],
    scenario: &[u8],
    cells: &[usize],
    areas: &crate::area::CellAreas,
    width: usize,
) -> Vec<f64> {
    let d = |c: u8| density.get(c as usize).copied().unwrap_or(0.0);
    cells
        .iter()
        .map(|&i| {
            let a = areas.cell(i, width);
            storage_t(d(scenario[i]), 1, a) - storage_t(d(base[i]), 1, a)
        })
        .collect()
}

/// Builds the sample of the driver analysis: `suitability` cell-major (K per cell), and
/// `carbon` the (scenario name, carbon change per sampled cell) columns.
pub fn driver_sample(
    study: &Study,
    stack: &Stack,
    suitability: &[f32],
    carbon: &[(String, Vec<f64>)],
    cells: Vec<usize>,
) -> Result<DriverSample> {
    let k = study.k();
    if suitability.len() != stack.grid.cells() * k {
        return Err(Error::Data(format!(
            "driver analysis: {} suitability values, expected {} cells x {k} classes",
            suitability.len(),
            stack.grid.cells()
        )));
    }
    let at: Vec<f32> = cells
        .iter()
        .flat_map(|&i| suitability[i * k..(i + 1) * k].iter().copied())
        .collect();
    driver_sample_at(study, stack, &at, carbon, cells)
}

/// [`driver_sample`] from the suitability of the sampled cells only: `suitability_at`
/// holds K values per cell of `cells`, in that order.
pub fn driver_sample_at(
    study: &Study,
    stack: &Stack,
    suitability_at: &[f32],
    carbon: &[(String, Vec<f64>)],
    cells: Vec<usize>,
) -> Result<DriverSample> {
    let k = study.k();
    let n = cells.len();
    if suitability_at.len() != n * k {
        return Err(Error::Data(format!(
            "driver analysis: {} suitability values for {n} sample cells x {k} classes",
            suitability_at.len()
        )));
    }
    let coords: Vec<[f64; 2]> = cells
        .iter()
        .map(|&i| {
            let (x, y) = stack
                .grid
                .cell_centre(i % stack.grid.width, i / stack.grid.width);
            [x, y]
        })
        .collect();
    let standardize = study.config.gwr.standardize;
    let mut cols: Vec<(String, Vec<f64>)> = vec![(INTERCEPT.to_string(), vec![1.0; n])];
    for (j, d) in stack.drivers.iter().enumerate() {
        let values = crate::layers::values_at(&stack.drivers, j, &cells)?;
        cols.push((d.name.clone(), values.iter().map(|&v| v as f64).collect()));
    }
    if standardize {
        for j in 0..stack.drivers.len() {
            let s = gwr::standardized(&cols[1 + j].1);
            cols.push((format!("std_{}", stack.drivers[j].name), s));
        }
    }
    let mut ycols: Vec<(String, Vec<f64>)> = study
        .config
        .classes
        .iter()
        .enumerate()
        .map(|(c, class)| {
            (
                format!("suitability_{}", class.name),
                (0..n).map(|j| suitability_at[j * k + c] as f64).collect(),
            )
        })
        .collect();
    for (name, v) in carbon {
        if v.len() != n {
            return Err(Error::Data(format!(
                "carbon change of scenario {name}: {} values for {n} sample cells",
                v.len()
            )));
        }
        ycols.push((format!("carbon_change_{name}"), v.clone()));
    }
    let row_major = |c: &[(String, Vec<f64>)]| -> Vec<f64> {
        (0..n)
            .flat_map(|i| c.iter().map(move |(_, v)| v[i]))
            .collect()
    };
    Ok(DriverSample {
        x: row_major(&cols),
        y: row_major(&ycols),
        columns: cols.into_iter().map(|(n, _)| n).collect(),
        y_columns: ycols.into_iter().map(|(n, _)| n).collect(),
        cells,
        coords,
        spherical: matches!(
            crate::area::crs_kind(&stack.grid.crs_wkt, &stack.reference.display().to_string())?,
            crate::area::CrsKind::Geographic(_)
        ),
        drivers: stack.drivers.len(),
        standardize,
    })
}
