//! Driver analysis of a study (docs/design.md §8, paper Table 10): GWR of each class's
//! suitability and of each scenario's carbon change on the drivers at a seeded sample of
//! valid cells, maps of the local coefficients, and the R2 of a GWR of each class's
//! suitability on each single driver. The per-point work runs wherever a
//! [`FitterSource`] says (this machine, or the cluster's workers: the same bits).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::carbon::totals::storage_t;
use crate::config::{KernelName, Study};
use crate::error::{Error, Result};
use crate::files;
use crate::grid::Grid;
use crate::gwr::{
    self, BandwidthChoice, GwrData, GwrModel, GwrSettings, Kernel, LocalFitter, LocalRayon,
    SearchSettings, Weighting, INTERCEPT,
};
use crate::raster;
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

    fn y_col(&self, c: usize) -> Vec<f64> {
        let m = self.y_columns.len();
        (0..self.n()).map(|i| self.y[i * m + c]).collect()
    }

    fn x_col(&self, c: usize) -> Vec<f64> {
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

/// Where the per-point GWR work of an analysis runs: a [`LocalFitter`] for the model of
/// Y column `y` on X `columns` of the [`DriverSample`].
pub trait FitterSource: Sync {
    /// How many targets (Y columns) [`run_with`] analyses at once on this source: 1
    /// here (the local fits use every thread already); a cluster takes more, so that
    /// its workers fit one target while this machine searches or writes another.
    fn concurrent_targets(&self) -> usize {
        1
    }

    /// The fitter of `model` (built by [`DriverSample::model`] with `y`, `columns`).
    fn fitter<'a>(
        &'a self,
        model: &'a GwrModel,
        y: usize,
        columns: &[usize],
    ) -> Box<dyn LocalFitter + 'a>;

    /// The R2 of the GWRs of class `y` on permutations `0..permutations` of driver
    /// `factor` (the sample's X column 1 + `factor`), as `data` holds them, at
    /// `bandwidth`, in permutation order ([`gwr::null_r2`]); by default on this
    /// machine's threads.
    #[allow(clippy::too_many_arguments)]
    fn null_r2(
        &self,
        data: &gwr::FactorData,
        y: usize,
        factor: usize,
        weighting: &gwr::Weighting,
        bandwidth: f64,
        key: gwr::PermutationKey,
        permutations: u32,
    ) -> std::result::Result<Vec<std::result::Result<f64, gwr::GwrError>>, gwr::GwrError> {
        let _ = (y, factor);
        Ok(gwr::null_r2(
            data,
            weighting,
            bandwidth,
            key,
            0..permutations,
        ))
    }
}

/// The local threads of this process.
pub struct LocalSource;

impl FitterSource for LocalSource {
    fn fitter<'a>(
        &'a self,
        model: &'a GwrModel,
        _y: usize,
        _columns: &[usize],
    ) -> Box<dyn LocalFitter + 'a> {
        Box::new(LocalRayon::new(model))
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

/// The coarse grid of the local coefficient maps: the study grid aggregated by a whole
/// factor so that it is at most 300 cells wide (the grid itself when narrower), with a
/// cell valid where any of its study cells is valid.
#[derive(Debug, Clone)]
pub struct CoarseGrid {
    /// The coarse grid (CRS of the study grid, geotransform scaled by the factor).
    pub grid: Grid,
    /// Study cells per coarse cell along each axis.
    pub factor: usize,
    /// Valid coarse cells.
    pub valid: Vec<bool>,
}

/// Widest coefficient map, cells.
pub const COEFFICIENT_MAP_WIDTH: usize = 300;

/// The coarse grid of `grid` and `mask` (see [`CoarseGrid`]).
pub fn coarse_grid(grid: &Grid, mask: &[bool]) -> CoarseGrid {
    let f = grid.width.div_ceil(COEFFICIENT_MAP_WIDTH).max(1);
    let (w, h) = (grid.width.div_ceil(f), grid.height.div_ceil(f));
    let mut valid = vec![false; w * h];
    for (i, _) in mask.iter().enumerate().filter(|(_, &v)| v) {
        let (x, y) = (i % grid.width, i / grid.width);
        valid[(y / f) * w + x / f] = true;
    }
    let g = grid.geotransform;
    let ff = f as f64;
    CoarseGrid {
        grid: Grid {
            width: w,
            height: h,
            geotransform: [g[0], g[1] * ff, g[2] * ff, g[3], g[4] * ff, g[5] * ff],
            crs_wkt: grid.crs_wkt.clone(),
        },
        factor: f,
        valid,
    }
}

/// Nodata of the coefficient maps.
pub const COEFFICIENT_NODATA: f32 = f32::MIN;

/// Writes the local coefficients of `model` at the centres of the valid cells of
/// `coarse` with `bandwidth` (one Float32 band per parameter, named `b_<parameter>`).
fn write_coefficient_map(
    path: &Path,
    coarse: &CoarseGrid,
    model: &GwrModel,
    fitter: &dyn LocalFitter,
    weighting: &Weighting,
    bandwidth: f64,
) -> Result<()> {
    let cells: Vec<usize> = (0..coarse.valid.len())
        .filter(|&i| coarse.valid[i])
        .collect();
    let at: Vec<[f64; 2]> = cells
        .iter()
        .map(|&i| {
            let (x, y) = coarse
                .grid
                .cell_centre(i % coarse.grid.width, i / coarse.grid.width);
            [x, y]
        })
        .collect();
    let p = model.data().p();
    let beta = fitter.predict(weighting, bandwidth, &at)?;
    let mut bands = vec![vec![COEFFICIENT_NODATA; coarse.grid.cells()]; p];
    for (k, &cell) in cells.iter().enumerate() {
        for (b, band) in bands.iter_mut().enumerate() {
            let v = beta[k * p + b];
            if v.is_finite() {
                band[cell] = v as f32;
            }
        }
    }
    let refs: Vec<&[f32]> = bands.iter().map(|b| b.as_slice()).collect();
    raster::write_geotiff(
        path,
        &coarse.grid,
        &refs,
        &raster::WriteOptions {
            nodata: Some(COEFFICIENT_NODATA as f64),
            band_names: model
                .data()
                .names()
                .iter()
                .map(|n| format!("b_{n}"))
                .collect(),
            ..Default::default()
        },
    )
}

/// One GWR of the analysis, its outputs written; returns its summary row and JSON.
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
) -> Result<(Vec<String>, serde_json::Value)> {
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
    files::write_csv(points_csv, &header, &rows)?;
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
        serde_json::json!({
            "bandwidth": d.bandwidth, "aicc": d.aicc, "r2": d.r2, "adj_r2": d.adj_r2,
            "ols_r2": r.ols.r2, "points_csv": points_csv, "coefficient_map": map,
        }),
    ))
}

/// Runs the driver analysis on the suitability (cell-major, K per cell) on this
/// machine's threads, without carbon change (see [`run_with`]).
pub fn run(
    study: &Study,
    stack: &Stack,
    suitability: &[f32],
    dir: &Path,
) -> Result<serde_json::Value> {
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
/// JSON summary; a GWR that fails is reported, not fatal.
pub fn run_with(
    study: &Study,
    stack: &Stack,
    sample: &DriverSample,
    source: &dyn FitterSource,
    dir: &Path,
) -> Result<serde_json::Value> {
    let s = settings(study);
    let coarse = coarse_grid(&stack.grid, &stack.mask);
    let mut summary_rows = Vec::new();
    let mut table10 = Vec::new();
    let mut classes_json = serde_json::Map::new();
    let mut carbon_json = serde_json::Map::new();
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
            Ok((row, json)) => {
                summary_rows.push(row);
                json
            }
            Err(e) => {
                tracing::warn!(target = %label, "GWR failed: {e}");
                serde_json::json!({ "error": e.to_string() })
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
    Ok(serde_json::json!({
        "points": sample.n(),
        "classes": classes_json,
        "carbon": carbon_json,
        "summary_csv": dir.join("gwr_summary.csv"),
        "coefficient_grid": {
            "factor": coarse.factor,
            "width": coarse.grid.width,
            "height": coarse.grid.height,
        },
        "factors": drivers,
        "permutations": study.config.gwr.permutations,
        "factor_r2": table10.iter().map(|(c, v)| factor_json(c, v)).collect::<Vec<_>>(),
    }))
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
fn factor_table(
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
fn write_factor_table(path: &Path, table: &[(String, Vec<FactorRow>)]) -> Result<()> {
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

/// The JSON of one class's factor table row: per driver in order, R2, intercept-only
/// R2, null 95th percentile and p-value (null where not computed).
fn factor_json(class: &str, rows: &[FactorRow]) -> serde_json::Value {
    let col = |f: &dyn Fn(&FactorRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    serde_json::json!({
        "class": class,
        "bandwidth": col(&|r| r.fit.map(|f| f.0)),
        "r2": col(&|r| r.fit.map(|f| f.1)),
        "r2_intercept_only": col(&|r| r.null.as_ref().map(|n| n.r2_intercept_only)),
        "r2_null_p95": col(&|r| r.null.as_ref().and_then(|n| n.r2_null_p95)),
        "p_value": col(&|r| r.null.as_ref().and_then(|n| n.p_value)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_larger_than_the_valid_cells_takes_them_all_with_a_warning() {
        // 5 valid cells of 8
        let mask = [true, false, true, true, false, true, false, true];
        assert_eq!(sample_cells(&mask, 1_000_000_000, 3), vec![0, 2, 3, 5, 7]);
        assert!(crate::notices::all().contains(
            &"gwr.sample_points = 1000000000 is more than the 5 valid cells: the GWR uses all 5"
                .to_string()
        ));
        assert_eq!(sample_cells(&mask, 2, 3).len(), 2);
    }

    #[test]
    fn the_sample_is_seeded_sized_and_only_valid_cells() {
        let mask: Vec<bool> = (0..1000).map(|i| i % 3 != 0).collect();
        let a = sample_cells(&mask, 50, 7);
        assert_eq!(a.len(), 50);
        assert!(a.iter().all(|&i| mask[i]));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, sample_cells(&mask, 50, 7));
        assert_ne!(a, sample_cells(&mask, 50, 8));
        assert_eq!(sample_cells(&mask, 5000, 7).len(), 666);
    }

    /// Densities 10 and 50 t/ha, cells of 900 m2 = 0.09 ha: a cell going from class 0
    /// to class 1 gains (50 - 10) * 0.09 = 3.6 t, the reverse loses 3.6 t, an unchanged
    /// cell 0; a class without pools (index 2, density 0) going to class 0 gains 0.9 t.
    #[test]
    fn carbon_change_at_sample_cells_by_hand() {
        let density = [10.0, 50.0, 0.0];
        let base = [0u8, 1, 0, 2, 1];
        let scen = [1u8, 0, 0, 0, 1];
        let y = carbon_change_at(
            &density,
            &base,
            &scen,
            &[0, 1, 2, 3],
            &crate::area::CellAreas::Uniform(900.0),
            5,
        );
        let want = [3.6, -3.6, 0.0, 0.9];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{y:?}");
        }
        assert_eq!(
            carbon_change_at(
                &density,
                &base,
                &scen,
                &[4],
                &crate::area::CellAreas::Uniform(900.0),
                5
            ),
            vec![0.0]
        );
    }

    /// A 1000 x 10 grid is aggregated by 4 (250 wide, 3 rows); the geotransform scales
    /// by 4; a coarse cell is valid when one of its cells is.
    #[test]
    fn coarse_grid_of_the_coefficient_maps() {
        let grid = Grid {
            width: 1000,
            height: 10,
            geotransform: [100.0, 30.0, 0.0, 5000.0, 0.0, -30.0],
            crs_wkt: String::new(),
        };
        let mut mask = vec![false; 10_000];
        mask[9 * 1000 + 999] = true; // last cell -> coarse (249, 2)
        mask[5] = true; // (5, 0) -> coarse (1, 0)
        let c = coarse_grid(&grid, &mask);
        assert_eq!(c.factor, 4);
        assert_eq!((c.grid.width, c.grid.height), (250, 3));
        assert_eq!(
            c.grid.geotransform,
            [100.0, 120.0, 0.0, 5000.0, 0.0, -120.0]
        );
        let valid: Vec<usize> = (0..c.valid.len()).filter(|&i| c.valid[i]).collect();
        assert_eq!(valid, vec![1, 2 * 250 + 249]);
        // a narrow grid is kept as it is
        let small = Grid {
            width: 120,
            ..grid.clone()
        };
        assert_eq!(coarse_grid(&small, &vec![true; 1200]).factor, 1);
    }

    #[test]
    fn targets_run_at_once_come_back_in_target_order() {
        // 4 jobs on 4 threads; job i ends only after job i + 1 has: they end in
        // reverse order (job 3 first) and come back in index order
        let gate = (std::sync::Mutex::new(4usize), std::sync::Condvar::new());
        let out = in_parallel(4, 4, |i| {
            let (m, cv) = &gate;
            let mut g = cv.wait_while(m.lock().unwrap(), |g| *g != i + 1).unwrap();
            *g = i;
            cv.notify_all();
            i * 10
        });
        assert_eq!(out, vec![0, 10, 20, 30]);
        // more jobs than threads, and one thread: every job once, in order
        assert_eq!(in_parallel(7, 3, |i| i * i), vec![0, 1, 4, 9, 16, 25, 36]);
        assert_eq!(in_parallel(3, 1, |i| i + 1), vec![1, 2, 3]);
        assert!(in_parallel(0, 2, |i| i).is_empty());
    }
}
