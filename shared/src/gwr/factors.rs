//! The paper's Table 10: the R2 of a GWR of y on each single factor (intercept + that
//! factor), each with its own bandwidth.

use serde::{Deserialize, Serialize};

use super::{fit, GwrData, GwrModel, GwrSettings};

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
