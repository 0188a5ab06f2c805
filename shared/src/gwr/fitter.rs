//! The per-point work of a GWR behind one trait, so that it runs on this machine's
//! threads ([`LocalRayon`]) or split over cluster workers (the coordinator's remote
//! fitter) with the same bits: every per-point value is a pure function of (data,
//! weighting, bandwidth, point), and every sum over points is taken by the caller in
//! point order.
//!
//! The packed forms ([`pack_lite`], [`pack_full`], ...) are what travels over the wire:
//! plain f64 values per point, so a value unpacked equals the value computed.

use super::local::{lite_fits, local_fits, local_r2, predict};
use super::{GwrError, GwrModel, LiteFit, LocalFit, Weighting};

/// Computes the per-point results of a GWR, in point order.
pub trait LocalFitter {
    /// Residual and influence S_ii of every point at `bandwidth` (what AICc needs).
    /// A singular local matrix is [`GwrError::SingularLocal`] naming the lowest such
    /// point.
    fn lite(&self, weighting: &Weighting, bandwidth: f64) -> Result<Vec<LiteFit>, GwrError>;

    /// The full local fit of every point (coefficients, fitted value, residual,
    /// influence, hat-row norm, variance factors).
    fn full(&self, weighting: &Weighting, bandwidth: f64) -> Result<Vec<LocalFit>, GwrError>;

    /// Local R2 of every point given the residuals of all points.
    fn local_r2(
        &self,
        weighting: &Weighting,
        bandwidth: f64,
        residuals: &[f64],
    ) -> Result<Vec<f64>, GwrError>;

    /// Local coefficients (p per location, NaN where singular) at locations `at`.
    fn predict(
        &self,
        weighting: &Weighting,
        bandwidth: f64,
        at: &[[f64; 2]],
    ) -> Result<Vec<f64>, GwrError>;
}

/// The fitter of this process: rayon over all points of the model.
pub struct LocalRayon<'a> {
    model: &'a GwrModel,
}

impl<'a> LocalRayon<'a> {
    /// The local fitter of `model`.
    pub fn new(model: &'a GwrModel) -> Self {
        Self { model }
    }
}

impl LocalFitter for LocalRayon<'_> {
    fn lite(&self, weighting: &Weighting, bandwidth: f64) -> Result<Vec<LiteFit>, GwrError> {
        lite_fits(self.model, weighting, bandwidth, 0..self.model.data().n())
    }

    fn full(&self, weighting: &Weighting, bandwidth: f64) -> Result<Vec<LocalFit>, GwrError> {
        local_fits(self.model, weighting, bandwidth, 0..self.model.data().n())
    }

    fn local_r2(
        &self,
        weighting: &Weighting,
        bandwidth: f64,
        residuals: &[f64],
    ) -> Result<Vec<f64>, GwrError> {
        local_r2(
            self.model,
            weighting,
            bandwidth,
            0..self.model.data().n(),
            residuals,
        )
    }

    fn predict(
        &self,
        weighting: &Weighting,
        bandwidth: f64,
        at: &[[f64; 2]],
    ) -> Result<Vec<f64>, GwrError> {
        predict(self.model, weighting, bandwidth, at)
    }
}

/// Values per point of a packed lite fit: residual, influence.
pub const LITE_STRIDE: usize = 2;

/// Values per point of a packed full fit with p parameters: params (p), fitted,
/// residual, influence, hat-row norm, neighbours, variance factors (p).
pub fn full_stride(p: usize) -> usize {
    2 * p + 5
}

/// Packs lite fits (see [`LITE_STRIDE`]).
pub fn pack_lite(fits: &[LiteFit]) -> Vec<f64> {
    fits.iter()
        .flat_map(|f| [f.residual, f.influence])
        .collect()
}

/// Unpacks [`pack_lite`] output.
pub fn unpack_lite(values: &[f64]) -> Result<Vec<LiteFit>, GwrError> {
    if !values.len().is_multiple_of(LITE_STRIDE) {
        return Err(GwrError::Partial(format!(
            "{} packed lite values, expected a multiple of {LITE_STRIDE}",
            values.len()
        )));
    }
    Ok(values
        .chunks_exact(LITE_STRIDE)
        .map(|v| LiteFit {
            residual: v[0],
            influence: v[1],
        })
        .collect())
}

/// Values per permutation of packed null fits ([`pack_null`]): 1 and the R2 of a
/// fitted permutation, or 0, the point, the column index (0 intercept, 1 the factor)
/// and the neighbours of a singular one; the stride is 5 either way.
pub const NULL_STRIDE: usize = 5;

/// Packs the fits of [`super::null_r2`] (see [`NULL_STRIDE`]): a singular local fit is
/// kept with its point, column and neighbours; any other error is returned.
pub fn pack_null(fits: &[Result<f64, GwrError>], factor_name: &str) -> Result<Vec<f64>, GwrError> {
    let mut out = Vec::with_capacity(fits.len() * NULL_STRIDE);
    for f in fits {
        match f {
            Ok(r2) => out.extend([1.0, *r2, 0.0, 0.0, 0.0]),
            Err(GwrError::SingularLocal {
                point,
                column,
                neighbours,
                ..
            }) => out.extend([
                0.0,
                0.0,
                *point as f64,
                (column == factor_name) as u8 as f64,
                *neighbours as f64,
            ]),
            Err(e) => return Err(e.clone()),
        }
    }
    Ok(out)
}

/// Unpacks [`pack_null`] output for a factor named `factor_name` at `bandwidth`, the
/// points at `coords` (their positions name the singular points).
pub fn unpack_null(
    values: &[f64],
    factor_name: &str,
    bandwidth: f64,
    coords: &[[f64; 2]],
) -> Result<Vec<Result<f64, GwrError>>, GwrError> {
    if !values.len().is_multiple_of(NULL_STRIDE) {
        return Err(GwrError::Partial(format!(
            "{} packed permutation values, expected a multiple of {NULL_STRIDE}",
            values.len()
        )));
    }
    values
        .chunks_exact(NULL_STRIDE)
        .map(|v| {
            if v[0] == 1.0 {
                return Ok(Ok(v[1]));
            }
            let point = v[2] as usize;
            let c = coords.get(point).copied().ok_or_else(|| {
                GwrError::Partial(format!(
                    "a singular permutation fit at point {point}, beyond the {} points",
                    coords.len()
                ))
            })?;
            Ok(Err(GwrError::SingularLocal {
                point,
                x: c[0],
                y: c[1],
                bandwidth,
                column: if v[3] == 1.0 {
                    factor_name.to_string()
                } else {
                    super::INTERCEPT.to_string()
                },
                neighbours: v[4] as usize,
            }))
        })
        .collect()
}

/// Packs full fits of p parameters (see [`full_stride`]).
pub fn pack_full(fits: &[LocalFit], p: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(fits.len() * full_stride(p));
    for f in fits {
        out.extend_from_slice(&f.params);
        out.extend([
            f.fitted,
            f.residual,
            f.influence,
            f.s_row_ss,
            f.neighbours as f64,
        ]);
        out.extend_from_slice(&f.var_factor);
    }
    out
}

/// Unpacks [`pack_full`] output of the points `first..`.
pub fn unpack_full(values: &[f64], p: usize, first: usize) -> Result<Vec<LocalFit>, GwrError> {
    let stride = full_stride(p);
    if !values.len().is_multiple_of(stride) {
        return Err(GwrError::Partial(format!(
            "{} packed fit values, expected a multiple of {stride} ({p} parameters)",
            values.len()
        )));
    }
    Ok(values
        .chunks_exact(stride)
        .enumerate()
        .map(|(k, v)| LocalFit {
            index: first + k,
            params: v[..p].to_vec(),
            fitted: v[p],
            residual: v[p + 1],
            influence: v[p + 2],
            s_row_ss: v[p + 3],
            neighbours: v[p + 4] as usize,
            var_factor: v[p + 5..].to_vec(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_fits_unpack_to_the_same_values() {
        let f = LocalFit {
            index: 7,
            params: vec![1.5, -2.25],
            fitted: 0.1,
            residual: -0.3,
            influence: 0.2,
            s_row_ss: 0.05,
            var_factor: vec![3.0, 4.0],
            neighbours: 42,
        };
        let packed = pack_full(std::slice::from_ref(&f), 2);
        assert_eq!(packed.len(), full_stride(2));
        assert_eq!(unpack_full(&packed, 2, 7).unwrap(), vec![f]);
        let l = LiteFit {
            residual: 1.25,
            influence: 0.5,
        };
        assert_eq!(unpack_lite(&pack_lite(&[l])).unwrap(), vec![l]);
        assert!(unpack_lite(&[1.0]).is_err());
    }
}
