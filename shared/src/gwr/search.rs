//! Golden-section bandwidth search on AICc, as mgwr's `Sel_BW.search` (search.py
//! `golden_section`, Fotheringham et al. 2002 p. 212): delta = 0.38197; adaptive
//! bandwidths are integers (probes rounded half to even, as numpy's `round`) in
//! [40 + 2p, n]; fixed ones in [min pair distance / 2, 2 x max pair distance], the
//! result rounded to 2 decimals. mgwr stops on an absolute AICc difference of 1e-5;
//! here the tolerance is relative (default 1e-6 of the AICc), 200 iterations at most.
//!
//! Large data sets: the first probes of [40 + 2p, n] fit every point on 38 % and 62 %
//! of all points (O(n^2) work each). A *cap* lets the search take its first iterations
//! as won by the smaller bandwidth without evaluating them, as long as both probes of
//! such an iteration lie at or above the cap: the search then runs exactly the
//! arithmetic of the full search from there, so it gives the full search's bandwidth
//! whenever those comparisons would have gone that way. That is certain once some
//! evaluated bandwidth below the first probe `u` kept scores strictly lower than `u`
//! (with AICc unimodal, the premise of a golden-section search, the optimum then lies
//! below `u` and AICc rises from `u` upwards). If no evaluated bandwidth proves it, the
//! search takes one iteration fewer as won and runs again (probes are kept), down to
//! the full search: the cap changes the cost, never the result. The default cap comes
//! from a pilot: the full search on a seeded subsample of [`PILOT_POINTS`] points (a
//! quarter of the points below 16,000: [`PILOT_SHARE`]), its bandwidth scaled to n (adaptive: times n / m, the same share of the points; fixed:
//! the same distance) and doubled.

use serde::{Deserialize, Serialize};

use super::fitter::{LocalFitter, LocalRayon};
use super::summary::aicc_of;
use super::{GwrError, GwrModel, Weighting};
use crate::rng::{stream, CounterRng};

/// Points of the pilot search that sets the default cap (at most).
pub const PILOT_POINTS: usize = 4000;

/// The pilot takes at most one point in `PILOT_SHARE`: its full search then costs about
/// 1 / 16 of the full search on all points (the work of a probe grows as n x k).
pub const PILOT_SHARE: usize = 4;

/// The pilot runs (and the default cap applies) from this many points on.
pub const PILOT_MIN_POINTS: usize = 2000;

/// Factor on the pilot's bandwidth (scaled to n) that gives the default cap.
pub const PILOT_MARGIN: f64 = 1.5;

/// Seed of the pilot subsample (fixed: the search is a function of the data only).
const PILOT_SEED: u64 = 0x6777_7270_696c_6f74;

/// How far the search evaluates large bandwidths before it needs to (see the module
/// documentation); never changes the bandwidth found.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchCap {
    /// Evaluate every iteration (mgwr's and GWR4's search).
    Full,
    /// From a pilot search on a subsample, when n >= [`PILOT_MIN_POINTS`]; else full.
    #[default]
    Auto,
    /// This bandwidth (neighbours if adaptive, else distance).
    Given(f64),
}

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
    /// The cap on the bandwidths evaluated first (a speed-up only).
    #[serde(default)]
    pub cap: SearchCap,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            tolerance: 1e-6,
            max_iterations: 200,
            lower: None,
            upper: None,
            cap: SearchCap::Auto,
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
    /// The cap used, if any.
    #[serde(default)]
    pub cap: Option<f64>,
    /// The pilot search that set the cap, if one ran.
    #[serde(default)]
    pub pilot: Option<Pilot>,
    /// Leading iterations taken as won by the smaller bandwidth without evaluation
    /// (0: the full search).
    #[serde(default)]
    pub skipped: usize,
    /// Times the cap was found not to be proven and one iteration fewer was skipped.
    #[serde(default)]
    pub widened: usize,
}

/// The pilot search behind a default cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pilot {
    /// Points in the subsample.
    pub points: usize,
    /// Its bandwidth.
    pub bandwidth: f64,
    /// Its AICc evaluations.
    pub evaluations: usize,
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
/// scored with `fitter` (which must fit the same model); `settings.cap` may skip the
/// costly first iterations (see the module documentation: the result is the same).
pub fn golden_section_with(
    model: &GwrModel,
    fitter: &dyn LocalFitter,
    weighting: &Weighting,
    settings: &SearchSettings,
) -> Result<SearchOutcome, GwrError> {
    let (da, dc) = default_interval(model, weighting);
    let a = settings.lower.unwrap_or(da);
    let c = settings.upper.unwrap_or(dc);
    let (cap, pilot) = match settings.cap {
        SearchCap::Full => (None, None),
        SearchCap::Given(v) => (Some(v), None),
        SearchCap::Auto => match pilot_cap(model, weighting, settings)? {
            Some((cap, pilot)) => (Some(cap), Some(pilot)),
            None => (None, None),
        },
    };
    let mut skip = match cap {
        Some(cap) => skips_below(a, c, weighting.adaptive, cap, settings.max_iterations),
        None => 0,
    };
    if skip > 0 {
        tracing::info!(
            cap,
            skipped = skip,
            "GWR bandwidth search: first iterations above the cap taken as won by the smaller bandwidth"
        );
    }
    let mut probes: Vec<Probe> = Vec::new();
    let mut widened = 0;
    loop {
        let run = golden_run(model, fitter, weighting, settings, a, c, skip, &mut probes)?;
        if skip == 0 || run.proven(&probes) {
            if !run.opt_score.is_finite() {
                return Err(GwrError::SearchFailed { lower: a, upper: c });
            }
            let bandwidth = (run.opt_val * 100.0).round_ties_even() / 100.0;
            return Ok(SearchOutcome {
                bandwidth,
                aicc: run.opt_score,
                interval: [a, c],
                iterations: run.iterations,
                probes,
                cap,
                pilot,
                skipped: skip,
                widened,
            });
        }
        tracing::info!(
            skipped = skip,
            "GWR bandwidth search: the cap is not proven by the probes, one iteration fewer skipped"
        );
        skip -= 1;
        widened += 1;
    }
}

/// One golden-section pass.
struct Run {
    opt_val: f64,
    opt_score: f64,
    iterations: usize,
    /// The larger probe of the first evaluated iteration (after skipped ones).
    first_upper: Option<f64>,
}

impl Run {
    /// Whether some evaluated bandwidth below `first_upper` scores strictly lower.
    fn proven(&self, probes: &[Probe]) -> bool {
        let Some(u) = self.first_upper else {
            return false;
        };
        let Some(au) = probes.iter().find(|p| p.bandwidth == u).map(|p| p.aicc) else {
            return false;
        };
        probes.iter().any(|p| p.bandwidth < u && p.aicc < au)
    }
}

/// Number of leading iterations of the search on [a, c] whose probes are both at or
/// above `cap` if every earlier one went to the smaller bandwidth.
fn skips_below(a: f64, c: f64, int_score: bool, cap: f64, max_iterations: usize) -> usize {
    let delta = GOLDEN_DELTA;
    let mut b = a + delta * (c - a).abs();
    let mut d = c - delta * (c - a).abs();
    let mut j = 0;
    while j + 1 < max_iterations {
        if int_score {
            b = b.round_ties_even();
            d = d.round_ties_even();
        }
        if b < cap || b >= d {
            break;
        }
        let c = d;
        d = b;
        b = a + delta * (c - a).abs();
        j += 1;
    }
    j
}

/// The golden-section search of mgwr on [a, c], its first `skip` iterations taken as
/// won by the smaller bandwidth without evaluation. Probes are cached in `probes`.
#[allow(clippy::too_many_arguments)]
fn golden_run(
    model: &GwrModel,
    fitter: &dyn LocalFitter,
    weighting: &Weighting,
    settings: &SearchSettings,
    mut a: f64,
    mut c: f64,
    skip: usize,
    probes: &mut Vec<Probe>,
) -> Result<Run, GwrError> {
    let int_score = weighting.adaptive;
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
    let mut first_upper = None;
    while iterations < settings.max_iterations
        && (iterations <= skip || diff.abs() > settings.tolerance * opt_score.abs())
    {
        iterations += 1;
        if int_score {
            b = b.round_ties_even();
            d = d.round_ties_even();
        }
        if iterations <= skip {
            // taken as won by b, exactly as the full search's state would move
            c = d;
            d = b;
            b = a + delta * (c - a).abs();
            continue;
        }
        if first_upper.is_none() {
            first_upper = Some(d);
        }
        let score_b = eval(b, probes)?;
        let score_d = eval(d, probes)?;
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
    Ok(Run {
        opt_val,
        opt_score,
        iterations,
        first_upper,
    })
}

/// The default cap: the full search on a seeded subsample of m = min([`PILOT_POINTS`],
/// n / [`PILOT_SHARE`]) points (each point kept with probability m / n, Philox stream [`stream::GWR_PILOT`]), its
/// bandwidth scaled to n and times [`PILOT_MARGIN`]. None below [`PILOT_MIN_POINTS`]
/// points or when the pilot finds nothing.
fn pilot_cap(
    model: &GwrModel,
    weighting: &Weighting,
    settings: &SearchSettings,
) -> Result<Option<(f64, Pilot)>, GwrError> {
    let n = model.data().n();
    if n < PILOT_MIN_POINTS {
        return Ok(None);
    }
    let rng = CounterRng::new(PILOT_SEED);
    let share = PILOT_POINTS.min(n / PILOT_SHARE) as f64 / n as f64;
    let rows: Vec<usize> = (0..n)
        .filter(|&i| CounterRng::unit(rng.block(stream::GWR_PILOT, 0, i as u64, 0)[0]) < share)
        .collect();
    let m = rows.len();
    let sub = GwrModel::new(model.data().subset(&rows));
    let pilot_settings = SearchSettings {
        cap: SearchCap::Full,
        lower: None,
        upper: None,
        ..*settings
    };
    let out = match golden_section(&sub, weighting, &pilot_settings) {
        Ok(out) => out,
        Err(e @ (GwrError::SearchFailed { .. } | GwrError::BadBandwidth { .. })) => {
            tracing::info!(error = %e, "GWR pilot search found nothing: no cap");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let scaled = if weighting.adaptive {
        out.bandwidth * n as f64 / m as f64
    } else {
        out.bandwidth
    };
    let cap = (scaled * PILOT_MARGIN).ceil();
    tracing::info!(
        points = m,
        pilot_bandwidth = out.bandwidth,
        cap,
        "GWR pilot search done"
    );
    Ok(Some((
        cap,
        Pilot {
            points: m,
            bandwidth: out.bandwidth,
            evaluations: out.probes.len(),
        },
    )))
}
