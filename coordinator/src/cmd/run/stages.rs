//! The scenarios of `flus run`, stage by stage (`[markov] target_years`): every stage of
//! a scenario runs in the resident session of the scenarios (no tile reloaded, no ANN
//! retrained) from the previous stage's map, with the Markov demand of its year and its
//! own random stream. One target year is one stage from the base map.
//!
//! The chains of stages (one per scenario and ensemble member) run concurrently, up to
//! `--concurrent-runs` at once, each run on its own lane of the session; their results
//! are recorded and written in (scenario, member, stage) order, as a sequential run
//! would.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use flus_shared::area::CellAreas;
use flus_shared::ca::{self, CaInput, CaParams};
use flus_shared::config::Study;
use flus_shared::ensemble::member_seed;
use flus_shared::markov::ScenarioDemand;
use flus_shared::{files, model, outputs, stack, tables};

use super::{ClusterCa, Queue, Session};
use crate::cluster::remote;
use crate::run_files::{self, RunCarbon};
use crate::run_json::{EnsembleMapJson, MapJson, ScenarioJson, StageJson};

/// One stage of one scenario: the CA from `start` to `demand`, its random draws keyed by
/// `params` (the study seed and the stage's stream). Everything else (tiles, static
/// layers, suitability) is the session's.
pub(super) struct Stage<'a> {
    /// `{scenario}_{year}`: names its map, files, checkpoint and hold points.
    pub label: String,
    /// The year it simulates.
    pub year: i32,
    /// CA parameters with the stage's seed and stream.
    pub params: CaParams,
    /// The map it starts from (the base map, or the previous stage's map).
    pub start: &'a [u8],
    /// Cells per class of `start` (for the low-suitability warning).
    pub start_counts: &'a [u64],
    /// Cells per class at `year`.
    pub demand: Vec<i64>,
    /// Transition mode (`[ca] allocation = "transitions"`): cells per (from, to) pair,
    /// K x K row-major; None in net mode.
    pub quota: Option<Vec<u64>>,
}

/// What one stage gives: the CA's output, its traffic and the workers' cell counts per
/// (zone, class) of its final map.
pub(super) struct StageRun {
    /// The CA's output (final map, iteration records, report).
    pub res: ca::CaOutput,
    /// What went over the wire.
    pub traffic: remote::Traffic,
    /// Cell counts per (zone, class) of the final map, from the workers.
    pub counts: tables::ZoneCounts,
}

impl ClusterCa<'_> {
    /// Runs one stage of one scenario in `session` (the scenarios' resident tiles): the
    /// workers' class windows are reset to `stage.start` and the CA runs to
    /// `stage.demand`, resuming from the stage's checkpoint under `--resume`.
    pub(super) fn run_stage(
        &self,
        session: &Session<'_>,
        st: &stack::Stack,
        stage: &Stage<'_>,
        max_suitability: &[f32],
    ) -> anyhow::Result<StageRun> {
        // the workers hold the suitability (computed from the network, or shipped)
        let input = CaInput {
            width: st.grid.width,
            height: st.grid.height,
            classes: stage.start,
            suitability: &[],
            restricted: &st.restricted,
            demand: &stage.demand,
            quota: stage.quota.as_deref(),
        };
        ca::warn_low_max_suitability(
            &stage.params,
            &stage.demand,
            stage.start_counts,
            max_suitability,
        );
        let (res, traffic, counts) = self.run(session, &stage.label, &stage.params, &input)?;
        Ok(StageRun {
            res,
            traffic,
            counts,
        })
    }
}

/// What the scenarios share: the study, its layers, the base map and what was computed
/// from it once.
pub(super) struct Shared<'a> {
    /// The study.
    pub study: &'a Study,
    /// Its layers.
    pub st: &'a stack::Stack,
    /// The output folder.
    pub out: &'a Path,
    /// The base map (`[markov] to`).
    pub base: &'a [u8],
    /// Cells per class of the base map.
    pub base_counts: &'a [u64],
    /// The largest suitability per class over the free cells.
    pub max_suitability: &'a [f32],
    /// Carbon rasters of the run.
    pub run_carbon: &'a RunCarbon,
    /// Cell areas.
    pub areas: &'a CellAreas,
    /// Class names.
    pub names: &'a [String],
    /// Demand `[stage][scenario]` ([`flus_shared::markov::stage_demands`]).
    pub demands: &'a [Vec<ScenarioDemand>],
    /// The GWR sample cells, when the study has drivers.
    pub gwr_cells: Option<&'a [usize]>,
    /// Cells per (zone, class) of the base map (from the workers).
    pub base_zone_counts: &'a tables::ZoneCounts,
    /// Members of the seed ensemble (`--ensemble`; 1: the study's own run only).
    pub members: u32,
}

impl<'a> Shared<'a> {
    /// Stage `s` (0-based) of scenario `i`, simulating `year` from `start` (whose cells
    /// per class are `start_counts`) with the Markov demand of that year and the
    /// stage's stream.
    fn stage(
        &self,
        (i, s): (usize, usize),
        year: i32,
        start: &'a [u8],
        start_counts: &'a [u64],
    ) -> anyhow::Result<Stage<'a>> {
        // net mode: the Markov demand; transition mode: the transition counts of the
        // stage's start map projected over the stage's span (from the base year or
        // the previous stage's year) and the class totals they lead to
        let mk = &self.study.config.markov;
        let from_year = s
            .checked_sub(1)
            .and_then(|p| mk.years().get(p).copied())
            .unwrap_or(mk.to);
        let (demand, quota) = model::scenario_allocation(
            self.study,
            (start, from_year),
            &self.st.restricted,
            &self.demands[s][i],
            i,
        )?;
        Ok(Stage {
            label: format!("{}_{year}", self.study.config.scenarios[i].name),
            year,
            params: model::stage_params(self.study, i, s),
            start,
            start_counts,
            demand,
            quota,
        })
    }

    /// The carbon change of `map` against the base map at the GWR sample cells (None
    /// without drivers).
    fn carbon_change_at(&self, map: &[u8]) -> Option<Vec<f64>> {
        let cells = self.gwr_cells?;
        Some(flus_shared::analysis::carbon_change_at(
            &tables::densities(self.study),
            self.base,
            map,
            cells,
            self.areas,
            self.st.grid.width,
        ))
    }
}

/// What the scenarios' stages gave, for run.json, the tables and the GWR analysis.
#[derive(Default)]
pub(super) struct Outputs {
    /// run.json `maps` entries, one per stage (the base map's is the caller's).
    pub maps: Vec<MapJson>,
    /// run.json `scenarios`: per scenario its final stage, and `stages`.
    pub scenarios: BTreeMap<String, ScenarioJson>,
    /// Per stage: label, counts and areas per (zone, class).
    pub counts: Vec<(String, tables::ZoneCounts, tables::ZoneAreas)>,
    /// Classes whose demand was not met, every stage.
    pub unmet: Vec<tables::UnmetClass>,
    /// Per scenario, the carbon change (final stage minus base) at the GWR cells.
    pub carbon_at: Vec<(String, Vec<f64>)>,
    /// With an ensemble: `carbon_ensemble.csv`'s rows, per scenario and stage.
    pub ensemble_carbon: Vec<flus_shared::ensemble::CarbonRow>,
    /// With an ensemble: run.json entries of the frequency rasters.
    pub ensemble_maps: Vec<EnsembleMapJson>,
    /// Wall seconds of the CA runs of every stage of every member (from the start of a
    /// run to its final counts), added up over runs that ran at once.
    pub ca_seconds: f64,
    /// Wall seconds from the first stage's start to the last one's end (with concurrent
    /// runs, less than `ca_seconds`).
    pub ca_wall_seconds: f64,
}

/// What a stage is recorded with, once its run is done.
struct StageInfo {
    label: String,
    year: i32,
    stream: u32,
    demand: Vec<i64>,
    quota: Option<Vec<u64>>,
}

impl StageInfo {
    fn of(stage: &Stage<'_>) -> Self {
        Self {
            label: stage.label.clone(),
            year: stage.year,
            stream: stage.params.stream,
            demand: stage.demand.clone(),
            quota: stage.quota.clone(),
        }
    }
}

/// One stage of a chain, done.
struct Done {
    info: StageInfo,
    /// SHA-256 of the map it started from (member 0 only; empty otherwise).
    start_sha256: String,
    run: StageRun,
}

/// Runs the stages of scenario `i` for ensemble member `member`, each from the previous
/// one's map (the first from the base map), in `session`.
fn run_chain(
    cluster: &ClusterCa<'_>,
    session: &Session<'_>,
    shared: &Shared<'_>,
    (i, member): (usize, u32),
) -> anyhow::Result<Vec<Done>> {
    let study = shared.study;
    let years = study.config.markov.years();
    // the map the next stage starts from, and its cells per class
    let mut previous: Option<(Vec<u8>, Vec<u64>)> = None;
    let mut done = Vec::with_capacity(years.len());
    for (s, &year) in years.iter().enumerate() {
        let (start, start_counts) = match &previous {
            Some((m, c)) => (m.as_slice(), c.as_slice()),
            None => (shared.base, shared.base_counts),
        };
        let mut stage = shared.stage((i, s), year, start, start_counts)?;
        if member > 0 {
            stage.params.seed = member_seed(study.config.study.seed, member);
            stage.label = format!("{}_m{member}", stage.label);
        }
        tracing::info!(
            "stage 5/5: scenario {} (stage {} of {}, member {} of {})",
            stage.label,
            s + 1,
            years.len(),
            member + 1,
            shared.members
        );
        let start_sha256 = if member == 0 {
            files::sha256_hex(start)
        } else {
            String::new()
        };
        let run = cluster.run_stage(session, shared.st, &stage, shared.max_suitability)?;
        let info = StageInfo::of(&stage);
        if s + 1 < years.len() {
            let next_counts = tables::class_totals(&run.counts, study.k());
            previous = Some((run.res.map.clone(), next_counts));
        }
        done.push(Done {
            info,
            start_sha256,
            run,
        });
    }
    Ok(done)
}

fn file_name(p: &Path) -> Option<String> {
    p.file_name().map(|n| n.to_string_lossy().to_string())
}

/// Runs every selected scenario (`selected`; empty: all) in `session`: the chains of
/// stages of every scenario and member, up to `cluster.concurrent` at once. Results are
/// taken in (scenario, member) order: member 0's stage files (land-use map, carbon
/// rasters, iterations) are handed to `files`, written on its thread while the workers
/// run on (the last ones while the caller goes on); `lap` is called with
/// `scenario_{name}` when a scenario's members are all taken.
pub(super) fn run_all<'w>(
    cluster: &ClusterCa<'_>,
    session: &Session<'_>,
    shared: &'w Shared<'w>,
    selected: &[String],
    lap: &mut dyn FnMut(&str),
    files: &mut Queue<'w>,
) -> anyhow::Result<Outputs> {
    let study = shared.study;
    let years = study.config.markov.years();
    let chosen: Vec<usize> = (0..study.config.scenarios.len())
        .filter(|&i| selected.is_empty() || selected.contains(&study.config.scenarios[i].name))
        .collect();
    let members = shared.members.max(1) as usize;
    let mut taker = Taker {
        acc: None,
        stages: Vec::new(),
        o: Outputs::default(),
    };
    let started = std::time::Instant::now();
    let chain = |c: usize| (chosen[c / members], (c % members) as u32);
    super::concurrent::in_order(
        chosen.len() * members,
        cluster.concurrent,
        |c| run_chain(cluster, session, shared, chain(c)),
        |c, done| {
            let (i, member) = chain(c);
            let name = &study.config.scenarios[i].name;
            if member == 0 {
                taker.acc = super::ensemble::Accumulator::new(shared, years.len());
            }
            for (s, d) in done.into_iter().enumerate() {
                if let Some((label, res)) = taker.stage(shared, name, (member, s), d)? {
                    // written after the previous stages' files, on the queue's thread
                    files.push(move || write_stage(shared, &label, &res))?;
                }
            }
            if member as usize + 1 == members {
                taker.finish(shared, name, &years)?;
                lap(&format!("scenario_{name}"));
            }
            Ok(())
        },
    )?;
    let mut o = taker.o;
    o.ca_wall_seconds = started.elapsed().as_secs_f64();
    Ok(o)
}

/// Takes the chains' stages in (scenario, member, stage) order into the outputs.
struct Taker {
    /// The ensemble's accumulator of the scenario being taken.
    acc: Option<super::ensemble::Accumulator>,
    /// run.json entries of the scenario's stages (member 0).
    stages: Vec<StageJson>,
    o: Outputs,
}

impl Taker {
    /// Takes stage `s` of `member` of scenario `scenario`; returns member 0's label and
    /// map, whose files are to be written.
    fn stage(
        &mut self,
        shared: &Shared<'_>,
        scenario: &str,
        (member, s): (u32, usize),
        d: Done,
    ) -> anyhow::Result<Option<(String, ca::CaOutput)>> {
        let o = &mut self.o;
        o.ca_seconds += d.run.traffic.seconds.total;
        if let Some(acc) = self.acc.as_mut() {
            acc.add(shared, s, &d.run)?;
        }
        if member > 0 {
            return Ok(None);
        }
        let mut j = record(shared, scenario, &d.info, &d.run, o);
        j.start_map_sha256 = d.start_sha256;
        self.stages.push(j);
        let res = d.run.res;
        if s + 1 == shared.study.config.markov.years().len() {
            // the GWR's carbon change: the final stage against the base map
            if let Some(change) = shared.carbon_change_at(&res.map) {
                o.carbon_at.push((scenario.to_string(), change));
            }
        }
        Ok(Some((d.info.label, res)))
    }

    /// Ends scenario `scenario` once all its members are taken: its ensemble outputs
    /// and its run.json entry.
    fn finish(&mut self, shared: &Shared<'_>, scenario: &str, years: &[i32]) -> anyhow::Result<()> {
        if let Some(acc) = self.acc.take() {
            let (rows, maps) = acc.finish(shared, scenario, years)?;
            self.o.ensemble_carbon.extend(rows);
            self.o.ensemble_maps.extend(maps);
        }
        let stages = std::mem::take(&mut self.stages);
        let last = stages
            .last()
            .cloned()
            .with_context(|| format!("scenario {scenario}: no stage ran"))?;
        self.o
            .scenarios
            .insert(scenario.to_string(), ScenarioJson { last, stages });
        Ok(())
    }
}

/// Records stage `stage` of scenario `scenario` in `o` (its map entry, counts, unmet
/// classes); returns its run.json entry.
fn record(
    shared: &Shared<'_>,
    scenario: &str,
    stage: &StageInfo,
    run: &StageRun,
    o: &mut Outputs,
) -> StageJson {
    let (st, out, names, label) = (shared.st, shared.out, shared.names, &stage.label);
    let res = &run.res;
    let zone_areas = tables::zone_areas(
        &run.counts,
        &res.map,
        st.zones.as_deref(),
        st.grid.width,
        shared.areas,
    );
    o.counts
        .push((label.clone(), run.counts.clone(), zone_areas));
    let map_path = out.join(format!("landuse_{label}.tif"));
    let carbon_path = out.join(run_files::storage_name(label));
    let change_path = out.join(run_files::change_name(label));
    o.maps.push(MapJson {
        label: label.clone(),
        scenario: Some(scenario.to_string()),
        year: stage.year,
        landuse: file_name(&map_path).unwrap_or_default(),
        carbon: file_name(&carbon_path),
        carbon_change: file_name(&change_path),
    });
    // unmet_demand.csv names the stage when there are several
    let who = if shared.study.config.markov.staged() {
        label.as_str()
    } else {
        scenario
    };
    let short = tables::unmet(names, who, &stage.demand, &res.report.final_gap);
    if !short.is_empty() {
        tracing::warn!(scenario, year = stage.year, unmet = ?short, "demand not met: see unmet_demand.csv");
    }
    let j = StageJson {
        label: label.clone(),
        year: stage.year,
        demand: crate::cmd::common::by_class(names, &stage.demand),
        final_gap: crate::cmd::common::by_class(names, &res.report.final_gap),
        unmet: tables::unmet_by_class(&short),
        demand_met: res.report.demand_met,
        transitions: stage
            .quota
            .as_ref()
            .zip(res.report.transitions_done.as_ref())
            .map(|(q, d)| crate::run_json::validation::transitions(names, q, d)),
        iterations: res.report.iterations as u64,
        stop_reason: res.report.stop_reason,
        map: map_path,
        map_sha256: files::sha256_hex(&res.map),
        start_map_sha256: String::new(),
        stream: stage.stream as u64,
        carbon: carbon_path,
        carbon_change: change_path,
        traffic: run.traffic.clone(),
    };
    o.unmet.extend(short);
    j
}

/// Writes the files of stage `label`: its land-use map, its carbon storage and change
/// (against the base map) rasters, and its iterations.
fn write_stage(shared: &Shared<'_>, label: &str, res: &ca::CaOutput) -> anyhow::Result<()> {
    let (study, out, grid) = (shared.study, shared.out, &shared.st.grid);
    // test builds: a fault test can hold this writer while the workers run the next
    // stage, and disturb the workers meanwhile
    flus_shared::hooks::hold(|| format!("scenario-outputs-{label}"));
    let map_path = out.join(format!("landuse_{label}.tif"));
    outputs::write_landuse(&map_path, study, grid, &res.map)?;
    let written =
        shared
            .run_carbon
            .write_scenario(study, out, grid, label, shared.base, &res.map)?;
    let expected = (
        out.join(run_files::storage_name(label)),
        out.join(run_files::change_name(label)),
    );
    anyhow::ensure!(
        written == expected,
        "stage {label}: carbon rasters written to {written:?}"
    );
    outputs::write_iterations(
        &out.join(format!("iterations_{label}.csv")),
        study,
        &res.records,
    )?;
    Ok(())
}
