//! Geographically weighted regression (Gaussian), following GWR4 and mgwr (docs/design.md §8).
//!
//! Local fits beta_i = (X' W_i X)^-1 X' W_i y with a bisquare (default), gaussian or
//! exponential kernel and an adaptive (k nearest neighbours, the point itself counted)
//! or fixed-distance bandwidth, chosen by golden-section search on AICc or given.
//! Neighbours come from an R*-tree; nothing of size n x n is ever built.
//!
//! The work splits over workers: [`local_fits`] over disjoint point ranges concatenate
//! to the whole; [`summarize`] turns them into RSS, tr(S), sigma, AICc, R2; then
//! [`local_stats`] (which needs sigma^2 and every residual) gives standard errors,
//! t-values and local R2 for each range. [`fit`] runs the three steps on this machine.

mod data;
mod error;
mod factors;
mod fitter;
mod grid;
mod kernel;
mod linalg;
mod local;
mod neighbours;
mod ols;
mod search;
mod summary;
mod sums;

pub use data::{standardized, GwrData, INTERCEPT};
pub use error::GwrError;
pub use factors::{
    factor_null, intercept_only_r2, null_of, null_r2, percentile_95, permutation,
    permutation_p_value, r2_at, single_factor_r2, FactorData, FactorNull, FactorR2, PermutationKey,
};
pub use fitter::{
    full_stride, pack_full, pack_lite, pack_null, unpack_full, unpack_lite, unpack_null,
    LocalFitter, LocalRayon, LITE_STRIDE, NULL_STRIDE,
};
pub use kernel::{Kernel, Weighting, ADAPTIVE_EPS};
pub use local::{
    lite_fits, local_fits, local_r2, local_stats, predict, stats_of, LiteFit, LocalFit, LocalStats,
};
use neighbours::KthMemo;
pub use neighbours::SpatialIndex;
pub use ols::{ols, Ols};
pub use search::{
    default_interval, golden_section, golden_section_with, score, score_with, Pilot, Probe,
    SearchCap, SearchOutcome, SearchSettings, GOLDEN_DELTA, PILOT_MARGIN, PILOT_MIN_POINTS,
    PILOT_POINTS, PILOT_SHARE,
};
pub use summary::{
    aicc_of, coefficient_summaries, summarize, CoefficientSummary, Diagnostics, SigmaDf,
};

use serde::{Deserialize, Serialize};

/// Checked data with its spatial index: what every step works on.
///
/// The local fits run on a copy of the data in spatial order (the cells of a bucket
/// grid row by row), so that the neighbours of a point lie close together in memory and
/// come out of the grid in ascending order; every result is still given in the data's
/// own point order, and each local sum runs over the neighbours in that spatial order
/// (a fixed order: a pure function of the coordinates).
#[derive(Debug)]
pub struct GwrModel {
    data: GwrData,
    work: GwrData,
    /// Position in `work` of each point of `data`.
    rank: Vec<usize>,
    /// The points of `data` in the spatial order (`order[rank[i]] == i`).
    order: Vec<usize>,
    index: SpatialIndex,
    /// Per point of `data`, the k-th distances its adaptive neighbour queries found
    /// (candidates of later queries; no result depends on them).
    memo: Vec<KthMemo>,
}

impl GwrModel {
    /// Orders the points spatially and builds the spatial index over them.
    pub fn new(data: GwrData) -> Self {
        let order = grid::Grid::order(data.coords());
        let work = data.subset(&order);
        let mut rank = vec![0; order.len()];
        for (pos, &i) in order.iter().enumerate() {
            rank[i] = pos;
        }
        let index = SpatialIndex::with_metric(work.coords(), work.spherical());
        let memo = (0..data.n()).map(|_| KthMemo::default()).collect();
        Self {
            data,
            work,
            rank,
            order,
            index,
            memo,
        }
    }

    /// The data.
    pub fn data(&self) -> &GwrData {
        &self.data
    }

    /// The data in the spatial order of the index.
    pub(crate) fn work(&self) -> &GwrData {
        &self.work
    }

    /// Per point of [`Self::data`], its position in the spatial order.
    pub(crate) fn rank(&self) -> &[usize] {
        &self.rank
    }

    /// The points of `points` (indices into [`Self::data`]) in the spatial order: the
    /// order in which the local fits visit them, so that consecutive fits share most of
    /// their neighbours' rows in the cache (the data's own order may be random).
    pub(crate) fn spatial_points(&self, points: &std::ops::Range<usize>) -> Vec<usize> {
        if points.start == 0 && points.end == self.order.len() {
            return self.order.clone();
        }
        self.order
            .iter()
            .copied()
            .filter(|i| points.contains(i))
            .collect()
    }

    /// What the adaptive neighbour queries around point `i` of [`Self::data`] found.
    pub(crate) fn memo(&self, i: usize) -> &KthMemo {
        &self.memo[i]
    }

    /// The spatial index (its point numbers are positions in the spatial order).
    pub fn index(&self) -> &SpatialIndex {
        &self.index
    }

    /// Checks a bandwidth: adaptive ones must count at least p neighbours (p =
    /// parameters) and at most n; fixed ones must be a positive finite distance.
    pub fn check_bandwidth(&self, weighting: &Weighting, bandwidth: f64) -> Result<(), GwrError> {
        let (n, p) = (self.data.n(), self.data.p());
        let bad = |reason: String| Err(GwrError::BadBandwidth { bandwidth, reason });
        if !bandwidth.is_finite() || bandwidth <= 0.0 {
            return bad("expected a positive finite number".into());
        }
        if weighting.adaptive {
            let k = bandwidth as usize;
            if k < p {
                return bad(format!(
                    "an adaptive bandwidth counts nearest neighbours (the point included) and must be at least the number of parameters, {p}"
                ));
            }
            if k > n {
                return bad(format!(
                    "an adaptive bandwidth cannot exceed the number of points, {n}"
                ));
            }
        }
        if !(0.0..1.0).contains(&weighting.min_weight) {
            return bad(format!(
                "min_weight {} must be in [0, 1)",
                weighting.min_weight
            ));
        }
        Ok(())
    }
}

/// How the bandwidth is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum BandwidthChoice {
    /// Golden-section search on AICc.
    Search(SearchSettings),
    /// A given bandwidth (neighbours if adaptive, else distance).
    Given(f64),
}

impl Default for BandwidthChoice {
    fn default() -> Self {
        BandwidthChoice::Search(SearchSettings::default())
    }
}

/// Settings of a GWR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct GwrSettings {
    /// Kernel, adaptive or fixed, truncation.
    pub weighting: Weighting,
    /// Search or given bandwidth.
    pub bandwidth: BandwidthChoice,
    /// Degrees of freedom of sigma^2.
    pub sigma_df: SigmaDf,
}

/// A fitted GWR.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GwrResult {
    /// The settings used.
    pub settings: GwrSettings,
    /// Parameter names (intercept first).
    pub names: Vec<String>,
    /// The search, if one ran.
    pub search: Option<SearchOutcome>,
    /// Global diagnostics.
    pub diagnostics: Diagnostics,
    /// Per-point fits, in point order.
    pub fits: Vec<LocalFit>,
    /// Per-point standard errors, t-values, local R2, in point order.
    pub stats: Vec<LocalStats>,
    /// Distribution of each local coefficient.
    pub coefficients: Vec<CoefficientSummary>,
    /// The global OLS model.
    pub ols: Ols,
}

/// Fits a GWR on this machine: bandwidth search (or the given one), local fits,
/// diagnostics, standard errors and local R2, and the global OLS beside it.
pub fn fit(model: &GwrModel, settings: &GwrSettings) -> crate::Result<GwrResult> {
    fit_with(model, &LocalRayon::new(model), settings)
}

/// [`fit`] with the per-point work done by `fitter` (local threads or cluster workers;
/// the same bits either way): the search scores each candidate from `fitter`'s
/// residuals and influences, then the final fit takes its full per-point results; every
/// sum over points is taken here, in point order.
pub fn fit_with(
    model: &GwrModel,
    fitter: &dyn LocalFitter,
    settings: &GwrSettings,
) -> crate::Result<GwrResult> {
    let weighting = &settings.weighting;
    let ols = ols(model.data())?;
    let (bandwidth, search) = match settings.bandwidth {
        BandwidthChoice::Given(b) => (b, None),
        BandwidthChoice::Search(s) => {
            let out = golden_section_with(model, fitter, weighting, &s)?;
            tracing::info!(
                bandwidth = out.bandwidth,
                aicc = out.aicc,
                iterations = out.iterations,
                "GWR bandwidth search done"
            );
            (out.bandwidth, Some(out))
        }
    };
    model.check_bandwidth(weighting, bandwidth)?;
    let n = model.data().n();
    let fits = fitter.full(weighting, bandwidth)?;
    if fits.len() != n || fits.iter().enumerate().any(|(i, f)| f.index != i) {
        return Err(GwrError::Partial(format!(
            "the fitter returned {} local fits, expected {n} in point order",
            fits.len()
        ))
        .into());
    }
    let diagnostics = summarize(
        model.data().y(),
        model.data().p(),
        bandwidth,
        &fits,
        settings.sigma_df,
    )?;
    let residuals: Vec<f64> = fits.iter().map(|f| f.residual).collect();
    let r2 = fitter.local_r2(weighting, bandwidth, &residuals)?;
    if r2.len() != n {
        return Err(GwrError::Partial(format!(
            "the fitter returned {} local R2 values, expected {n}",
            r2.len()
        ))
        .into());
    }
    let stats: Vec<LocalStats> = fits
        .iter()
        .zip(&r2)
        .map(|(f, &r)| stats_of(f, diagnostics.sigma2, r))
        .collect();
    let t: Vec<Vec<f64>> = stats.iter().map(|s| s.t.clone()).collect();
    let coefficients = coefficient_summaries(model.data().names(), &fits, &t);
    Ok(GwrResult {
        settings: *settings,
        names: model.data().names().to_vec(),
        search,
        diagnostics,
        fits,
        stats,
        coefficients,
        ols,
    })
}
