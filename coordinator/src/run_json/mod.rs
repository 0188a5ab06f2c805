//! `run.json` of a completed `flus run`: the serde structs it is written from and that
//! `flus report` (and `flus bench`) read back, every section typed: the study's
//! identity, the maps and their files, every scenario's stages, the ensemble, the
//! timings and versions here; the validation (the object `flus validate --json` prints,
//! [`validation`]), the scenarios' ANN and LEAS forests ([`suitability`]), tables 7-9
//! ([`flus_shared::tables::TablesJson`]) and the GWR driver analysis ([`gwr`], around
//! [`flus_shared::analysis::AnalysisJson`]) in the modules beside it, each also the type
//! the command that produces it prints.
//!
//! Those sections are written with their keys in sorted order ([`sorted`]), as they
//! always were (they were serde_json values, whose maps sort their keys); the rest in
//! the order of the fields here. Keys that an earlier flus did not write are optional
//! (`#[serde(default)]`), so `flus report` still reads an older run folder.
//!
//! A run folder whose `run.json` does not parse into [`RunJson`] is not a completed run
//! of this version: `flus report` says so and names the key.

pub mod gwr;
pub mod suitability;
pub mod validation;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::cluster::remote::{SessionTraffic, Traffic};
use flus_shared::tables::TablesJson;
use gwr::GwrJson;
use suitability::{AnnJson, RandomForestJson};
use validation::{TransitionsJson, ValidationEnsembleJson, ValidationJson};

/// Serializes `value` with the keys of every object in it in sorted order (through a
/// serde_json value, whose maps sort their keys): the order of the sections that were
/// serde_json values before they were typed, so run.json and the commands' `--json`
/// stay byte-identical.
pub fn sorted<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(value)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// The whole `run.json` of a completed run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunJson {
    /// The study's name (`[study] name`).
    pub study: String,
    /// The seed the run used.
    pub seed: u64,
    /// The workers' addresses.
    pub workers: Vec<String>,
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// Cells inside the study area.
    pub valid_cells: u64,
    /// SHA-256 of the study file.
    pub config_sha256: String,
    /// The base year (`[markov] to`).
    pub base_year: i32,
    /// The last target year.
    pub target_year: i32,
    /// Every target year (one unless staged).
    pub target_years: Vec<i32>,
    /// The classes' codes, names and colours.
    pub legend: Vec<LegendJson>,
    /// The validation on the past period (`flus validate --json`'s object, with the
    /// run's `traffic` and, with `--ensemble`, `ensemble`); absent with
    /// `--no-validation`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted"
    )]
    pub validation: Option<ValidationJson>,
    /// The scenarios' ANN: its training report, or the given suitability raster.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted"
    )]
    pub ann: Option<AnnJson>,
    /// SHA-256 of the scenarios' network (the same for any worker and thread count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann_network_sha256: Option<String>,
    /// PLUS mode: the LEAS forests' driver contributions.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted"
    )]
    pub random_forest: Option<RandomForestJson>,
    /// Seconds of the scenarios' training (or of reading their suitability).
    pub ann_seconds: f64,
    /// Every training job (networks, forest tree ranges): the worker that ran it, its
    /// attempts, rows, bytes and seconds.
    #[serde(default)]
    pub training: Vec<crate::cluster::train_remote::TrainingJob>,
    /// The suitability GeoTIFF of the base year.
    pub suitability: PathBuf,
    /// The base map's land-use GeoTIFF.
    pub base_map: PathBuf,
    /// The base map's carbon storage GeoTIFF.
    pub base_carbon: PathBuf,
    /// Wall seconds of every scenario stage's CA (all members), added up over runs that
    /// ran at once.
    pub scenario_ca_seconds: f64,
    /// Wall seconds from the first scenario stage's start to the last one's end.
    #[serde(default)]
    pub scenario_ca_wall_seconds: f64,
    /// CA runs of a session at once (`--concurrent-runs`).
    #[serde(default)]
    pub concurrent_runs: u32,
    /// The seed ensemble (`--ensemble N`, N > 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<EnsembleJson>,
    /// What each session (the tiles of one network) sent and cost (null for the
    /// validation when it opened none).
    pub sessions: BTreeMap<String, Option<SessionTraffic>>,
    /// Every scenario: its last stage's figures and all its stages.
    pub scenarios: BTreeMap<String, ScenarioJson>,
    /// Every map of the run with its files, base map first.
    pub maps: Vec<MapJson>,
    /// Tables 7-9 (areas, storage, density by zone).
    #[serde(serialize_with = "sorted")]
    pub tables: TablesJson,
    /// The GWR driver analysis (absent without drivers).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted"
    )]
    pub gwr: Option<GwrJson>,
    /// Whether the workers read the static layers themselves (`--shared-data`).
    pub shared_data: bool,
    /// Peak resident memory of the coordinator and the workers.
    pub memory: MemoryJson,
    /// Wall seconds of the run (to run.json; the HTML report follows).
    pub wall_seconds: f64,
    /// Wall seconds during which some worker call was in flight.
    pub worker_busy_seconds: f64,
    /// Every stage's seconds, in the order they began (`overlapped` ones beside the rest).
    pub timings: Vec<StageTiming>,
    /// flus's version (also in `versions`).
    pub version: String,
    /// Versions of flus and GDAL.
    pub versions: Versions,
    /// Every file written, name to SHA-256.
    pub outputs: BTreeMap<String, String>,
    /// Warnings given during the run.
    pub warnings: Vec<String>,
    /// True: the run reached its end (a running or failed run's marker says false).
    pub completed: bool,
}

/// Peak resident memory of the run's processes (run.json's `memory`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryJson {
    /// Cells of the grid.
    pub grid_cells: u64,
    /// The coordinator's peak resident set, bytes.
    pub coordinator_peak_rss_bytes: u64,
    /// The same per grid cell.
    pub coordinator_peak_rss_bytes_per_cell: f64,
    /// Every worker's peak.
    pub workers: Vec<WorkerMemoryJson>,
    /// The coordinator's and the workers' peaks added up: an upper bound of the
    /// machine's peak when the workers are local (the peaks need not coincide); null
    /// when a worker did not answer.
    pub all_processes_peak_rss_bytes: Option<u64>,
    /// The same per grid cell.
    pub all_processes_peak_rss_bytes_per_cell: Option<f64>,
}

/// A worker's peak resident memory (null when it did not answer).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerMemoryJson {
    /// Its address.
    pub addr: String,
    /// Its peak resident set, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The same per grid cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes_per_cell: Option<f64>,
}

/// A class of the legend.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LegendJson {
    /// The class code in the land-use rasters.
    pub code: i64,
    /// Its name.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub color: String,
}

/// A map of the run and its files (names in the run folder).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MapJson {
    /// `2020` for the base map, `<scenario>_<year>` for a scenario's stage.
    pub label: String,
    /// The scenario (absent for the base map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// The map's year.
    pub year: i32,
    /// Its land-use GeoTIFF.
    pub landuse: String,
    /// Its carbon storage GeoTIFF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon: Option<String>,
    /// Its carbon change GeoTIFF (against the base map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carbon_change: Option<String>,
}

/// One scenario: the figures of its last stage (flattened, as before stages existed)
/// and every stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioJson {
    /// The last stage.
    #[serde(flatten)]
    pub last: StageJson,
    /// Every stage, in year order.
    pub stages: Vec<StageJson>,
}

/// One stage of a scenario: its CA run to `year`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageJson {
    /// `<scenario>_<year>`.
    pub label: String,
    /// The stage's target year.
    pub year: i32,
    /// Cells per class asked for.
    pub demand: BTreeMap<String, i64>,
    /// Demand minus cells reached, per class, at the end.
    pub final_gap: BTreeMap<String, i64>,
    /// Classes whose demand was not met, by name (null when every one was).
    pub unmet: Option<BTreeMap<String, flus_shared::tables::UnmetJson>>,
    /// Whether every class met its demand.
    pub demand_met: bool,
    /// Transition mode: every pair's quota and the cells converted (null in net mode).
    #[serde(default)]
    pub transitions: Option<TransitionsJson>,
    /// CA iterations run.
    pub iterations: u64,
    /// Why the CA stopped.
    pub stop_reason: flus_shared::ca::StopReason,
    /// The land-use GeoTIFF.
    pub map: PathBuf,
    /// SHA-256 of the map's cells.
    pub map_sha256: String,
    /// SHA-256 of the map the stage started from.
    #[serde(default)]
    pub start_map_sha256: String,
    /// The stage's random stream.
    pub stream: u64,
    /// Its carbon storage GeoTIFF.
    pub carbon: PathBuf,
    /// Its carbon change GeoTIFF.
    pub carbon_change: PathBuf,
    /// What went over the wire and the seconds of each phase.
    pub traffic: Traffic,
}

/// The seed ensemble.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EnsembleJson {
    /// Members.
    pub members: u32,
    /// Every member's seed (member 0: the study's).
    pub seeds: Vec<u64>,
    /// Carbon over the members, per map (`carbon_ensemble.csv`).
    pub carbon: Vec<flus_shared::ensemble::CarbonRow>,
    /// `carbon_ensemble.csv`.
    pub carbon_csv: Option<String>,
    /// Per scenario and year, its frequency rasters.
    pub maps: Vec<EnsembleMapJson>,
    /// The validation metrics' mean, min and max over the members (null without the
    /// validation).
    #[serde(default, serialize_with = "sorted")]
    pub validation: Option<ValidationEnsembleJson>,
}

/// The frequency rasters of one scenario and year.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EnsembleMapJson {
    /// `<scenario>_<year>`.
    pub label: String,
    /// The scenario.
    pub scenario: String,
    /// The year.
    pub year: i32,
    /// Members counted.
    pub members: u32,
    /// `change_frequency_<label>.tif`.
    pub change_frequency: Option<String>,
    /// `class_frequency_<label>.tif`.
    pub class_frequency: Option<String>,
    /// Every member's carbon storage of the map, t (member order).
    pub storage_t: Vec<f64>,
}

/// One stage's seconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StageTiming {
    /// The stage (`inputs_and_demand`, `validation`, `scenario_<name>`, `gwr`, ...).
    pub stage: String,
    /// Its wall seconds.
    pub seconds: f64,
    /// The part of them during which some worker call was in flight.
    pub worker_busy_seconds: f64,
    /// True: the stage ran beside the run's main line of stages (the validation, on a
    /// thread of its own while the scenarios' stages run): its seconds overlap theirs
    /// and are not part of their sum.
    #[serde(default)]
    pub overlapped: bool,
}

/// Versions of the run's software.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Versions {
    /// flus.
    pub flus: String,
    /// GDAL.
    pub gdal: String,
}

impl RunJson {
    /// Reads `run.json` of run folder `dir`: an error names the file and what is wrong
    /// (not a run folder, a run that did not complete, a key of another version).
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (is this a flus run folder?)", path.display()))?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        if value["completed"] != Value::Bool(true) {
            anyhow::bail!(
                "{}: the run did not complete (status {}{}): run it again or with --resume",
                path.display(),
                value["status"],
                value["error"]
                    .as_str()
                    .map(|e| format!(", error: {e}"))
                    .unwrap_or_default()
            );
        }
        serde_json::from_value(value).with_context(|| {
            format!(
                "{}: not a run.json of flus run {} (rerun flus run)",
                path.display(),
                env!("CARGO_PKG_VERSION")
            )
        })
    }
}

#[cfg(test)]
mod tests;
