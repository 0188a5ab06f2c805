//! LEAS, PLUS's land expansion analysis strategy (Liang et al. 2021, CEUS 85: 101569):
//! for each class k, the cells that became k between the two maps of the period
//! (expansion) against the cells that did not, both among the cells that were not k at
//! the start; a random forest on the drivers gives each cell's development probability
//! for k, and its permutation importance each driver's contribution to k's expansion.
//!
//! The sample is drawn cell by cell: a valid cell that was not k enters class k's sample
//! when a uniform draw keyed by (seed, stream `LEAS_SAMPLE`, k, cell index) is below the
//! sample rate, so the sample is the same for any tiling, thread or worker count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::contribution::{noise_rmse, shares};
use super::ensemble::{fit, Forest, ForestSettings};
use super::tree::Samples;
use crate::error::{Error, Result};
use crate::layers::{self, Layers, RUN_CELLS};
use crate::rng::{stream, CounterRng};

/// What LEAS reads: the period's two class maps and the drivers, on one grid.
#[derive(Clone, Copy, Debug)]
pub struct LeasData<'a> {
    /// Driver layers (row-major, one value per cell).
    pub drivers: &'a dyn Layers,
    /// Driver names, one per driver.
    pub driver_names: &'a [String],
    /// Class index per cell at the start of the period (K or more: invalid).
    pub from: &'a [u8],
    /// Class index per cell at the end of the period (K or more: invalid).
    pub to: &'a [u8],
    /// Cells that never change (left out of the sample); empty: none.
    pub restricted: &'a [bool],
    /// Class names (K of them).
    pub class_names: &'a [String],
    /// The period's years, for messages.
    pub years: (i32, i32),
}

/// LEAS settings: the forest and the share of cells sampled.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LeasSettings {
    /// The forest of each class.
    pub forest: ForestSettings,
    /// Share of the candidate cells drawn into each class's sample, in (0, 1].
    pub sample_rate: f64,
}

/// One class's sample: its cells (ascending) and whether each became the class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassSample {
    /// Cell indices, ascending.
    pub cells: Vec<usize>,
    /// True where the cell became the class during the period.
    pub expansion: Vec<bool>,
}

/// Draws class `k`'s sample: valid cells (both maps below `n_classes`, not restricted)
/// that were not `k` at the start, each kept when its keyed draw is below `rate`.
pub fn expansion_sample(
    from: &[u8],
    to: &[u8],
    restricted: &[bool],
    k: usize,
    n_classes: usize,
    rate: f64,
    seed: u64,
) -> ClassSample {
    let rng = CounterRng::new(seed);
    let kept: Vec<(usize, bool)> = from
        .par_iter()
        .zip(to.par_iter())
        .enumerate()
        .filter(|&(c, (&a, &b))| {
            (a as usize) < n_classes
                && (b as usize) < n_classes
                && a as usize != k
                && !restricted.get(c).copied().unwrap_or(false)
                && CounterRng::unit(rng.block(stream::LEAS_SAMPLE, k as u32, c as u64, 0)[0]) < rate
        })
        .map(|(c, (_, &b))| (c, b as usize == k))
        .collect();
    ClassSample {
        cells: kept.iter().map(|e| e.0).collect(),
        expansion: kept.iter().map(|e| e.1).collect(),
    }
}

/// One class's LEAS result (in JSON without its forest: run.json's and `flus validate
/// --json`'s `random_forest.classes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassForest {
    /// Class name.
    pub class: String,
    /// Cells in the sample.
    pub sample_cells: usize,
    /// Sampled cells that became the class.
    pub expansion_cells: usize,
    /// The forest; None when the class did not expand in the period (its development
    /// probability is then 0 everywhere).
    #[serde(skip)]
    pub forest: Option<Forest>,
    /// Mean out-of-bag accuracy of the trees.
    pub oob_accuracy: Option<f64>,
    /// PLUS's `RMSE`: the forest's root mean square error on its training rows (None
    /// without a forest; absent from run.json files written before session 14).
    #[serde(default)]
    pub rmse: Option<f64>,
    /// PLUS's contribution of each driver (shares summing to 1, [`super::contribution`]);
    /// in JSON under the forests' `contributions`.
    #[serde(skip)]
    pub contribution: Option<Vec<f64>>,
}

/// The LEAS result of every class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leas {
    /// Driver names.
    pub drivers: Vec<String>,
    /// One entry per class, in class order.
    pub classes: Vec<ClassForest>,
}

impl Leas {
    /// Contribution of each driver to each class's expansion (class x driver): PLUS's
    /// shares of the error growth; None for a class that did not expand.
    pub fn contributions(&self) -> Vec<Option<Vec<f64>>> {
        self.classes
            .iter()
            .map(|c| c.contribution.clone())
            .collect()
    }

    /// The forests' out-of-bag permutation importance (mean decrease in accuracy, class x
    /// driver); None for a class that did not expand.
    pub fn oob_importance(&self) -> Vec<Option<Vec<f64>>> {
        self.classes
            .iter()
            .map(|c| c.forest.as_ref().map(|f| f.importance.clone()))
            .collect()
    }
}

/// Driver rows (row-major) of `cells`.
fn gather(drivers: &dyn Layers, cells: &[usize]) -> Result<Vec<f32>> {
    let d = drivers.count();
    let cols = (0..d)
        .map(|i| layers::values_at(drivers, i, cells))
        .collect::<Result<Vec<_>>>()?;
    let mut x = Vec::with_capacity(cells.len() * d);
    for j in 0..cells.len() {
        x.extend(cols.iter().map(|c| c[j]));
    }
    Ok(x)
}

/// Runs LEAS: class k's forest is forest key k, grown on its [`expansion_sample`]. A
/// class without any expansion cell in the period gets no forest (a notice in the
/// log); a class whose expansion cells all escaped the sample is an error asking for a
/// higher `sample_rate`.
pub fn leas(data: &LeasData, settings: &LeasSettings, seed: u64) -> Result<Leas> {
    leas_with(data, settings, seed, &fit)
}

/// The forest fitter of [`leas_with`]: (rows, settings, seed, forest key) -> forest.
pub type FitForest<'a> = dyn Fn(&Samples, &ForestSettings, u64, u32) -> Result<Forest> + Sync + 'a;

/// [`leas`] with each class forest fitted by `fit_forest` (e.g. its trees grown on the
/// workers); it must give [`fit`]'s result for the same bits.
pub fn leas_with(
    data: &LeasData,
    settings: &LeasSettings,
    seed: u64,
    fit_forest: &FitForest,
) -> Result<Leas> {
    let k = data.class_names.len();
    let d = data.drivers.count();
    if d != data.driver_names.len() || data.from.len() != data.to.len() {
        return Err(Error::Data(format!(
            "LEAS: {d} driver layers for {} names, maps of {} and {} cells",
            data.driver_names.len(),
            data.from.len(),
            data.to.len()
        )));
    }
    settings.forest.check(d)?;
    let (y0, y1) = data.years;
    let mut classes = Vec::with_capacity(k);
    for (c, name) in data.class_names.iter().enumerate() {
        let s = expansion_sample(
            data.from,
            data.to,
            data.restricted,
            c,
            k,
            settings.sample_rate,
            seed,
        );
        let positives = s.expansion.iter().filter(|&&e| e).count();
        let fitted = if positives == 0 {
            let grown = data
                .from
                .iter()
                .zip(data.to)
                .enumerate()
                .filter(|&(i, (&a, &b))| {
                    a as usize != c
                        && (a as usize) < k
                        && b as usize == c
                        && !data.restricted.get(i).copied().unwrap_or(false)
                })
                .count();
            if grown > 0 {
                return Err(Error::Data(format!(
                    "LEAS: {grown} cells became `{name}` between {y0} and {y1}, none of them \
                     in the sample at sample_rate {}; raise `[random_forest] sample_rate`",
                    settings.sample_rate
                )));
            }
            tracing::warn!(class = %name, "LEAS: no cell became this class between {y0} and {y1}; its development probability is 0");
            None
        } else {
            let x = gather(data.drivers, &s.cells)?;
            let samples = Samples {
                x: &x,
                d,
                y: &s.expansion,
            };
            samples.check().map_err(|e| {
                Error::Data(format!(
                    "LEAS sample of class `{name}`: {e} (drivers {:?})",
                    data.driver_names
                ))
            })?;
            let forest = fit_forest(&samples, &settings.forest, seed, c as u32)?;
            let noise = noise_rmse(&forest, &samples, seed, c as u32);
            Some((forest, noise))
        };
        let (forest, noise) = fitted.unzip();
        tracing::info!(class = %name, sample = s.cells.len(), expansion = positives, oob_accuracy = ?forest.as_ref().and_then(|f| f.oob_accuracy), rmse = ?noise.as_ref().map(|n| n.rmse), "LEAS forest");
        classes.push(ClassForest {
            class: name.clone(),
            sample_cells: s.cells.len(),
            expansion_cells: positives,
            oob_accuracy: forest.as_ref().and_then(|f| f.oob_accuracy),
            rmse: noise.as_ref().map(|n| n.rmse),
            contribution: noise.as_ref().map(|n| shares(n.rmse, &n.noised)),
            forest,
        });
    }
    Ok(Leas {
        drivers: data.driver_names.to_vec(),
        classes,
    })
}

/// The development probability of every class at every valid cell (`mask`), cell-major
/// (`cell * K + k`, the layout of the ANN's suitability), 0 at invalid cells and for
/// classes without a forest. Rows of [`RUN_CELLS`] cells in parallel; each value depends
/// only on its cell's drivers.
pub fn development_probability(
    drivers: &dyn Layers,
    mask: &[bool],
    leas: &Leas,
) -> Result<Vec<f32>> {
    let k = leas.classes.len();
    let d = drivers.count();
    let mut out = vec![0f32; mask.len() * k];
    out.par_chunks_mut(RUN_CELLS * k)
        .enumerate()
        .try_for_each(|(chunk, o)| -> Result<()> {
            let first = chunk * RUN_CELLS;
            let n = o.len() / k;
            let mut cols = vec![vec![0f32; n]; d];
            for (i, col) in cols.iter_mut().enumerate() {
                drivers.read(i, first, col)?;
            }
            let mut x = vec![0f32; d];
            for j in 0..n {
                if !mask[first + j] {
                    continue;
                }
                for (v, col) in x.iter_mut().zip(&cols) {
                    *v = col[j];
                }
                for (c, cf) in leas.classes.iter().enumerate() {
                    if let Some(f) = &cf.forest {
                        o[j * k + c] = f.predict(&x) as f32;
                    }
                }
            }
            Ok(())
        })?;
    Ok(out)
}

/// Writes `driver_contributions.csv`: a row per class, a column per driver (after
/// `class`), each value the driver's contribution to the class's expansion (PLUS's
/// share of the error growth, a row summing to 1); empty for a class that did not
/// expand.
pub fn write_contributions(path: &std::path::Path, leas: &Leas) -> Result<()> {
    let header: Vec<String> = std::iter::once("class".to_string())
        .chain(leas.drivers.iter().cloned())
        .collect();
    let rows: Vec<Vec<String>> = leas
        .classes
        .iter()
        .zip(leas.contributions())
        .map(|(c, imp)| {
            std::iter::once(c.class.clone())
                .chain(match imp {
                    Some(v) => v.iter().map(|x| format!("{x:.6}")).collect::<Vec<_>>(),
                    None => vec![String::new(); leas.drivers.len()],
                })
                .collect()
        })
        .collect();
    crate::files::write_csv(path, &header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::TreeSettings;

    /// A 4 x 4 map, classes 0..2, 9 = invalid:
    /// from          to
    /// 0 0 1 1       0 2 1 1
    /// 0 0 1 2       2 2 1 2
    /// 0 1 1 2       0 1 2 2
    /// 9 0 0 2       9 0 2 2
    fn maps() -> (Vec<u8>, Vec<u8>) {
        (
            vec![0, 0, 1, 1, 0, 0, 1, 2, 0, 1, 1, 2, 9, 0, 0, 2],
            vec![0, 2, 1, 1, 2, 2, 1, 2, 0, 1, 2, 2, 9, 0, 2, 2],
        )
    }

    #[test]
    fn a_full_sample_holds_the_cells_counted_by_hand() {
        let (from, to) = maps();
        // rate 1: every candidate. Class 2: cells not 2 at the start and valid: 0, 1,
        // 2, 3, 4, 5, 6, 8, 9, 10, 13, 14 (12 cells); became 2: 1, 4, 5, 10, 14.
        let s = expansion_sample(&from, &to, &[], 2, 3, 1.0, 1);
        assert_eq!(s.cells, vec![0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 13, 14]);
        let grew: Vec<usize> = s
            .cells
            .iter()
            .zip(&s.expansion)
            .filter(|e| *e.1)
            .map(|e| *e.0)
            .collect();
        assert_eq!(grew, vec![1, 4, 5, 10, 14]);
        // class 0 never expanded: 8 candidates (cells of 1 or 2), no positive
        let s = expansion_sample(&from, &to, &[], 0, 3, 1.0, 1);
        assert_eq!(s.cells, vec![2, 3, 6, 7, 9, 10, 11, 15]);
        assert!(s.expansion.iter().all(|e| !e));
        // a restricted cell leaves the sample
        let mut restricted = vec![false; 16];
        restricted[4] = true;
        let s = expansion_sample(&from, &to, &restricted, 2, 3, 1.0, 1);
        assert_eq!(s.cells.len(), 11);
    }

    #[test]
    fn the_sample_rate_is_met_and_the_draw_is_repeatable() {
        // 200 x 200 cells of class 0 at the start, all candidates for class 1
        let n = 40_000;
        let from = vec![0u8; n];
        let to = vec![1u8; n];
        let s = expansion_sample(&from, &to, &[], 1, 2, 0.05, 9);
        // binomial(40000, 0.05): mean 2000, sd sqrt(40000 * 0.05 * 0.95) = 43.6
        assert!(
            (s.cells.len() as f64 - 2000.0).abs() < 4.0 * 43.6,
            "{}",
            s.cells.len()
        );
        let again = expansion_sample(&from, &to, &[], 1, 2, 0.05, 9);
        assert_eq!(again, s);
    }

    fn settings() -> LeasSettings {
        LeasSettings {
            forest: ForestSettings {
                n_trees: 10,
                tree: TreeSettings {
                    mtry: 2,
                    max_depth: None,
                    min_leaf: 1,
                },
            },
            sample_rate: 0.5,
        }
    }

    #[test]
    fn leas_learns_where_a_class_grows_and_which_driver_drives_it() {
        // 60 x 60 grid; class 0 everywhere at the start; cells with column >= 40 became
        // class 1. Driver 0 = column / 60 (drives it), driver 1 = a keyed uniform noise.
        let (w, h) = (60usize, 60usize);
        let n = w * h;
        let from = vec![0u8; n];
        let to: Vec<u8> = (0..n).map(|c| u8::from(c % w >= 40)).collect();
        let rng = CounterRng::new(4);
        let d0: Vec<f32> = (0..n).map(|c| (c % w) as f32 / w as f32).collect();
        let d1: Vec<f32> = (0..n)
            .map(|c| CounterRng::unit(rng.block(stream::SYNTH_GWR, 1, c as u64, 0)[0]) as f32)
            .collect();
        let drivers = vec![d0, d1];
        let names = vec!["distance".to_string(), "noise".to_string()];
        let classes = vec!["rural".to_string(), "urban".to_string()];
        let data = LeasData {
            drivers: &drivers,
            driver_names: &names,
            from: &from,
            to: &to,
            restricted: &[],
            class_names: &classes,
            years: (2000, 2010),
        };
        let l = leas(&data, &settings(), 3).unwrap();
        assert!(l.classes[0].forest.is_none(), "rural never grew");
        let urban = l.classes[1].forest.as_ref().unwrap();
        // half of 3600 cells sampled: mean 1800, sd 30
        assert!((l.classes[1].sample_cells as f64 - 1800.0).abs() < 120.0);
        let oob = l.oob_importance();
        assert!(oob[0].is_none());
        let imp = oob[1].as_ref().unwrap();
        // 1/3 of the rows grew; permuting the column driver redraws it independently,
        // which flips 2 * (1/3)(2/3) = 4/9 = 0.444 of the rows for a perfect forest
        assert!(imp[0] > 0.38 && imp[0] < 0.5, "{imp:?}");
        assert!(imp[1].abs() < 0.02, "{imp:?}");
        assert!(urban.oob_accuracy.unwrap() > 0.98);
        // PLUS's figures: the forest fits its training rows (RMSE near 0); with the
        // column driver noised 4/9 of the rows get the wrong 0/1 answer, an RMSE of
        // sqrt(4/9) = 0.667; the noise driver adds (nearly) nothing, so the column
        // driver's share is (nearly) 1
        let rmse = l.classes[1].rmse.unwrap();
        assert!(rmse < 0.05, "{rmse}");
        assert!(l.classes[0].rmse.is_none());
        let c = l.contributions();
        assert!(c[0].is_none());
        let share = c[1].as_ref().unwrap();
        assert!(share[0] > 0.97 && share[1] < 0.03, "{share:?}");
        assert!((share[0] + share[1] - 1.0).abs() < 1e-12, "{share:?}");
        let mask = vec![true; n];
        let p = development_probability(&drivers, &mask, &l).unwrap();
        // cell (row 0, column 55) grew; (row 0, column 5) did not
        assert_eq!(p[55 * 2], 0.0);
        assert!(p[55 * 2 + 1] > 0.9);
        assert!(p[5 * 2 + 1] < 0.1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("driver_contributions.csv");
        write_contributions(&path, &l).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "class,distance,noise");
        assert_eq!(lines[1], "rural,,");
        assert!(
            lines[2].starts_with(&format!("urban,{:.6},", share[0])),
            "{text}"
        );
    }

    #[test]
    fn expansion_missed_by_the_sample_asks_for_a_higher_rate() {
        let from = vec![0u8; 100];
        let mut to = vec![0u8; 100];
        to[7] = 1;
        let drivers = vec![vec![0f32; 100]];
        let names = vec!["d".to_string()];
        let classes = vec!["a".to_string(), "b".to_string()];
        let data = LeasData {
            drivers: &drivers,
            driver_names: &names,
            from: &from,
            to: &to,
            restricted: &[],
            class_names: &classes,
            years: (2000, 2010),
        };
        let mut st = settings();
        st.forest.tree.mtry = 1;
        st.sample_rate = 1e-9;
        let e = leas(&data, &st, 3).unwrap_err().to_string();
        assert!(
            e.contains("1 cells became `b` between 2000 and 2010") && e.contains("sample_rate"),
            "{e}"
        );
    }
}
