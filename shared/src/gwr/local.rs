//! The local regressions: beta_i = (X' W_i X)^-1 X' W_i y, one per point, and the
//! per-point figures that need the global residuals (standard errors, local R2).
//!
//! Each function takes a range of points and returns one entry per point in index
//! order; results of disjoint ranges concatenate to the result of the whole range, bit
//! for bit, whatever the number of threads (each entry is computed on its own, with its
//! neighbours summed in ascending index order).

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::linalg::{cholesky, cholesky_inverse, cholesky_solve, symmetrize_upper};
use super::neighbours::Scratch;
use super::{GwrError, GwrModel, Weighting};

/// Relative Cholesky pivot below which a local matrix counts as singular.
const SINGULAR_PIVOT: f64 = 1e-12;

/// The fit at one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalFit {
    /// The point's index.
    pub index: usize,
    /// Local coefficients: intercept, then the factors in input order.
    pub params: Vec<f64>,
    /// Fitted value x_i' beta_i.
    pub fitted: f64,
    /// Residual y_i - fitted.
    pub residual: f64,
    /// Influence S_ii = x_i' (X' W_i X)^-1 x_i w_ii.
    pub influence: f64,
    /// Squared norm of row i of the hat matrix S (its share of tr(S'S)).
    pub s_row_ss: f64,
    /// diag(C C') with C = (X' W_i X)^-1 X' W_i: the coefficient variances over sigma^2.
    pub var_factor: Vec<f64>,
    /// Number of points with a non-zero weight.
    pub neighbours: usize,
}

/// What the bandwidth search needs of a point: residual and influence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LiteFit {
    /// Residual y_i - x_i' beta_i.
    pub residual: f64,
    /// Influence S_ii.
    pub influence: f64,
}

/// Per-point figures of the second step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalStats {
    /// The point's index.
    pub index: usize,
    /// Standard errors sqrt(sigma^2 diag(C C')), one per parameter.
    pub se: Vec<f64>,
    /// t-values beta / se.
    pub t: Vec<f64>,
    /// Local R2 = (TSS_i - RSS_i) / TSS_i with geographically weighted sums around the
    /// point (Fotheringham et al. 2002, eq. 9.8; mgwr's `localR2`): TSS_i about the
    /// weighted mean of y, RSS_i of the GWR residuals.
    pub local_r2: f64,
}

fn check_range(model: &GwrModel, points: &Range<usize>) -> Result<(), GwrError> {
    if points.start > points.end || points.end > model.data().n() {
        return Err(GwrError::Partial(format!(
            "point range {}..{} is outside 0..{}",
            points.start,
            points.end,
            model.data().n()
        )));
    }
    Ok(())
}

struct Work {
    s: Scratch,
    a: Vec<f64>,
    b: Vec<f64>,
    g: Vec<f64>,
    l: Vec<f64>,
    inv: Vec<f64>,
}

impl Work {
    fn new(p: usize) -> Self {
        Self {
            s: Scratch::default(),
            a: vec![0.0; p * p],
            b: vec![0.0; p * p],
            g: vec![0.0; p],
            l: vec![0.0; p * p],
            inv: vec![0.0; p * p],
        }
    }
}

/// Accumulates A = X'WX (upper triangle), g = X'Wy and, if `full`, B = X'W^2X around
/// location `c`; then factors A. Returns the first column whose pivot vanished when A
/// is singular.
fn accumulate_at(
    model: &GwrModel,
    c: [f64; 2],
    weighting: &Weighting,
    bandwidth: f64,
    full: bool,
    wk: &mut Work,
) -> Result<(), usize> {
    let data = model.data();
    let p = data.p();
    model.index().weights_at(c, weighting, bandwidth, &mut wk.s);
    wk.a.iter_mut().for_each(|v| *v = 0.0);
    wk.g.iter_mut().for_each(|v| *v = 0.0);
    if full {
        wk.b.iter_mut().for_each(|v| *v = 0.0);
    }
    let y = data.y();
    for (&j, &w) in wk.s.idx.iter().zip(&wk.s.w) {
        let xj = data.row(j);
        let yj = y[j];
        for (a, &xa) in xj.iter().enumerate() {
            let wa = w * xa;
            let row = &mut wk.a[a * p + a..(a + 1) * p];
            for (r, &xb) in row.iter_mut().zip(&xj[a..]) {
                *r += wa * xb;
            }
            wk.g[a] += wa * yj;
        }
        if full {
            let w2 = w * w;
            for (a, &xa) in xj.iter().enumerate() {
                let wa = w2 * xa;
                let row = &mut wk.b[a * p + a..(a + 1) * p];
                for (r, &xb) in row.iter_mut().zip(&xj[a..]) {
                    *r += wa * xb;
                }
            }
        }
    }
    cholesky(&wk.a, p, SINGULAR_PIVOT, &mut wk.l)
}

/// [`accumulate_at`] at data point `i`; errors name the point when A is singular.
fn accumulate(
    model: &GwrModel,
    i: usize,
    weighting: &Weighting,
    bandwidth: f64,
    full: bool,
    wk: &mut Work,
) -> Result<(), GwrError> {
    let data = model.data();
    let c = data.coords()[i];
    accumulate_at(model, c, weighting, bandwidth, full, wk).map_err(|col| GwrError::SingularLocal {
        point: i,
        x: c[0],
        y: c[1],
        bandwidth,
        column: data.names()[col].clone(),
        neighbours: wk.s.idx.len(),
    })
}

/// Collects per-point results in order; on errors, the one of the lowest point (so the
/// error does not depend on thread scheduling or on how the points were split).
fn in_order<T>(results: Vec<Result<T, GwrError>>) -> Result<Vec<T>, GwrError> {
    results.into_iter().collect()
}

fn fit_one(
    model: &GwrModel,
    i: usize,
    weighting: &Weighting,
    bandwidth: f64,
    wk: &mut Work,
) -> Result<LocalFit, GwrError> {
    accumulate(model, i, weighting, bandwidth, true, wk)?;
    let data = model.data();
    let p = data.p();
    let xi = data.row(i);
    let mut beta = wk.g.clone();
    cholesky_solve(&wk.l, p, &mut beta);
    let fitted: f64 = xi.iter().zip(&beta).map(|(a, b)| a * b).sum();
    cholesky_inverse(&wk.l, p, &mut wk.inv);
    symmetrize_upper(&mut wk.b, p);
    // u = A^-1 x_i; S_ii = x_i'u (w_ii = kernel(0) = 1); row norm = u' B u.
    let u: Vec<f64> = (0..p)
        .map(|r| (0..p).map(|c| wk.inv[r * p + c] * xi[c]).sum())
        .collect();
    let influence: f64 = xi.iter().zip(&u).map(|(a, b)| a * b).sum();
    let s_row_ss = quad(&wk.b, p, &u, &u);
    let var_factor = (0..p)
        .map(|r| {
            let m = &wk.inv[r * p..(r + 1) * p];
            quad(&wk.b, p, m, m)
        })
        .collect();
    Ok(LocalFit {
        index: i,
        params: beta,
        fitted,
        residual: data.y()[i] - fitted,
        influence,
        s_row_ss,
        var_factor,
        neighbours: wk.s.idx.len(),
    })
}

/// u' M v for a full row-major p x p matrix M.
fn quad(m: &[f64], p: usize, u: &[f64], v: &[f64]) -> f64 {
    let mut s = 0.0;
    for r in 0..p {
        let mut t = 0.0;
        for c in 0..p {
            t += m[r * p + c] * v[c];
        }
        s += u[r] * t;
    }
    s
}

/// The local fits of `points` at `bandwidth` (neighbours if `weighting.adaptive`, else
/// distance), in parallel on the current rayon pool, one entry per point in order.
pub fn local_fits(
    model: &GwrModel,
    weighting: &Weighting,
    bandwidth: f64,
    points: Range<usize>,
) -> Result<Vec<LocalFit>, GwrError> {
    check_range(model, &points)?;
    model.check_bandwidth(weighting, bandwidth)?;
    let p = model.data().p();
    let results = points
        .into_par_iter()
        .map_init(
            || Work::new(p),
            |wk, i| fit_one(model, i, weighting, bandwidth, wk),
        )
        .collect::<Vec<_>>();
    in_order(results)
}

/// Residuals and influences of `points` only (what AICc needs), cheaper than
/// [`local_fits`]: used by the bandwidth search.
pub fn lite_fits(
    model: &GwrModel,
    weighting: &Weighting,
    bandwidth: f64,
    points: Range<usize>,
) -> Result<Vec<LiteFit>, GwrError> {
    check_range(model, &points)?;
    model.check_bandwidth(weighting, bandwidth)?;
    let data = model.data();
    let p = data.p();
    let results = points
        .into_par_iter()
        .map_init(
            || Work::new(p),
            |wk, i| {
                accumulate(model, i, weighting, bandwidth, false, wk)?;
                let xi = data.row(i);
                let mut beta = wk.g.clone();
                cholesky_solve(&wk.l, p, &mut beta);
                let mut u = xi.to_vec();
                cholesky_solve(&wk.l, p, &mut u);
                let fitted: f64 = xi.iter().zip(&beta).map(|(a, b)| a * b).sum();
                Ok(LiteFit {
                    residual: data.y()[i] - fitted,
                    influence: xi.iter().zip(&u).map(|(a, b)| a * b).sum(),
                })
            },
        )
        .collect::<Vec<_>>();
    in_order(results)
}

/// Local R2 of point `i` from the residuals of all points (see [`LocalStats::local_r2`]).
fn local_r2_one(
    model: &GwrModel,
    i: usize,
    weighting: &Weighting,
    bandwidth: f64,
    residuals: &[f64],
    s: &mut Scratch,
) -> f64 {
    let y = model.data().y();
    model.index().weights(i, weighting, bandwidth, s);
    let sw: f64 = s.w.iter().sum();
    let ybar = s.idx.iter().zip(&s.w).map(|(&j, w)| w * y[j]).sum::<f64>() / sw;
    let mut tss = 0.0;
    let mut rss = 0.0;
    for (&j, &w) in s.idx.iter().zip(&s.w) {
        tss += w * (y[j] - ybar) * (y[j] - ybar);
        rss += w * residuals[j] * residuals[j];
    }
    (tss - rss) / tss
}

fn check_residuals(model: &GwrModel, residuals: &[f64]) -> Result<(), GwrError> {
    if residuals.len() != model.data().n() {
        return Err(GwrError::Partial(format!(
            "{} residuals given, expected one per point ({})",
            residuals.len(),
            model.data().n()
        )));
    }
    Ok(())
}

/// Local R2 of `points` (one per point, in order) given the residuals of ALL points
/// (index order): the part of [`local_stats`] that needs the neighbours.
pub fn local_r2(
    model: &GwrModel,
    weighting: &Weighting,
    bandwidth: f64,
    points: Range<usize>,
    residuals: &[f64],
) -> Result<Vec<f64>, GwrError> {
    check_range(model, &points)?;
    check_residuals(model, residuals)?;
    model.check_bandwidth(weighting, bandwidth)?;
    Ok(points
        .into_par_iter()
        .map_init(Scratch::default, |s, i| {
            local_r2_one(model, i, weighting, bandwidth, residuals, s)
        })
        .collect())
}

/// Standard errors and t-values of `fit` with `sigma2`, and its `local_r2`.
pub fn stats_of(fit: &LocalFit, sigma2: f64, local_r2: f64) -> LocalStats {
    let se: Vec<f64> = fit.var_factor.iter().map(|v| (v * sigma2).sqrt()).collect();
    let t = fit.params.iter().zip(&se).map(|(b, s)| b / s).collect();
    LocalStats {
        index: fit.index,
        se,
        t,
        local_r2,
    }
}

/// Local coefficients at arbitrary locations `at` (mgwr's `predict`): the local
/// regression of the data points around each location with their weights from that
/// location, p values per location (intercept first) in order; NaN where the local
/// matrix is singular. At a data point's own location this is that point's fit.
pub fn predict(
    model: &GwrModel,
    weighting: &Weighting,
    bandwidth: f64,
    at: &[[f64; 2]],
) -> Result<Vec<f64>, GwrError> {
    model.check_bandwidth(weighting, bandwidth)?;
    for (row, c) in at.iter().enumerate() {
        if !(c[0].is_finite() && c[1].is_finite()) {
            return Err(GwrError::NotFinite {
                column: "prediction location".into(),
                row,
                value: if c[0].is_finite() { c[1] } else { c[0] },
            });
        }
    }
    let p = model.data().p();
    let rows: Vec<Vec<f64>> = at
        .par_iter()
        .map_init(
            || Work::new(p),
            |wk, &c| match accumulate_at(model, c, weighting, bandwidth, false, wk) {
                Ok(()) => {
                    let mut beta = wk.g.clone();
                    cholesky_solve(&wk.l, p, &mut beta);
                    beta
                }
                Err(_) => vec![f64::NAN; p],
            },
        )
        .collect();
    Ok(rows.concat())
}

/// Second step: standard errors, t-values and local R2 of the points of `fits` (a
/// contiguous run of [`local_fits`] output), given the residuals of ALL points (index
/// order) and sigma^2 from [`super::summarize`].
pub fn local_stats(
    model: &GwrModel,
    weighting: &Weighting,
    bandwidth: f64,
    fits: &[LocalFit],
    residuals: &[f64],
    sigma2: f64,
) -> Result<Vec<LocalStats>, GwrError> {
    let data = model.data();
    check_residuals(model, residuals)?;
    model.check_bandwidth(weighting, bandwidth)?;
    fits.par_iter()
        .map_init(Scratch::default, |s, fit| {
            if fit.index >= data.n() || fit.params.len() != data.p() {
                return Err(GwrError::Partial(format!(
                    "local fit for point {} does not belong to this model",
                    fit.index
                )));
            }
            let r2 = local_r2_one(model, fit.index, weighting, bandwidth, residuals, s);
            Ok(stats_of(fit, sigma2, r2))
        })
        .collect()
}
