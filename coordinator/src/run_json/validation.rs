//! The validation's object: what `flus validate --json` prints and run.json's
//! `validation` holds (with the run's traffic and, with `--ensemble`, the members'
//! metrics), and the transition mode's pairs (also each stage's `transitions`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use flus_shared::ann::TrainReport;
use flus_shared::ca::StopReason;
use flus_shared::config::{Allocation, PatchesConfig};
use flus_shared::landscape::PatchesJson;
use flus_shared::metrics::Metrics;

use super::suitability::RandomForestJson;
use crate::cluster::remote::Traffic;

/// The validation on the past period (`[markov] from` -> `to`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidationJson {
    /// The simulated map's metrics against the later map (their keys at the top).
    #[serde(flatten)]
    pub simulation: Metrics,
    /// The persistence baseline's (the start map as the simulation).
    pub persistence: Metrics,
    /// The random allocation's of the same demand.
    pub random: Metrics,
    /// `[ca] allocation`.
    #[serde(default)]
    pub allocation: Allocation,
    /// Cells whose simulated class differs from the start map's.
    #[serde(default)]
    pub gross_change_simulated: u64,
    /// Cells whose observed class differs from the start map's.
    #[serde(default)]
    pub gross_change_observed: u64,
    /// The observed net change: the sum of the classes' gains.
    #[serde(default)]
    pub net_change: u64,
    /// Transition mode: every pair's quota and the cells converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitions: Option<TransitionsJson>,
    /// Whether every class met its demand.
    pub demand_met: bool,
    /// Demand minus cells reached, per class name.
    pub final_gap: BTreeMap<String, i64>,
    /// CA iterations run.
    pub iterations: u64,
    /// SHA-256 of the simulated map's cells.
    pub map_sha256: String,
    /// Why the CA stopped.
    pub stop_reason: StopReason,
    /// The new land's patches per class, observed and simulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<PatchesJson>,
    /// `[ca] patches` (PLUS's random patch seeds), null without.
    #[serde(default)]
    pub ca_patches: Option<PatchesConfig>,
    /// The change maps' files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps: Option<ChangeMapsJson>,
    /// The start year.
    pub from: i32,
    /// The later map's year.
    pub to: i32,
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// The validation's ANN training report (null when it trained none).
    #[serde(default)]
    pub ann: Option<TrainReport>,
    /// PLUS mode: the LEAS forests' driver contributions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_forest: Option<RandomForestJson>,
    /// Mean CA proposals per iteration.
    #[serde(default)]
    pub mean_proposals_per_iteration: f64,
    /// `flus run`: what the validation's session sent and its phases' seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// `flus run`: SHA-256 of the validation's network (when it trained one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann_network_sha256: Option<String>,
    /// `flus run --ensemble N`: the metrics over the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<ValidationEnsembleJson>,
}

/// The validation's change maps, file names in the output folder.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeMapsJson {
    /// Where the land use changed, observed.
    pub observed_change: Option<String>,
    /// Where it changed, simulated.
    pub simulated_change: Option<String>,
    /// The figure of merit's components.
    pub components: Option<String>,
}

/// Transition mode: per pair `"<from> -> <to>"` with a quota or a conversion, both.
pub type TransitionsJson = BTreeMap<String, TransitionJson>;

/// One (from, to) pair of the transition mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionJson {
    /// Cells the pair was to convert.
    pub quota: u64,
    /// Cells it converted.
    pub simulated: u64,
}

/// Transition mode: the quota and the simulated cells of every pair with either non-zero
/// (K x K row-major `quota` and `done`, `names` the classes).
pub fn transitions(names: &[String], quota: &[u64], done: &[u64]) -> TransitionsJson {
    let k = names.len();
    let mut m = TransitionsJson::new();
    for c in 0..k {
        for to in (0..k).filter(|&to| to != c) {
            let (quota, simulated) = (quota[c * k + to], done[c * k + to]);
            if quota > 0 || simulated > 0 {
                m.insert(
                    format!("{} -> {}", names[c], names[to]),
                    TransitionJson { quota, simulated },
                );
            }
        }
    }
    m
}

/// The validation's metrics over the seed ensemble's members (run.json
/// `validation.ensemble` and `ensemble.validation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationEnsembleJson {
    /// Members.
    pub members: usize,
    /// Overall accuracy.
    pub oa: RangeJson,
    /// Kappa (null where a member's is undefined).
    pub kappa: Option<RangeJson>,
    /// Figure of merit (null where a member's is undefined).
    pub fom: Option<RangeJson>,
}

/// A metric over the members.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangeJson {
    /// Their mean.
    pub mean: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// Every member's, in member order.
    pub members: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_list_the_pairs_with_a_quota_or_a_conversion_by_name() {
        // 3 classes, row-major from x to: a -> b quota 5 done 4, c -> a quota 0 done 2,
        // b -> c neither (left out), the diagonal never listed
        let names = ["a", "b", "c"].map(String::from).to_vec();
        let quota = [9, 5, 0, 0, 9, 0, 0, 0, 9];
        let done = [9, 4, 0, 0, 9, 0, 2, 0, 9];
        let t = transitions(&names, &quota, &done);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["a -> b", "c -> a"]);
        assert_eq!(
            t["a -> b"],
            TransitionJson {
                quota: 5,
                simulated: 4
            }
        );
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"a -> b":{"quota":5,"simulated":4},"c -> a":{"quota":0,"simulated":2}}"#
        );
    }
}
