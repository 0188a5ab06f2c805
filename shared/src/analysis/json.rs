//! The driver analysis's summary (run.json `gwr`): every target's GWR, the coefficient
//! maps' grid and the factor table (Table 10), as [`super::run_with`] returns it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::json::f64_or_null;

/// The driver analysis's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisJson {
    /// Sample points.
    pub points: usize,
    /// Per class name, the GWR of its suitability on every driver.
    pub classes: BTreeMap<String, GwrTargetJson>,
    /// Per scenario, the GWR of its carbon change on every driver.
    #[serde(default)]
    pub carbon: BTreeMap<String, GwrTargetJson>,
    /// `gwr_summary.csv`.
    #[serde(default)]
    pub summary_csv: PathBuf,
    /// The coarse grid of the coefficient maps.
    #[serde(default)]
    pub coefficient_grid: CoefficientGridJson,
    /// The drivers, in column order.
    #[serde(default)]
    pub factors: Vec<String>,
    /// Permutations of the factor table's test (`[gwr] permutations`); absent in a run
    /// folder of an earlier flus.
    #[serde(default)]
    pub permutations: Option<usize>,
    /// The factor table (Table 10): one entry per class.
    #[serde(default)]
    pub factor_r2: Vec<FactorR2Json>,
}

/// One target's GWR: its figures, or the error that stopped it (a failed GWR is
/// reported, not fatal). In JSON the figures' object, or `{"error": ...}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GwrTargetJson {
    /// The GWR's figures and files.
    Fit(GwrFitJson),
    /// Why the GWR failed.
    Failed {
        /// The error's message.
        error: String,
    },
}

impl<'de> Deserialize<'de> for GwrTargetJson {
    /// An object with `error` is a failed GWR; any other must hold every figure (an
    /// error names the missing key, which an untagged enum's would not).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        match v.get("error") {
            Some(e) => Ok(GwrTargetJson::Failed {
                error: String::deserialize(e).map_err(D::Error::custom)?,
            }),
            None => GwrFitJson::deserialize(v)
                .map(GwrTargetJson::Fit)
                .map_err(D::Error::custom),
        }
    }
}

impl GwrTargetJson {
    /// The fit, None when the GWR failed.
    pub fn fit(&self) -> Option<&GwrFitJson> {
        match self {
            GwrTargetJson::Fit(f) => Some(f),
            GwrTargetJson::Failed { .. } => None,
        }
    }
}

/// The figures and files of one target's GWR.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GwrFitJson {
    /// Bandwidth (neighbours when adaptive, else distance).
    #[serde(deserialize_with = "f64_or_null")]
    pub bandwidth: f64,
    /// AICc.
    #[serde(deserialize_with = "f64_or_null")]
    pub aicc: f64,
    /// R2.
    #[serde(deserialize_with = "f64_or_null")]
    pub r2: f64,
    /// Adjusted R2.
    #[serde(deserialize_with = "f64_or_null")]
    pub adj_r2: f64,
    /// The global OLS's R2.
    #[serde(deserialize_with = "f64_or_null")]
    pub ols_r2: f64,
    /// The points CSV.
    pub points_csv: PathBuf,
    /// The coefficient map (GeoTIFF, one band per parameter).
    pub coefficient_map: PathBuf,
}

/// The coarse grid of the coefficient maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoefficientGridJson {
    /// Cells of the study grid per coarse cell, along each axis.
    pub factor: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

/// One class's row of the factor table: per driver, in driver order (null where not
/// computed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorR2Json {
    /// The class.
    pub class: String,
    /// The single-driver GWR's bandwidth.
    pub bandwidth: Vec<Option<f64>>,
    /// Its R2.
    pub r2: Vec<Option<f64>>,
    /// The intercept-only GWR's R2 at that bandwidth.
    #[serde(default)]
    pub r2_intercept_only: Vec<Option<f64>>,
    /// The 95th percentile of the permutation R2.
    #[serde(default)]
    pub r2_null_p95: Vec<Option<f64>>,
    /// The permutation p-value.
    #[serde(default)]
    pub p_value: Vec<Option<f64>>,
}
