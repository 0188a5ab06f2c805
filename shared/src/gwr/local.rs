//! The local regressions: beta_i = (X' W_i X)^-1 X' W_i y, one per point, and the
//! per-point figures that need the global residuals (standard errors, local R2).
//!
//! Each function takes a range of points and returns one entry per point in index
//! order; results of disjoint ranges concatenate to the result of the whole range, bit
//! for bit, whatever the number of threads (each entry is computed on its own, with its
//! neighbours summed in the model's spatial order, a fixed order).

use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::linalg::{cholesky, cholesky_inverse, cholesky_solve, symmetrize_upper};
use super::neighbours::{KthMemo, Scratch};
use super::sums::{local_sums, SumBuffers};
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

/// Per-thread buffers of the local fits: nothing is allocated per point.
struct Work {
    s: Scratch,
    /// X'WX, upper triangle (row-major p x p).
    a: Vec<f64>,
    /// X'W^2X, upper triangle (full fits only).
    b: Vec<f64>,
    /// X'Wy.
    g: Vec<f64>,
    /// Cholesky factor of `a`.
    l: Vec<f64>,
    /// (X'WX)^-1 (full fits only).
    inv: Vec<f64>,
    /// The blocks and lane sums of [`local_sums`].
    sums: SumBuffers,
    /// Local coefficients.
    beta: Vec<f64>,
    /// A^-1 x_i.
    u: Vec<f64>,
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
            sums: SumBuffers::default(),
            beta: vec![0.0; p],
            u: vec![0.0; p],
        }
    }
}

/// Accumulates A = X'WX (upper triangle), g = X'Wy and, if `full`, B = X'W^2X around
/// location `c`; then factors A. Returns the first column whose pivot vanished when A
/// is singular.
///
/// The neighbours' columns are gathered by blocks (in the spatial order), and every
/// entry is summed in one fixed order ([`super::sums`]).
fn accumulate_at(
    model: &GwrModel,
    c: [f64; 2],
    weighting: &Weighting,
    bandwidth: f64,
    full: bool,
    wk: &mut Work,
    memo: Option<&KthMemo>,
) -> Result<(), usize> {
    model
        .index()
        .weights_at(c, weighting, bandwidth, &mut wk.s, memo);
    sums(model, full, wk);
    cholesky(&wk.a, model.work().p(), SINGULAR_PIVOT, &mut wk.l)
}

/// [`sums_body`] compiled for the best instruction set of this CPU, detected at run
/// time: with AVX2 the four lanes of every [`dot`] sit in one 256-bit register instead
/// of two 128-bit ones. The same additions and multiplications in the same order on
/// every path (no fused multiply-add: Rust never contracts `a * b + c`), so the same
/// bits (test `both_instruction_sets_give_the_same_sums_bit_for_bit`).
fn sums(model: &GwrModel, full: bool, wk: &mut Work) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected on this CPU just above.
        unsafe { sums_avx2(model, full, wk) };
        return;
    }
    sums_body(model, full, wk);
}

/// [`sums_body`] with AVX2 enabled (the helpers are inlined into it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sums_avx2(model: &GwrModel, full: bool, wk: &mut Work) {
    sums_body(model, full, wk);
}

/// A = X'WX (upper triangle), g = X'Wy and, if `full`, B = X'W^2X over the neighbours
/// and weights in `wk.s` ([`local_sums`]).
#[inline(always)]
fn sums_body(model: &GwrModel, full: bool, wk: &mut Work) {
    let data = model.work();
    local_sums(
        data.design(),
        data.y(),
        data.p(),
        &wk.s.idx,
        &wk.s.w,
        full,
        &mut wk.sums,
        (&mut wk.a, &mut wk.b, &mut wk.g),
    );
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
    let memo = Some(model.memo(i));
    accumulate_at(model, c, weighting, bandwidth, full, wk, memo).map_err(|col| {
        GwrError::SingularLocal {
            point: i,
            x: c[0],
            y: c[1],
            bandwidth,
            column: data.names()[col].clone(),
            neighbours: wk.s.idx.len(),
        }
    })
}

/// Collects per-point results in order; on errors, the one of the lowest point (so the
/// error does not depend on thread scheduling or on how the points were split).
fn in_order<T>(results: Vec<Result<T, GwrError>>) -> Result<Vec<T>, GwrError> {
    results.into_iter().collect()
}

/// `f(state, i)` for every point i of `points`, in parallel on the current rayon pool,
/// one `state` per rayon job from `init`; the results in point order.
///
/// The points are visited in the model's spatial order ([`GwrModel::spatial_points`]):
/// consecutive fits then share most of their neighbours, whose rows and grid cells stay
/// in the cache, where the data's own order (random in a typical table) sent every fit
/// to memory. Each result is a pure function of its point, so the order of visits
/// changes no bit.
fn visit_spatially<T, S, I, F>(model: &GwrModel, points: Range<usize>, init: I, f: F) -> Vec<T>
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize) -> T + Sync + Send,
{
    let mut visited: Vec<(usize, T)> = model
        .spatial_points(&points)
        .into_par_iter()
        .map_init(init, |state, i| (i, f(state, i)))
        .collect();
    visited.sort_unstable_by_key(|&(i, _)| i);
    visited.into_iter().map(|(_, r)| r).collect()
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
    let results = visit_spatially(
        model,
        points,
        || Work::new(p),
        |wk, i| fit_one(model, i, weighting, bandwidth, wk),
    );
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
    let results = visit_spatially(
        model,
        points,
        || Work::new(p),
        |wk, i| {
            accumulate(model, i, weighting, bandwidth, false, wk)?;
            let xi = data.row(i);
            wk.beta.copy_from_slice(&wk.g);
            cholesky_solve(&wk.l, p, &mut wk.beta);
            wk.u.copy_from_slice(xi);
            cholesky_solve(&wk.l, p, &mut wk.u);
            let fitted: f64 = xi.iter().zip(&wk.beta).map(|(a, b)| a * b).sum();
            Ok(LiteFit {
                residual: data.y()[i] - fitted,
                influence: xi.iter().zip(&wk.u).map(|(a, b)| a * b).sum(),
            })
        },
    );
    in_order(results)
}

/// Local R2 of point `i` from the residuals of all points in the spatial order of the
/// model's work data (see [`LocalStats::local_r2`]).
fn local_r2_one(
    model: &GwrModel,
    i: usize,
    weighting: &Weighting,
    bandwidth: f64,
    work_residuals: &[f64],
    s: &mut Scratch,
) -> f64 {
    let y = model.work().y();
    let c = model.data().coords()[i];
    model
        .index()
        .weights_at(c, weighting, bandwidth, s, Some(model.memo(i)));
    let sw: f64 = s.w.iter().sum();
    let ybar = s.idx.iter().zip(&s.w).map(|(&j, w)| w * y[j]).sum::<f64>() / sw;
    let mut tss = 0.0;
    let mut rss = 0.0;
    for (&j, &w) in s.idx.iter().zip(&s.w) {
        tss += w * (y[j] - ybar) * (y[j] - ybar);
        rss += w * work_residuals[j] * work_residuals[j];
    }
    (tss - rss) / tss
}

/// `residuals` (point order) in the spatial order of the model's work data.
fn to_work_order(model: &GwrModel, residuals: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; residuals.len()];
    for (&pos, &r) in model.rank().iter().zip(residuals) {
        out[pos] = r;
    }
    out
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
    let residuals = to_work_order(model, residuals);
    Ok(visit_spatially(model, points, Scratch::default, |s, i| {
        local_r2_one(model, i, weighting, bandwidth, &residuals, s)
    }))
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
            |wk, &c| match accumulate_at(model, c, weighting, bandwidth, false, wk, None) {
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
    let residuals = to_work_order(model, residuals);
    fits.par_iter()
        .map_init(Scratch::default, |s, fit| {
            if fit.index >= data.n() || fit.params.len() != data.p() {
                return Err(GwrError::Partial(format!(
                    "local fit for point {} does not belong to this model",
                    fit.index
                )));
            }
            let r2 = local_r2_one(model, fit.index, weighting, bandwidth, &residuals, s);
            Ok(stats_of(fit, sigma2, r2))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::sums::reference::{dot as reference_dot, values as seeded};
    use super::*;

    /// The tests' values (generator 11).
    fn values(stream: u32, n: usize) -> Vec<f64> {
        seeded(11, stream, n)
    }

    /// X'WX, X'W^2X and X'Wy of whole local fits (blocks of neighbours, register tiles)
    /// equal the straightforward sums over the neighbours (rows read one by one,
    /// products summed term by term) to the bit: 300 Philox points, p = 6 (5 factors),
    /// adaptive bisquare on the grid path (k = 50) and the full-scan path (k = 120: one
    /// block; k = 290: three blocks and a tail), lite and full.
    #[test]
    fn local_sums_equal_the_straightforward_sums_bit_for_bit() {
        let n = 300;
        let coords: Vec<[f64; 2]> = values(40, 2 * n)
            .chunks(2)
            .map(|c| [c[0] * 1e3, c[1] * 1e3])
            .collect();
        let factors: Vec<(String, Vec<f64>)> = (0..5)
            .map(|f| (format!("X{f}"), values(50 + f, n)))
            .collect();
        let data = super::super::GwrData::new("y", values(60, n), factors, coords).unwrap();
        let model = GwrModel::new(data);
        let work = model.work();
        let p = work.p();
        let weighting = Weighting::default();
        for bw in [50.0, 120.0, 290.0] {
            for full in [false, true] {
                let mut wk = Work::new(p);
                for i in [0, 17, 150, 299] {
                    accumulate(&model, i, &weighting, bw, full, &mut wk).unwrap();
                    let (idx, w) = (wk.s.idx.clone(), wk.s.w.clone());
                    assert!(
                        idx.len() >= bw as usize,
                        "point {i}: {} neighbours",
                        idx.len()
                    );
                    let col =
                        |a: usize| -> Vec<f64> { idx.iter().map(|&j| work.row(j)[a]).collect() };
                    let wcol = |a: usize| -> Vec<f64> {
                        idx.iter()
                            .zip(&w)
                            .map(|(&j, &wt)| wt * work.row(j)[a])
                            .collect()
                    };
                    let ys: Vec<f64> = idx.iter().map(|&j| work.y()[j]).collect();
                    for a in 0..p {
                        let g = reference_dot(&wcol(a), &ys);
                        assert_eq!(wk.g[a].to_bits(), g.to_bits(), "g[{a}] point {i} bw {bw}");
                        for b in a..p {
                            let want = reference_dot(&wcol(a), &col(b));
                            assert_eq!(
                                wk.a[a * p + b].to_bits(),
                                want.to_bits(),
                                "A point {i} bw {bw}"
                            );
                            if full {
                                let want = reference_dot(&wcol(a), &wcol(b));
                                assert_eq!(
                                    wk.b[a * p + b].to_bits(),
                                    want.to_bits(),
                                    "B point {i}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// The AVX2 and the portable builds of the sums give the same bits: X'WX, X'W^2X and
    /// X'Wy of lite and full fits on 300 Philox points (p = 10, as mgwr's benchmark),
    /// adaptive bisquare at 7, 50 and 120 neighbours. Skipped where AVX2 is absent.
    #[test]
    fn both_instruction_sets_give_the_same_sums_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("avx2") {
                return;
            }
            let n = 300;
            let coords: Vec<[f64; 2]> = values(70, 2 * n)
                .chunks(2)
                .map(|c| [c[0] * 1e3, c[1] * 1e3])
                .collect();
            let factors: Vec<(String, Vec<f64>)> = (0..9)
                .map(|f| (format!("X{f}"), values(80 + f, n)))
                .collect();
            let data = super::super::GwrData::new("y", values(90, n), factors, coords).unwrap();
            let model = GwrModel::new(data);
            let p = model.work().p();
            let weighting = Weighting::default();
            for bw in [7.0, 50.0, 120.0] {
                for full in [false, true] {
                    for i in [0, 17, 150, 299] {
                        let c = model.data().coords()[i];
                        let mut portable = Work::new(p);
                        model
                            .index()
                            .weights_at(c, &weighting, bw, &mut portable.s, None);
                        let mut simd = Work::new(p);
                        model
                            .index()
                            .weights_at(c, &weighting, bw, &mut simd.s, None);
                        sums_body(&model, full, &mut portable);
                        // SAFETY: AVX2 was detected above.
                        unsafe { sums_avx2(&model, full, &mut simd) };
                        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        for a in 0..p {
                            let (r, e) = (a * p + a, (a + 1) * p);
                            assert_eq!(bits(&simd.a[r..e]), bits(&portable.a[r..e]), "A row {a}");
                            if full {
                                assert_eq!(
                                    bits(&simd.b[r..e]),
                                    bits(&portable.b[r..e]),
                                    "B row {a}"
                                );
                            }
                        }
                        assert_eq!(bits(&simd.g), bits(&portable.g), "g point {i} bw {bw}");
                    }
                }
            }
        }
    }
}
