//! The suitability's sections: the scenarios' ANN (`ann`: its training report, or the
//! given raster) and PLUS's LEAS forests (`random_forest`, also in `flus validate
//! --json` and `flus simulate --json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use flus_shared::ann::TrainReport;
use flus_shared::forest::Leas;

/// The scenarios' suitability: the ANN's training report, or the given raster (in
/// JSON `{"suitability_raster": ...}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnnJson {
    /// The network trained on a worker: its training figures.
    Trained(TrainReport),
    /// `[ann] suitability`: the raster read instead of training.
    Given {
        /// The raster's path (resolved against the study's folder).
        suitability_raster: Option<PathBuf>,
    },
}

impl<'de> Deserialize<'de> for AnnJson {
    /// An object with `suitability_raster` is the given raster; any other must be a
    /// whole training report (an error names the missing key, which an untagged enum's
    /// would not).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        match v.get("suitability_raster") {
            Some(p) => Ok(AnnJson::Given {
                suitability_raster: Option::deserialize(p).map_err(D::Error::custom)?,
            }),
            None => TrainReport::deserialize(v)
                .map(AnnJson::Trained)
                .map_err(D::Error::custom),
        }
    }
}

/// The LEAS forests (PLUS mode): every class's sample and forest figures, the drivers'
/// contributions and their CSV.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomForestJson {
    /// The drivers and every class's figures (without the forests themselves).
    #[serde(flatten)]
    pub leas: Leas,
    /// Per class name, each driver's contribution to its expansion, PLUS's shares of
    /// the error growth (driver order; null for a class that did not expand).
    pub contributions: BTreeMap<String, Option<Vec<f64>>>,
    /// Per class name, the forest's out-of-bag permutation importance of each driver
    /// (mean decrease in accuracy; absent from run.json files before session 14).
    #[serde(default)]
    pub oob_importance: BTreeMap<String, Option<Vec<f64>>>,
    /// `driver_contributions.csv`.
    pub driver_contributions: PathBuf,
}

impl RandomForestJson {
    /// The section of `leas` whose contributions were written to `csv`.
    pub fn of(leas: &Leas, csv: &Path) -> Self {
        let mut leas = leas.clone();
        let by_class = |v: Vec<Option<Vec<f64>>>| {
            leas.classes
                .iter()
                .zip(v)
                .map(|(c, v)| (c.class.clone(), v))
                .collect()
        };
        let contributions = by_class(leas.contributions());
        let oob_importance = by_class(leas.oob_importance());
        // the JSON holds the figures, not the trees
        for c in &mut leas.classes {
            c.forest = None;
        }
        RandomForestJson {
            leas,
            contributions,
            oob_importance,
            driver_contributions: csv.to_path_buf(),
        }
    }
}
