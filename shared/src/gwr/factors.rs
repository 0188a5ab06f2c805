//! The paper's Table 10: the R2 of a GWR of y on each single factor (intercept + that
//! factor), each with its own bandwidth; and its significance test: the intercept-only
//! GWR and seeded permutations of the factor across the points at that bandwidth
//! (docs/gwr.md, "Significance of the factor table").

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::summary::tss;
use super::{fit, lite_fits, GwrData, GwrError, GwrModel, GwrSettings, Weighting};

/// The single-factor GWR of one factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorR2 {
    /// The factor.
    pub factor: String,
    /// Bandwidth used (searched or given).
    pub bandwidth: f64,
    /// R2 of the GWR of y on intercept + factor.
    pub r2: f64,
    /// Adjusted R2.
    pub adj_r2: f64,
    /// AICc.
    pub aicc: f64,
    /// R2 of the global OLS of y on intercept + factor.
    pub ols_r2: f64,
}

/// For each factor in turn, fits y ~ intercept + factor by GWR with `settings` and
/// reports its R2 (one row per factor, in input order).
pub fn single_factor_r2(
    y_name: &str,
    y: &[f64],
    factors: &[(String, Vec<f64>)],
    coords: &[[f64; 2]],
    settings: &GwrSettings,
) -> crate::Result<Vec<FactorR2>> {
    factors
        .iter()
        .map(|(name, col)| {
            let data = GwrData::new(
                y_name,
                y.to_vec(),
                vec![(name.clone(), col.clone())],
                coords.to_vec(),
            )?;
            let model = GwrModel::new(data);
            let r = fit(&model, settings)?;
            Ok(FactorR2 {
                factor: name.clone(),
                bandwidth: r.diagnostics.bandwidth,
                r2: r.diagnostics.r2,
                adj_r2: r.diagnostics.adj_r2,
                aicc: r.diagnostics.aicc,
                ols_r2: r.ols.r2,
            })
        })
        .collect()
}

/// The significance of one factor's single-factor GWR R2 (the factor table's test):
/// the R2 of the intercept-only GWR and of GWRs on seeded permutations of the factor
/// across the sample points, all at the factor's own bandwidth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorNull {
    /// R2 of y on the intercept alone (the local mean) at the factor's bandwidth.
    pub r2_intercept_only: f64,
    /// R2 of each permutation whose fit succeeded, in permutation order.
    pub null_r2: Vec<f64>,
    /// Permutations whose fit failed (a singular local matrix), left out.
    pub failed: usize,
    /// The 95th percentile of `null_r2` ([`percentile_95`]); None without permutations.
    pub r2_null_p95: Option<f64>,
    /// (1 + #{null R2 >= observed}) / (M + 1) over the M permutations that were fitted
    /// ([`permutation_p_value`]); None without permutations.
    pub p_value: Option<f64>,
}

/// Which factor of which class is permuted: with the seed, the key of its
/// permutations (stream [`crate::rng::stream::GWR_PERMUTATION`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermutationKey {
    /// The study's seed.
    pub seed: u64,
    /// The class (Y column) index, below 2^16.
    pub class: u32,
    /// The factor index, below 2^16.
    pub factor: u32,
}

/// Permutation `index` of `n` points for `key`: point i takes the factor value of
/// point `perm[i]`. The points are ordered by a 64-bit Philox key of (seed, class,
/// factor, permutation, point) (ties, of probability ~n²/2^65, by point): a pure
/// function of its arguments.
pub fn permutation(key: PermutationKey, index: u32, n: usize) -> Vec<usize> {
    let rng = crate::rng::CounterRng::new(key.seed);
    let base = (u64::from(key.class & 0xffff) << 48) | (u64::from(key.factor & 0xffff) << 32);
    let mut keyed: Vec<(u64, usize)> = (0..n)
        .map(|i| {
            let b = rng.block(
                crate::rng::stream::GWR_PERMUTATION,
                index,
                base | (i as u64 & 0xffff_ffff),
                0,
            );
            ((u64::from(b[0]) << 32) | u64::from(b[1]), i)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// p-value of `observed` against `null`: (1 + #{null >= observed}) / (M + 1), M the
/// number of null values (the observed value counted among the permutations, so that
/// p is never 0; Phipson & Smyth 2010).
pub fn permutation_p_value(observed: f64, null: &[f64]) -> f64 {
    let above = null.iter().filter(|&&v| v >= observed).count();
    (1 + above) as f64 / (null.len() + 1) as f64
}

/// The 95th percentile of `values` by the nearest-rank rule: the ceil(0.95 M)-th
/// smallest (the 95th of 99). None when empty.
pub fn percentile_95(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (0.95 * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// R2 = 1 - RSS / TSS of the GWR of `model` at `bandwidth` (residuals of every point
/// summed in point order, as [`super::summarize`] does).
pub fn r2_at(model: &GwrModel, weighting: &Weighting, bandwidth: f64) -> Result<f64, GwrError> {
    let fits = lite_fits(model, weighting, bandwidth, 0..model.data().n())?;
    let rss: f64 = fits.iter().map(|f| f.residual * f.residual).sum();
    Ok(1.0 - rss / tss(model.data().y()))
}

/// The regression data of one single-factor test: y, the factor, the coordinates.
#[derive(Debug, Clone, Copy)]
pub struct FactorData<'a> {
    /// Name of y.
    pub y_name: &'a str,
    /// y per point.
    pub y: &'a [f64],
    /// Name of the factor.
    pub factor_name: &'a str,
    /// The factor per point.
    pub factor: &'a [f64],
    /// Point coordinates.
    pub coords: &'a [[f64; 2]],
    /// Coordinates are (lon, lat) degrees (great-circle distances).
    pub spherical: bool,
}

impl FactorData<'_> {
    fn model(&self, factor: Option<Vec<f64>>) -> Result<GwrModel, GwrError> {
        let factors = factor
            .map(|v| vec![(self.factor_name.to_string(), v)])
            .unwrap_or_default();
        let data = GwrData::new(self.y_name, self.y.to_vec(), factors, self.coords.to_vec())?;
        Ok(GwrModel::new(data.with_spherical(self.spherical)))
    }
}

/// The permutation test of one factor whose single-factor GWR reached `observed` R2 at
/// `bandwidth`: the intercept-only GWR and `permutations` GWRs on permuted copies of
/// the factor ([`permutation`]), all at that bandwidth (no search), in parallel on the
/// current rayon pool; every value is a pure function of the data, the bandwidth and
/// `key`, whatever the thread count. A permutation whose fit fails (a singular local
/// matrix) is left out and counted in [`FactorNull::failed`].
pub fn factor_null(
    data: &FactorData,
    weighting: &Weighting,
    bandwidth: f64,
    observed: f64,
    permutations: usize,
    key: PermutationKey,
) -> Result<FactorNull, GwrError> {
    let r2_intercept_only = intercept_only_r2(data, weighting, bandwidth)?;
    let fits = null_r2(data, weighting, bandwidth, key, 0..permutations as u32);
    null_of(r2_intercept_only, observed, fits)
}

/// The R2 of the intercept-only GWR of `data`'s y (the local mean) at `bandwidth`.
pub fn intercept_only_r2(
    data: &FactorData,
    weighting: &Weighting,
    bandwidth: f64,
) -> Result<f64, GwrError> {
    r2_at(&data.model(None)?, weighting, bandwidth)
}

/// The R2 of the GWRs on permutations `range` of the factor ([`permutation`]) at
/// `bandwidth`, in permutation order, in parallel on the current rayon pool: each a
/// pure function of the data, the bandwidth, `key` and its index, so a range computed
/// anywhere (another thread, a cluster worker) gives the same bits.
pub fn null_r2(
    data: &FactorData,
    weighting: &Weighting,
    bandwidth: f64,
    key: PermutationKey,
    range: std::ops::Range<u32>,
) -> Vec<Result<f64, GwrError>> {
    range
        .into_par_iter()
        .map(|m| {
            let perm = permutation(key, m, data.y.len());
            let x: Vec<f64> = perm.iter().map(|&j| data.factor[j]).collect();
            r2_at(&data.model(Some(x))?, weighting, bandwidth)
        })
        .collect()
}

/// The test of a factor whose single-factor GWR reached `observed` R2, from the
/// intercept-only R2 and the permutations' fits in permutation order (singular ones
/// left out and counted; any other error is returned).
pub fn null_of(
    r2_intercept_only: f64,
    observed: f64,
    fits: Vec<Result<f64, GwrError>>,
) -> Result<FactorNull, GwrError> {
    let permutations = fits.len();
    let mut null_r2 = Vec::with_capacity(permutations);
    let mut failed = 0;
    for f in fits {
        match f {
            Ok(r) => null_r2.push(r),
            Err(GwrError::SingularLocal { .. }) => failed += 1,
            Err(e) => return Err(e),
        }
    }
    let some = permutations > 0 && !null_r2.is_empty();
    Ok(FactorNull {
        r2_intercept_only,
        r2_null_p95: percentile_95(&null_r2),
        p_value: some.then(|| permutation_p_value(observed, &null_r2)),
        null_r2,
        failed,
    })
}
