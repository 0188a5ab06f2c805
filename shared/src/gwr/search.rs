//! Golden-section bandwidth search on AICc, as mgwr's `Sel_BW.search` (search.py
//! `golden_section`, Fotheringham et al. 2002 p. 212): delta = 0.38197; adaptive
//! bandwidths are integers (probes rounded half to even, as numpy's `round`) in
//! [40 + 2p, n]; fixed ones in [min pair distance / 2, 2 x max pair distance], the
//! result rounded to 2 decimals. mgwr stops on an absolute AICc difference of 1e-5;
//! here the tolerance is relative (default 1e-6 of the AICc), 200 iterations at most.

use serde::{Deserialize, Serialize};

use super::fitter::{LocalFitter, LocalRayon};
use super::summary::aicc_of;
use super::{GwrError, GwrModel, Weighting};

/// mgwr's golden-section constant 1 - (sqrt 5 - 1) / 2, as it writes it.
pub const GOLDEN_DELTA: f64 = 0.38197;

/// Search settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// Relative AICc tolerance between the two inner probes.
    pub tolerance: f64,
    /// Maximum number of iterations.
    pub max_iterations: usize,
    /// Lower end of the interval (default per mgwr).
    pub lower: Option<f64>,
    /// Upper end of the interval (default per mgwr).
    pub upper: Option<f64>,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            tolerance: 1e-6,
            max_iterations: 200,
            lower: None,
            upper: None,
        }
    }
}

/// One evaluated bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Bandwidth.
    pub bandwidth: f64,
    /// Its AICc (infinite if a local fit is singular or tr S >= n - 2).
    pub aicc: f64,
}

/// The search's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// The chosen bandwidth.
    pub bandwidth: f64,
    /// Its AICc.
    pub aicc: f64,
    /// Search interval.
    pub interval: [f64; 2],
    /// Iterations run.
    pub iterations: usize,
    /// Every distinct bandwidth evaluated, in evaluation order.
    pub probes: Vec<Probe>,
}

/// The default search interval of mgwr for `model` and `weighting`.
pub fn default_interval(model: &GwrModel, weighting: &Weighting) -> (f64, f64) {
    let n = model.data().n() as f64;
    if weighting.adaptive {
        let a = (40 + 2 * model.data().p()) as f64;
        (a.min(n), n)
    } else {
        let (min, max) = model.index().distance_range();
        (min / 2.0, max * 2.0)
    }
}

/// AICc of `bandwidth` (infinite when a local fit is singular), on this machine.
pub fn score(model: &GwrModel, weighting: &Weighting, bandwidth: f64) -> Result<f64, GwrError> {
    score_with(&LocalRayon::new(model), weighting, bandwidth)
}

/// AICc of `bandwidth` from `fitter`'s per-point residuals and influences, summed in
/// point order (infinite when a local fit is singular).
pub fn score_with(
    fitter: &dyn LocalFitter,
    weighting: &Weighting,
    bandwidth: f64,
) -> Result<f64, GwrError> {
    match fitter.lite(weighting, bandwidth) {
        Ok(fits) => Ok(aicc_of(&fits)),
        Err(GwrError::SingularLocal { point, .. }) => {
            tracing::debug!(
                bandwidth,
                point,
                "singular local fit: AICc taken as infinite"
            );
            Ok(f64::INFINITY)
        }
        Err(e) => Err(e),
    }
}

/// Golden-section search of the AICc-minimising bandwidth, on this machine.
pub fn golden_section(
    model: &GwrModel,
    weighting: &Weighting,
    settings: &SearchSettings,
) -> Result<SearchOutcome, GwrError> {
    golden_section_with(model, &LocalRayon::new(model), weighting, settings)
}

/// Golden-section search of the AICc-minimising bandwidth of `model`, each candidate
/// scored with `fitter` (which must fit the same model).
pub fn golden_section_with(
    model: &GwrModel,
    fitter: &dyn LocalFitter,
    weighting: &Weighting,
    settings: &SearchSettings,
) -> Result<SearchOutcome, GwrError> {
    let (da, dc) = default_interval(model, weighting);
    let mut a = settings.lower.unwrap_or(da);
    let mut c = settings.upper.unwrap_or(dc);
    let interval = [a, c];
    let int_score = weighting.adaptive;
    let mut probes: Vec<Probe> = Vec::new();
    let eval = |bw: f64, probes: &mut Vec<Probe>| -> Result<f64, GwrError> {
        if let Some(pr) = probes.iter().find(|pr| pr.bandwidth == bw) {
            return Ok(pr.aicc);
        }
        model.check_bandwidth(weighting, bw)?;
        let s = score_with(fitter, weighting, bw)?;
        tracing::debug!(bandwidth = bw, aicc = s, "bandwidth probe");
        probes.push(Probe {
            bandwidth: bw,
            aicc: s,
        });
        Ok(s)
    };
    let delta = GOLDEN_DELTA;
    let mut b = a + delta * (c - a).abs();
    let mut d = c - delta * (c - a).abs();
    let mut diff = f64::INFINITY;
    let mut iterations = 0;
    let mut opt_val = b;
    let mut opt_score = f64::INFINITY;
    while iterations < settings.max_iterations
        && (iterations == 0 || diff.abs() > settings.tolerance * opt_score.abs())
    {
        iterations += 1;
        if int_score {
            b = b.round_ties_even();
            d = d.round_ties_even();
        }
        let score_b = eval(b, &mut probes)?;
        let score_d = eval(d, &mut probes)?;
        if score_b <= score_d {
            opt_val = b;
            opt_score = score_b;
            c = d;
            d = b;
            b = a + delta * (c - a).abs();
        } else {
            opt_val = d;
            opt_score = score_d;
            a = b;
            b = d;
            d = c - delta * (c - a).abs();
        }
        diff = if score_b == score_d {
            0.0
        } else {
            score_b - score_d
        };
    }
    if !opt_score.is_finite() {
        return Err(GwrError::SearchFailed {
            lower: interval[0],
            upper: interval[1],
        });
    }
    let bandwidth = (opt_val * 100.0).round_ties_even() / 100.0;
    Ok(SearchOutcome {
        bandwidth,
        aicc: opt_score,
        interval,
        iterations,
        probes,
    })
}
