//! Driver analysis of a study (docs/design.md §8, paper Table 10): GWR of each class's
//! suitability and of each scenario's carbon change on the drivers at a seeded sample of
//! valid cells, maps of the local coefficients, and the R2 of a GWR of each class's
//! suitability on each single driver. The per-point work runs wherever a
//! [`FitterSource`] says (this machine, or the cluster's workers: the same bits).
//!
//! This module runs the analysis ([`run`], [`run_with`]): one GWR per target (each
//! class's suitability, each scenario's carbon change), its points CSV and coefficient
//! map, and the factor table. The sample is built in `sample`, the per-point work's
//! [`FitterSource`] is in `source`, the coefficient maps' grid in `maps` and the factor
//! table in `factors`, all re-exported here.

use std::path::{Path, PathBuf};

use crate::config::{KernelName, Study};
use crate::error::Result;
use crate::files;
use crate::gwr::{self, BandwidthChoice, GwrModel, GwrSettings, Kernel, SearchSettings, Weighting};
use crate::stack::Stack;

mod factors;
mod json;
mod maps;
mod sample;
mod source;

#[cfg(test)]
mod tests;

pub use factors::{FactorRow, FACTOR_TABLE_COLUMNS};
pub use json::{AnalysisJson, CoefficientGridJson, FactorR2Json, GwrFitJson, GwrTargetJson};
pub use maps::{coarse_grid, CoarseGrid, COEFFICIENT_MAP_WIDTH, COEFFICIENT_NODATA};
pub use sample::{carbon_change_at, driver_sample, driver_sample_at, sample_cells, DriverSample};
pub use source::{FitterSource, LocalSource};

use factors::{factor_json, factor_table, write_factor_table};
use maps::write_coefficient_map;

/// The GWR settings of the study's `[gwr]` section.
pub fn settings(study: &Study) -> GwrSettings {
    let g = &study.config.gwr;
    GwrSettings {
        weighting: Weighting {
            kernel: match g.kernel {
                KernelName::Bisquare => Kernel::Bisquare,
                KernelName::Gaussian => Kernel::Gaussian,
                KernelName::Exponential => Kernel::Exponential,
            },
            adaptive: !g.fixed,
            ..Weighting::default()
        },
        bandwidth: match g.bandwidth {
            Some(b) => BandwidthChoice::Given(b),
            None => BandwidthChoice::Search(SearchSettings::default()),
        },
        ..GwrSettings::default()
    }
}

/// One GWR of the analysis, its outputs written; returns its summary row and figures.
#[allow(clippy::too_many_arguments)]
fn one_gwr(
    label: &str,
    sample: &DriverSample,
    y: usize,
    source: &dyn FitterSource,
    s: &GwrSettings,
    coarse: &CoarseGrid,
    points_csv: &Path,
    map: &Path,
) -> Result<(Vec<String>, GwrFitJson)> {
    let columns = sample.all_drivers();
    let model = sample.model(y, &columns)?;
    let fitter = source.fitter(&model, y, &columns);
    let r = gwr::fit_with(&model, fitter.as_ref(), s)?;
    let d = &r.diagnostics;
    let mut row = vec![
        label.to_string(),
        d.n.to_string(),
        format!("{}", d.bandwidth),
        format!("{:.4}", d.aicc),
        format!("{:.6}", d.r2),
        format!("{:.6}", d.adj_r2),
        format!("{:.6}", r.ols.r2),
    ];
    row.extend(r.coefficients.iter().map(|c| format!("{:.6}", c.mean)));
    write_points(points_csv, sample, y, &model, &r)?;
    write_coefficient_map(
        map,
        coarse,
        &model,
        fitter.as_ref(),
        &s.weighting,
        d.bandwidth,
    )?;
    Ok((
        row,
        GwrFitJson {
            bandwidth: d.bandwidth,
            aicc: d.aicc,
            r2: d.r2,
            adj_r2: d.adj_r2,
            ols_r2: r.ols.r2,
            points_csv: points_csv.to_path_buf(),
            coefficient_map: map.to_path_buf(),
        },
    ))
}

/// Writes the points CSV of target `y` to `path`: per point its coordinates, its Y and X
/// values, fitted value, residual, local coefficients, standard errors, t-values, local
/// R2 and influence.
fn write_points(
    path: &Path,
    sample: &DriverSample,
    y: usize,
    model: &GwrModel,
    r: &gwr::GwrResult,
) -> Result<()> {
    let coords = model.data().coords();
    // the point's X values too (every column of the sample but the intercept), so that
    // `flus gwr` on this file gives the same fits (shortest round-trip numbers)
    let w = sample.columns.len();
    let mut header = vec!["x".to_string(), "y".into(), sample.y_columns[y].clone()];
    header.extend(sample.columns[1..].iter().cloned());
    header.extend(["yhat".to_string(), "residual".into()]);
    header.extend(r.names.iter().map(|n| format!("b_{n}")));
    header.extend(r.names.iter().map(|n| format!("se_{n}")));
    header.extend(r.names.iter().map(|n| format!("t_{n}")));
    header.extend(["local_r2".to_string(), "influence".into()]);
    let rows: Vec<Vec<String>> = r
        .fits
        .iter()
        .zip(&r.stats)
        .map(|(f, st)| {
            let mut row = vec![
                format!("{}", coords[f.index][0]),
                format!("{}", coords[f.index][1]),
                format!("{}", model.data().y()[f.index]),
            ];
            row.extend(
                sample.x[f.index * w + 1..(f.index + 1) * w]
                    .iter()
                    .map(|v| format!("{v}")),
            );
            row.extend([format!("{}", f.fitted), format!("{}", f.residual)]);
            row.extend(f.params.iter().map(|v| format!("{v}")));
            row.extend(st.se.iter().map(|v| format!("{v}")));
            row.extend(st.t.iter().map(|v| format!("{v}")));
            row.push(format!("{}", st.local_r2));
            row.push(format!("{}", f.influence));
            row
        })
        .collect();
    files::write_csv(path, &header, &rows)
}

/// Runs the driver analysis on the suitability (cell-major, K per cell) on this
/// machine's threads, without carbon change (see [`run_with`]).
pub fn run(study: &Study, stack: &Stack, suitability: &[f32], dir: &Path) -> Result<AnalysisJson> {
    let cells = sample_cells(
        &stack.mask,
        study.config.gwr.sample_points,
        study.config.study.seed,
    );
    let sample = driver_sample(study, stack, suitability, &[], cells)?;
    run_with(study, stack, &sample, &LocalSource, dir)
}

/// Runs the driver analysis of `sample` with the per-point work on `source`, and
/// writes into `dir`: `gwr_summary.csv` (one row per class and per scenario's carbon
/// change), `gwr_points_<class>.csv` and `gwr_carbon_<scenario>.csv` (per point: y,
/// fitted, residual, coefficients, standard errors, t-values, local R2, influence),
/// `gwr_coef_<class>.tif` and `gwr_coef_carbon_<scenario>.tif` (local coefficients on a
/// coarse grid, one band per parameter) and `gwr_factor_r2.csv` (Table 10). Returns a
/// summary; a GWR that fails is reported, not fatal.
pub fn run_with(
    study: &Study,
    stack: &Stack,
    sample: &DriverSample,
    source: &dyn FitterSource,
    dir: &Path,
) -> Result<AnalysisJson> {
    let s = settings(study);
    let coarse = coarse_grid(&stack.grid, &stack.mask);
    let mut summary_rows = Vec::new();
    let mut table10 = Vec::new();
    let mut classes_json = std::collections::BTreeMap::new();
    let mut carbon_json = std::collections::BTreeMap::new();
    let drivers: Vec<String> = stack.drivers.iter().map(|d| d.name.clone()).collect();
    // every target's GWR and factor table, several at once on a cluster; taken in
    // target order, so the outputs are those of a sequential run
    let targets = sample.y_columns.len();
    let results = in_parallel(targets, source.concurrent_targets(), |y| {
        let (label, points, map, is_class) = target_files(study, sample, dir, y);
        let fitted = one_gwr(&label, sample, y, source, &s, &coarse, &points, &map)
            .and_then(|r| crate::outputs::finish_format(study, &map).map(|()| r));
        let factors = is_class.then(|| factor_table(study, sample, y, source, &s, &drivers));
        (label, is_class, fitted, factors)
    });
    for (label, is_class, fitted, factors) in results {
        let json = match fitted {
            Ok((row, fit)) => {
                summary_rows.push(row);
                GwrTargetJson::Fit(fit)
            }
            Err(e) => {
                tracing::warn!(target = %label, "GWR failed: {e}");
                GwrTargetJson::Failed {
                    error: e.to_string(),
                }
            }
        };
        if !is_class {
            carbon_json.insert(label.trim_start_matches("carbon_").to_string(), json);
            continue;
        }
        classes_json.insert(label.clone(), json);
        table10.push((label, factors.unwrap_or_default()));
    }
    let mut header: Vec<String> = [
        "target",
        "points",
        "bandwidth",
        "aicc",
        "r2",
        "adj_r2",
        "ols_r2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.push("mean_b_intercept".into());
    header.extend(drivers.iter().map(|n| format!("mean_b_{n}")));
    files::write_csv(&dir.join("gwr_summary.csv"), &header, &summary_rows)?;
    write_factor_table(&dir.join("gwr_factor_r2.csv"), &table10)?;
    Ok(AnalysisJson {
        points: sample.n(),
        classes: classes_json,
        carbon: carbon_json,
        summary_csv: dir.join("gwr_summary.csv"),
        coefficient_grid: CoefficientGridJson {
            factor: coarse.factor,
            width: coarse.grid.width,
            height: coarse.grid.height,
        },
        factor_r2: table10.iter().map(|(c, v)| factor_json(c, v)).collect(),
        factors: drivers,
        permutations: Some(study.config.gwr.permutations),
    })
}

/// Target `y` of the driver analysis: its label, its points CSV, its coefficient raster
/// and whether it is a class (else a scenario's carbon change).
fn target_files(
    study: &Study,
    sample: &DriverSample,
    dir: &Path,
    y: usize,
) -> (String, PathBuf, PathBuf, bool) {
    if y < study.k() {
        let c = &study.config.classes[y].name;
        (
            c.clone(),
            dir.join(format!("gwr_points_{c}.csv")),
            dir.join(format!("gwr_coef_{c}.tif")),
            true,
        )
    } else {
        let sc = sample.y_columns[y]
            .trim_start_matches("carbon_change_")
            .to_string();
        (
            format!("carbon_{sc}"),
            dir.join(format!("gwr_carbon_{sc}.csv")),
            dir.join(format!("gwr_coef_carbon_{sc}.tif")),
            false,
        )
    }
}

/// `job(i)` for `i` in `0..count` on up to `threads` threads at once (jobs start in
/// index order); the results in index order.
fn in_parallel<T: Send>(count: usize, threads: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let threads = threads.clamp(1, count.max(1));
    if threads == 1 {
        return (0..count).map(job).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<T>>> = (0..count).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                let r = job(i);
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}
