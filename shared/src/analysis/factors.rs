//! The factor table of a driver analysis (paper Table 10, `gwr_factor_r2.csv`): the R2 of
//! a GWR of each class's suitability on each single driver and its permutation test.

use std::path::Path;

use crate::config::Study;
use crate::error::Result;
use crate::files;
use crate::gwr::{self, GwrSettings};

use super::{DriverSample, FitterSource};

/// One cell of the factor table: the single-factor GWR of a class on a driver and its
/// permutation test (None where a fit failed).
#[derive(Debug, Clone)]
pub struct FactorRow {
    /// The driver.
    pub factor: String,
    /// The GWR of the class on intercept + driver, its own bandwidth: (bandwidth, R2).
    pub fit: Option<(f64, f64)>,
    /// Its permutation test at that bandwidth.
    pub null: Option<gwr::FactorNull>,
}

/// Table 10 for Y column `y`: its GWR on each single driver (as it is, each with its
/// own bandwidth, per-point work on `source`), then the permutation test of each
/// ([`gwr::factor_null`], `[gwr] permutations`, its fits on `source`; keyed by
/// seed, class index `y`, driver index and permutation). A failure is logged and left
/// empty.
pub(super) fn factor_table(
    study: &Study,
    sample: &DriverSample,
    y: usize,
    source: &dyn FitterSource,
    s: &GwrSettings,
    drivers: &[String],
) -> Vec<FactorRow> {
    let label = &sample.y_columns[y];
    let y_values = sample.y_col(y);
    (0..drivers.len())
        .map(|j| {
            let columns = [0, 1 + j];
            let fitted = sample.model(y, &columns).and_then(|m| {
                let f = source.fitter(&m, y, &columns);
                gwr::fit_with(&m, f.as_ref(), s)
            });
            let fit = match fitted {
                Ok(r) => (r.diagnostics.bandwidth, r.diagnostics.r2),
                Err(e) => {
                    tracing::warn!(target = %label, driver = %drivers[j], "single-factor GWR failed: {e}");
                    return FactorRow { factor: drivers[j].clone(), fit: None, null: None };
                }
            };
            let factor = sample.x_col(1 + j);
            let data = gwr::FactorData {
                y_name: label,
                y: &y_values,
                factor_name: &drivers[j],
                factor: &factor,
                coords: &sample.coords,
                spherical: sample.spherical,
            };
            let key = gwr::PermutationKey {
                seed: study.config.study.seed,
                class: y as u32,
                factor: j as u32,
            };
            let started = std::time::Instant::now();
            let permutations = study.config.gwr.permutations;
            let null = gwr::intercept_only_r2(&data, &s.weighting, fit.0).and_then(|r0| {
                let fits = source.null_r2(&data, y, j, &s.weighting, fit.0, key, permutations as u32)?;
                gwr::null_of(r0, fit.1, fits)
            });
            let null = match null {
                Ok(n) => {
                    tracing::info!(target = %label, driver = %drivers[j], permutations = n.null_r2.len(), failed = n.failed, seconds = started.elapsed().as_secs_f64(), "factor permutation test done");
                    if n.failed > 0 {
                        crate::notices::warn(format!(
                            "GWR factor table, {label} on {}: {} of {} permutation fits were singular and are left out of the p-value",
                            drivers[j], n.failed, study.config.gwr.permutations
                        ));
                    }
                    Some(n)
                }
                Err(e) => {
                    tracing::warn!(target = %label, driver = %drivers[j], "permutation test failed: {e}");
                    None
                }
            };
            FactorRow { factor: drivers[j].clone(), fit: Some(fit), null }
        })
        .collect()
}

/// The columns of `gwr_factor_r2.csv`, in order.
pub const FACTOR_TABLE_COLUMNS: [&str; 7] = [
    "class",
    "factor",
    "bandwidth",
    "r2",
    "r2_intercept_only",
    "r2_null_p95",
    "p_value",
];

/// Writes `gwr_factor_r2.csv`: one row per class and driver with the single-factor
/// GWR's bandwidth and R2, the intercept-only GWR's R2 at that bandwidth, the 95th
/// percentile of the permutation R2 and the permutation p-value (empty where not
/// computed).
pub(super) fn write_factor_table(path: &Path, table: &[(String, Vec<FactorRow>)]) -> Result<()> {
    let header: Vec<String> = FACTOR_TABLE_COLUMNS.map(String::from).to_vec();
    let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.4}"));
    let rows: Vec<Vec<String>> = table
        .iter()
        .flat_map(|(class, rows)| {
            rows.iter().map(move |r| {
                let n = r.null.as_ref();
                vec![
                    class.clone(),
                    r.factor.clone(),
                    r.fit.map_or(String::new(), |f| format!("{}", f.0)),
                    opt(r.fit.map(|f| f.1)),
                    opt(n.map(|n| n.r2_intercept_only)),
                    opt(n.and_then(|n| n.r2_null_p95)),
                    opt(n.and_then(|n| n.p_value)),
                ]
            })
        })
        .collect();
    files::write_csv(path, &header, &rows)
}

/// One class's factor table row: per driver in order, the bandwidth, R2, intercept-only
/// R2, null 95th percentile and p-value (None where not computed).
pub(super) fn factor_json(class: &str, rows: &[FactorRow]) -> super::FactorR2Json {
    let col = |f: &dyn Fn(&FactorRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    super::FactorR2Json {
        class: class.to_string(),
        bandwidth: col(&|r| r.fit.map(|f| f.0)),
        r2: col(&|r| r.fit.map(|f| f.1)),
        r2_intercept_only: col(&|r| r.null.as_ref().map(|n| n.r2_intercept_only)),
        r2_null_p95: col(&|r| r.null.as_ref().and_then(|n| n.r2_null_p95)),
        p_value: col(&|r| r.null.as_ref().and_then(|n| n.p_value)),
    }
}
