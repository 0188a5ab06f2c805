//! Where the per-point GWR work of a driver analysis runs: the [`FitterSource`] trait and
//! its implementation on this process's threads, [`LocalSource`].

use crate::gwr::{self, GwrModel, LocalFitter, LocalRayon};

/// Where the per-point GWR work of an analysis runs: a [`LocalFitter`] for the model of
/// Y column `y` on X `columns` of the [`DriverSample`](super::DriverSample).
pub trait FitterSource: Sync {
    /// How many targets (Y columns) [`run_with`](super::run_with) analyses at once on
    /// this source: 1 here (the local fits use every thread already); a cluster takes
    /// more, so that its workers fit one target while this machine searches or writes
    /// another.
    fn concurrent_targets(&self) -> usize {
        1
    }

    /// The fitter of `model` (built by
    /// [`DriverSample::model`](super::DriverSample::model) with `y`, `columns`).
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
