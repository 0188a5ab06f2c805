//! Min-max normalisation of the driver layers over the valid cells.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layers::{Layers, RUN_CELLS};

/// Per-driver minimum and maximum over the valid cells: a raw value `v` of driver `i`
/// normalises to `(v - min[i]) / (max[i] - min[i])`, and to 0 when the driver is constant.
///
/// Values outside the fitted range (another year, another mask) are not clamped: they
/// normalise to numbers below 0 or above 1, which the network extrapolates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Minimum of each driver over the valid cells.
    pub min: Vec<f64>,
    /// Maximum of each driver over the valid cells.
    pub max: Vec<f64>,
}

impl Normalisation {
    /// Fits the minimum and maximum of every driver over the cells where `valid` is true.
    ///
    /// `names` name the drivers in errors; `width` (columns of the grid) turns a cell
    /// index into a row and a column. A NaN or infinite value in a valid cell is an
    /// error naming the driver and the cell's row and column.
    pub fn fit(drivers: &[&[f32]], names: &[String], valid: &[bool], width: usize) -> Result<Self> {
        Self::fit_layers(&drivers.to_vec(), names, valid, width)
    }

    /// [`Self::fit`] of layers read a run of cells at a time.
    pub fn fit_layers(
        drivers: &dyn Layers,
        names: &[String],
        valid: &[bool],
        width: usize,
    ) -> Result<Self> {
        check_layers(drivers, names, valid.len())?;
        if !valid.iter().any(|&v| v) {
            return Err(Error::Data(
                "ANN normalisation: no valid cell (the intersection of the nodata masks is empty)"
                    .into(),
            ));
        }
        let width = width.max(1);
        // every run of cells of every layer at once; the runs' ranges are combined in run
        // order, so the result (and the first bad cell reported) is the same for any
        // number of threads
        let runs: Vec<usize> = (0..valid.len()).step_by(RUN_CELLS).collect();
        let ranges: Vec<Result<(f64, f64)>> = names
            .par_iter()
            .enumerate()
            .map(|(layer, name)| {
                let parts: Vec<Result<(f64, f64)>> = runs
                    .par_iter()
                    .map(|&first| {
                        let ok = &valid[first..(first + RUN_CELLS).min(valid.len())];
                        run_range(drivers, layer, name, first, ok, width)
                    })
                    .collect();
                parts
                    .into_iter()
                    .try_fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                        p.map(|(l, h)| (lo.min(l), hi.max(h)))
                    })
            })
            .collect();
        let mut min = Vec::with_capacity(drivers.count());
        let mut max = Vec::with_capacity(drivers.count());
        for r in ranges {
            let (lo, hi) = r?;
            min.push(lo);
            max.push(hi);
        }
        Ok(Self { min, max })
    }

    /// Number of drivers.
    pub fn len(&self) -> usize {
        self.min.len()
    }

    /// True when there is no driver.
    pub fn is_empty(&self) -> bool {
        self.min.is_empty()
    }

    /// Indices of the drivers that are constant over the valid cells (they normalise to 0
    /// and carry no information).
    pub fn constant_drivers(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.max[i] <= self.min[i])
            .collect()
    }

    /// The normalised value of raw value `v` of driver `i`.
    #[inline]
    pub fn apply(&self, i: usize, v: f32) -> f64 {
        let range = self.max[i] - self.min[i];
        if range > 0.0 {
            (v as f64 - self.min[i]) / range
        } else {
            0.0
        }
    }
}

/// Checks that there is one name per driver and that every driver has `cells` values.
pub(crate) fn check_layers(drivers: &dyn Layers, names: &[String], cells: usize) -> Result<()> {
    if drivers.count() == 0 {
        return Err(Error::Data("ANN: no driver layer given".into()));
    }
    if names.len() != drivers.count() {
        return Err(Error::Data(format!(
            "ANN: {} driver name(s) for {} driver layer(s)",
            names.len(),
            drivers.count()
        )));
    }
    for (layer, name) in names.iter().enumerate() {
        if drivers.cells(layer) != cells {
            return Err(Error::Data(format!(
                "driver `{name}` has {} values, expected {cells} (one per cell of the grid)",
                drivers.cells(layer)
            )));
        }
    }
    Ok(())
}

/// Minimum and maximum of layer `layer` (`name`) over the cells `first..` where `ok` is
/// true; a NaN or infinite value there is an error naming the cell's row and column.
fn run_range(
    drivers: &dyn Layers,
    layer: usize,
    name: &str,
    first: usize,
    ok: &[bool],
    width: usize,
) -> Result<(f64, f64)> {
    let mut run = vec![0.0f32; ok.len()];
    drivers.read(layer, first, &mut run)?;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (j, (&v, &ok)) in run.iter().zip(ok).enumerate() {
        if !ok {
            continue;
        }
        if !v.is_finite() {
            let cell = first + j;
            return Err(Error::Data(format!(
                "driver `{name}`: value {v} at row {}, column {} of a valid cell; \
                 expected a finite number (declare it as the layer's nodata or fix the layer)",
                cell / width,
                cell % width
            )));
        }
        let v = v as f64;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("d{i}")).collect()
    }

    #[test]
    fn min_max_ignore_invalid_cells_and_map_to_unit_range() {
        let a = [5.0f32, 1.0, 3.0, 100.0];
        let b = [2.0f32, 2.0, 2.0, 7.0];
        let valid = [true, true, true, false];
        let n = Normalisation::fit(&[&a, &b], &names(2), &valid, 2).unwrap();
        assert_eq!(n.min, vec![1.0, 2.0]);
        assert_eq!(n.max, vec![5.0, 2.0]);
        // (3 - 1) / (5 - 1) = 0.5; the constant driver gives 0.
        assert_eq!(n.apply(0, 3.0), 0.5);
        assert_eq!(n.apply(0, 5.0), 1.0);
        assert_eq!(n.apply(1, 2.0), 0.0);
        assert_eq!(n.constant_drivers(), vec![1]);
    }

    #[test]
    fn non_finite_value_in_a_valid_cell_names_driver_row_and_column() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0f32, 2.0, 3.0, 4.0, f32::NAN, 6.0];
        let valid = [true; 6];
        let e = Normalisation::fit(&[&a, &b], &names(2), &valid, 3)
            .unwrap_err()
            .to_string();
        // cell 4 on a grid 3 wide: row 1, column 1.
        assert!(e.contains("`d1`") && e.contains("row 1, column 1"), "{e}");
        // The same value in an invalid cell is ignored.
        let valid = [true, true, true, true, false, true];
        assert!(Normalisation::fit(&[&a, &b], &names(2), &valid, 3).is_ok());
        let c = [f32::INFINITY, 2.0, 3.0, 4.0, 5.0, 6.0];
        let e = Normalisation::fit(&[&c], &names(1), &[true; 6], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 0, column 0"), "{e}");
    }
}
