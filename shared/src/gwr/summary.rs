//! Model diagnostics from the per-point results: RSS, tr(S), tr(S'S), sigma, AICc, AIC,
//! BIC, R2, adjusted R2 (GWR4's and mgwr's formulas). Sums run in point-index order.

use serde::{Deserialize, Serialize};

use super::{GwrError, LiteFit, LocalFit};

/// Which residual degrees of freedom divide the RSS in sigma^2 (for standard errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SigmaDf {
    /// n - 2 tr(S) + tr(S'S): GWR4's "unbiased sigma" and mgwr with `sigma2_v1=False`
    /// (the default, so that standard errors equal GWR4's). The adjusted R2 then uses
    /// ENP = 2 tr(S) - tr(S'S), as both programs do.
    #[default]
    Residual,
    /// n - tr(S): mgwr's default (`sigma2_v1=True`), ENP = tr(S).
    TraceS,
}

/// Global diagnostics of a GWR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Number of points.
    pub n: usize,
    /// Number of parameters per local model.
    pub p: usize,
    /// Bandwidth (neighbours or distance).
    pub bandwidth: f64,
    /// Residual sum of squares.
    pub rss: f64,
    /// Total sum of squares of y about its mean.
    pub tss: f64,
    /// tr(S), the effective number of parameters of the model.
    pub tr_s: f64,
    /// tr(S'S).
    pub tr_sts: f64,
    /// The residual degrees of freedom used for sigma.
    pub df: f64,
    /// sigma^2 = RSS / df.
    pub sigma2: f64,
    /// sqrt(sigma2).
    pub sigma: f64,
    /// Maximum-likelihood sigma sqrt(RSS / n).
    pub sigma_ml: f64,
    /// -2 log-likelihood: n ln(2 pi RSS / n) + n.
    pub minus_2_log_likelihood: f64,
    /// AIC = -2LL + 2 (tr S + 1).
    pub aic: f64,
    /// AICc = -2LL + 2 n (tr S + 1) / (n - tr S - 2).
    pub aicc: f64,
    /// BIC = -2LL + (tr S + 1) ln n.
    pub bic: f64,
    /// 1 - RSS / TSS.
    pub r2: f64,
    /// 1 - (1 - R2) (n - 1) / (n - ENP - 1), ENP per [`SigmaDf`].
    pub adj_r2: f64,
}

/// -2 log-likelihood of a Gaussian model with `rss` over `n` points.
pub(crate) fn minus_2ll(n: f64, rss: f64) -> f64 {
    n * (2.0 * std::f64::consts::PI * rss / n).ln() + n
}

/// AICc for `k` effective parameters (infinite if n - k - 2 <= 0).
pub(crate) fn aicc(n: f64, rss: f64, k: f64) -> f64 {
    let den = n - k - 2.0;
    if den <= 0.0 {
        return f64::INFINITY;
    }
    minus_2ll(n, rss) + 2.0 * n * (k + 1.0) / den
}

/// AICc of a bandwidth from the search's per-point residuals and influences.
pub fn aicc_of(fits: &[LiteFit]) -> f64 {
    let n = fits.len() as f64;
    let mut rss = 0.0;
    let mut tr_s = 0.0;
    for f in fits {
        rss += f.residual * f.residual;
        tr_s += f.influence;
    }
    aicc(n, rss, tr_s)
}

/// Total sum of squares of `y` about its mean.
pub(crate) fn tss(y: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    y.iter().map(|v| (v - mean) * (v - mean)).sum()
}

/// Diagnostics from the local fits of ALL points (in index order, e.g. the
/// concatenation of [`super::local_fits`] over disjoint ranges).
pub fn summarize(
    y: &[f64],
    p: usize,
    bandwidth: f64,
    fits: &[LocalFit],
    sigma_df: SigmaDf,
) -> Result<Diagnostics, GwrError> {
    if fits.len() != y.len() || fits.iter().enumerate().any(|(i, f)| f.index != i) {
        return Err(GwrError::Partial(format!(
            "summarize needs the local fits of all {} points in index order, got {}",
            y.len(),
            fits.len()
        )));
    }
    let n = y.len() as f64;
    let mut rss = 0.0;
    let mut tr_s = 0.0;
    let mut tr_sts = 0.0;
    for f in fits {
        rss += f.residual * f.residual;
        tr_s += f.influence;
        tr_sts += f.s_row_ss;
    }
    let tss = tss(y);
    let (df, enp) = match sigma_df {
        SigmaDf::Residual => (n - 2.0 * tr_s + tr_sts, 2.0 * tr_s - tr_sts),
        SigmaDf::TraceS => (n - tr_s, tr_s),
    };
    let sigma2 = rss / df;
    let m2ll = minus_2ll(n, rss);
    let r2 = 1.0 - rss / tss;
    Ok(Diagnostics {
        n: y.len(),
        p,
        bandwidth,
        rss,
        tss,
        tr_s,
        tr_sts,
        df,
        sigma2,
        sigma: sigma2.sqrt(),
        sigma_ml: (rss / n).sqrt(),
        minus_2_log_likelihood: m2ll,
        aic: m2ll + 2.0 * (tr_s + 1.0),
        aicc: aicc(n, rss, tr_s),
        bic: m2ll + (tr_s + 1.0) * n.ln(),
        r2,
        adj_r2: 1.0 - (1.0 - r2) * (n - 1.0) / (n - enp - 1.0),
    })
}

/// Distribution of one local coefficient over the points (GWR4's summary table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoefficientSummary {
    /// Parameter name.
    pub name: String,
    /// Mean over the points.
    pub mean: f64,
    /// Standard deviation over the points (divisor n).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Median (mean of the two middle values for even n).
    pub median: f64,
    /// Largest value.
    pub max: f64,
    /// Share of points with |t| >= 1.96.
    pub share_significant: f64,
}

/// One [`CoefficientSummary`] per parameter.
pub fn coefficient_summaries(
    names: &[String],
    fits: &[LocalFit],
    t: &[Vec<f64>],
) -> Vec<CoefficientSummary> {
    let n = fits.len() as f64;
    names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let mut v: Vec<f64> = fits.iter().map(|f| f.params[c]).collect();
            let mean = v.iter().sum::<f64>() / n;
            let std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
            v.sort_by(|a, b| a.total_cmp(b));
            let m = v.len();
            let median = if m % 2 == 1 {
                v[m / 2]
            } else {
                0.5 * (v[m / 2 - 1] + v[m / 2])
            };
            let significant = t.iter().filter(|ti| ti[c].abs() >= 1.96).count();
            CoefficientSummary {
                name: name.clone(),
                mean,
                std,
                min: v[0],
                median,
                max: v[m - 1],
                share_significant: significant as f64 / n,
            }
        })
        .collect()
}
