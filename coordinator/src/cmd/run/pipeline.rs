//! The stages of `flus run`, each a function with a typed result: the inputs and demand,
//! the LEAS forests, the scenarios' suitability, the scenarios' session, the base map's
//! files, the validation, the carbon tables; and the run's stage timings. `run_in`
//! (the parent module) calls them in order and overlaps those that wait for nothing
//! (docs/scaling.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use flus_shared::ca::engine;
use flus_shared::config::Study;
use flus_shared::markov::ScenarioDemand;
use flus_shared::{files, markov, model, outputs, stack, tables};

use super::super::common;
use super::{free_maxima_here, train_on_workers, ClusterCa, Session, SuitabilitySource};
use crate::cluster::remote;
use crate::cluster::train_remote::Trainers;
use crate::report::Prerendered;
use crate::run_files::RunCarbon;
use crate::run_json::suitability::AnnJson;
use crate::run_json::{RunJson, StageTiming};

/// The wall seconds of the run's stages and the part of them some worker call was in
/// flight (run.json `timings`).
pub(super) struct Timings {
    list: Vec<StageTiming>,
    lap: Mark,
}

/// A stage's start: when, and the worker-busy seconds then.
#[derive(Clone, Copy)]
pub(super) struct Mark {
    at: Instant,
    busy: f64,
}

impl Mark {
    /// Now.
    pub(super) fn now() -> Self {
        Self {
            at: Instant::now(),
            busy: crate::cluster::busy::seconds(),
        }
    }

    /// The stage `name` that started at this mark and ends now; `overlapped`: it ran
    /// beside the stages of the run's main line.
    pub(super) fn timing(&self, name: &str, overlapped: bool) -> StageTiming {
        StageTiming {
            stage: name.to_string(),
            seconds: self.at.elapsed().as_secs_f64(),
            worker_busy_seconds: crate::cluster::busy::seconds() - self.busy,
            overlapped,
        }
    }
}

impl Timings {
    /// Timings from now.
    pub(super) fn new() -> Self {
        Self {
            list: Vec::new(),
            lap: Mark::now(),
        }
    }

    /// Ends stage `name` of the main line (it began where the previous one ended).
    pub(super) fn lap(&mut self, name: &str) {
        self.list.push(self.lap.timing(name, false));
        self.lap = Mark::now();
    }

    /// Where the next stage of the main line goes in the list.
    pub(super) fn position(&self) -> usize {
        self.list.len()
    }

    /// Adds `t`, a stage that ran beside the main line, at `position` (where it began).
    pub(super) fn insert(&mut self, position: usize, t: StageTiming) {
        self.list.insert(position.min(self.list.len()), t);
    }

    /// Every stage in run order.
    pub(super) fn into_list(self) -> Vec<StageTiming> {
        self.list
    }
}

/// The inputs of a run: the layers and the demand of every stage, `[scenario]` by year.
pub(super) struct Inputs {
    /// The layers (the drivers in scratch files).
    pub(super) st: stack::Stack,
    /// Demand `[stage][scenario]`.
    pub(super) stage_demands: Vec<Vec<ScenarioDemand>>,
}

/// Reads the layers, projects the Markov demand of every stage and writes the demand
/// tables into `out`.
pub(super) fn inputs(study: &Study, out: &Path) -> anyhow::Result<Inputs> {
    // the drivers stay in scratch files, read a run of cells at a time
    let st = stack::load_spilled(study)?;
    let (k, mk) = (study.k(), &study.config.markov);
    let transition = markov::transition(&st.maps[&mk.from], &st.maps[&mk.to], k);
    let stage_demands = markov::stage_demands(study, &transition, st.valid_cells())?;
    // the demand tables show every stage; run.json's `demand` the final year's
    let demands = stage_demands.last().cloned().unwrap_or_default();
    // the stack is lent to the tables, not copied
    let demand_result = super::super::demand::DemandResult {
        study: study.clone(),
        stack: st,
        transition,
        scenarios: demands,
        stages: stage_demands.clone(),
    };
    super::super::demand::write_tables(&demand_result, out)?;
    Ok(Inputs {
        st: demand_result.stack,
        stage_demands,
    })
}

/// PLUS mode: the LEAS forests of the Markov period, trained once for the validation and
/// the scenarios, their trees over the workers (the workers get their development
/// probability with the tiles, as a given suitability). None in ANN mode.
pub(super) fn forests(
    study: &Study,
    st: &stack::Stack,
    trainers: &Trainers,
) -> anyhow::Result<Option<model::Suitability>> {
    if study.config.suitability.model != flus_shared::config::SuitabilityModel::RandomForest {
        return Ok(None);
    }
    let mk = &study.config.markov;
    tracing::info!(
        "LEAS random forests of the {} -> {} period (validation and scenarios)",
        mk.from,
        mk.to
    );
    let _bar = crate::output::stage("LEAS forests on the workers");
    let f = model::forest_suitability_with(study, st, &|s, set, seed, key| {
        trainers.fit_forest(s, set, seed, key)
    })?;
    Ok(Some(f))
}

/// What every stage of a run reads: the study, its layers, the output folder, the
/// workers and what was trained for both the validation and the scenarios.
pub(super) struct Ctx<'a> {
    /// The study.
    pub(super) study: &'a Study,
    /// Its layers.
    pub(super) st: &'a stack::Stack,
    /// The output folder.
    pub(super) out: &'a Path,
    /// The CA over the workers.
    pub(super) cluster: &'a ClusterCa<'a>,
    /// The training jobs on the workers.
    pub(super) trainers: &'a Trainers,
    /// PLUS mode: the LEAS forests.
    pub(super) forest: Option<&'a model::Suitability>,
    /// Class names.
    pub(super) names: &'a [String],
    /// Opened once the validation's training sample is drawn (or it draws none).
    pub(super) gate: &'a Gate,
}

/// A gate that one thread opens and others wait for; it stays open.
#[derive(Default)]
pub(super) struct Gate {
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Gate {
    /// Opens the gate: every waiter goes on, and every later one at once.
    pub(super) fn open(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.opened.notify_all();
    }

    /// Waits until the gate is open.
    pub(super) fn wait(&self) {
        let g = self.open.lock().unwrap_or_else(|e| e.into_inner());
        drop(
            self.opened
                .wait_while(g, |open| !*open)
                .unwrap_or_else(|e| e.into_inner()),
        );
    }
}

/// Opens its gate when dropped (whichever way the holder ends).
pub(super) struct Opener<'a>(pub(super) &'a Gate);

impl Drop for Opener<'_> {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// The suitability of the scenarios: an ANN trained on a worker, a given raster, or the
/// LEAS forests trained before the validation (PLUS mode).
pub(super) enum ScenarioSuitability {
    /// A network trained on a worker.
    Trained(flus_shared::ann::TrainedAnn),
    /// `[ann] suitability`, read here.
    Given(model::Suitability),
    /// The LEAS forests.
    Forest,
}

/// The scenarios' suitability (the network's sample drawn on this thread, its fit on a
/// worker, beside the validation) and its seconds.
pub(super) fn scenario_suitability(ctx: &Ctx<'_>) -> anyhow::Result<(ScenarioSuitability, f64)> {
    // test builds: a fault test can hold the training while the validation runs on the
    // workers, and disturb the workers meanwhile
    flus_shared::hooks::hold(|| "scenarios-ann-training".into());
    let (study, st) = (ctx.study, ctx.st);
    let to = study.config.markov.to;
    let t0 = Instant::now();
    let s = if ctx.forest.is_some() {
        ScenarioSuitability::Forest
    } else if study.config.ann.suitability.is_some() {
        tracing::info!("stage 4/5: the given suitability of the {to} map");
        ScenarioSuitability::Given(model::suitability(study, st, to)?)
    } else {
        tracing::info!("stage 4/5: ANN suitability from the {to} map, on a worker");
        // the validation's sample first: its network fits on a worker while this one's
        // sample is drawn, rather than both samples at once with the workers idle
        ctx.gate.wait();
        ScenarioSuitability::Trained(train_on_workers(
            ctx.trainers,
            study,
            st,
            (to, "scenarios"),
            &|| {},
        )?)
    };
    Ok((s, t0.elapsed().as_secs_f64()))
}

/// Records the scenarios' suitability in `report` (the network's training report and
/// bits, the forests' driver contributions, or the given raster) and says where the
/// scenarios' session takes it from.
pub(super) fn record_suitability<'s>(
    ctx: &Ctx<'s>,
    suit: &'s ScenarioSuitability,
    report: &mut RunJson,
) -> anyhow::Result<SuitabilitySource<'s>> {
    Ok(match suit {
        ScenarioSuitability::Trained(trained) => {
            let (network, r) = (&trained.network, &trained.report);
            tracing::info!(train = r.train_accuracy, holdout = ?r.holdout_accuracy, "ANN accuracy");
            report.ann = Some(AnnJson::Trained(trained.report.clone()));
            // the network's bits, to compare runs (the same for any worker and thread count)
            report.ann_network_sha256 = Some(files::sha256_hex(&serde_json::to_vec(network)?));
            SuitabilitySource::Network(network)
        }
        ScenarioSuitability::Forest => {
            let f = ctx.forest.context("the LEAS forests were not trained")?;
            if let Some(leas) = &f.leas {
                // driver_contributions.csv in the run folder (the report charts it)
                report.random_forest = Some(common::leas_outputs(ctx.out, leas)?);
            }
            SuitabilitySource::Given(&f.values)
        }
        ScenarioSuitability::Given(s) => {
            let study = ctx.study;
            report.ann = Some(AnnJson::Given {
                suitability_raster: study
                    .config
                    .ann
                    .suitability
                    .as_ref()
                    .map(|p| study.resolve(p)),
            });
            SuitabilitySource::Given(&s.values)
        }
    })
}

/// The scenarios' session, open, with what its tiles gave.
pub(super) struct ScenarioTiles<'s> {
    /// The session shared by every scenario's runs.
    pub(super) session: Session<'s>,
    /// Cells per (zone, class) of the base map, from the workers' tiles.
    pub(super) base_counts: tables::ZoneCounts,
    /// Cells per class of the base map.
    pub(super) base_class_counts: Vec<u64>,
    /// The largest suitability per class over the free cells.
    pub(super) max_suitability: Vec<f32>,
    /// Where the suitability raster goes ([`suitability_raster`]).
    pub(super) suitability: PathBuf,
}

/// Opens one session for every scenario (the tiles of the base map and this suitability
/// are loaded once; each scenario only resets the class windows) and takes the base
/// map's counts and the suitability maxima from it: the scenarios can start. The
/// suitability raster is written beside them ([`suitability_raster`]).
pub(super) fn open_scenarios<'s>(
    ctx: &Ctx<'s>,
    source: SuitabilitySource<'s>,
) -> anyhow::Result<ScenarioTiles<'s>> {
    let (study, st) = (ctx.study, ctx.st);
    let k = study.k();
    let to = study.config.markov.to;
    let base = &st.maps[&to];
    let radius = (0..study.config.scenarios.len())
        .map(|i| model::ca_params(study, i).radius())
        .max()
        .unwrap_or(0);
    let opened = ctx
        .cluster
        .open("scenarios", base, &st.restricted, (k, radius), source, st)?;
    let (session, padded_base) = (Session::new(opened.remote), opened.padded_start);
    let view = engine::MapView {
        padded: &padded_base,
        stride: opened.stride,
    };
    // the base map's counts per (zone, class), from the workers' tiles
    let base_counts = remote::RunLane::new(&session, "base").carbon_counts(&view)?;
    drop(padded_base);
    let base_class_counts = tables::class_totals(&base_counts, k);
    let max_suitability = match source {
        SuitabilitySource::Network(_) => session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .free_maxima()
            .context("the workers returned no suitability maxima")?,
        SuitabilitySource::Given(values) => free_maxima_here(values, st, k),
    };
    Ok(ScenarioTiles {
        session,
        base_counts,
        base_class_counts,
        max_suitability,
        suitability: ctx.out.join(format!("suitability_{to}.tif")),
    })
}

/// Writes the suitability raster the CA steps on to `path`, beside the scenarios' runs:
/// assembled from the workers' tiles of `session` (locked only while a strip's rows are
/// fetched), or the given one as it was read. Stops between strips once the run is
/// stopped ([`ClusterCa::stop`]).
pub(super) fn suitability_raster(
    ctx: &Ctx<'_>,
    session: &Session<'_>,
    source: SuitabilitySource<'_>,
    path: &Path,
) -> anyhow::Result<()> {
    let st = ctx.st;
    match source {
        SuitabilitySource::Network(_) => {
            let stopped = || ctx.cluster.stopped();
            remote::write_suitability(session, path, &st.grid, ctx.names, &stopped)?
        }
        SuitabilitySource::Given(values) => {
            flus_shared::ann::write_suitability(path, &st.grid, values, ctx.names)?
        }
    }
    outputs::finish_format(ctx.study, path)?;
    Ok(())
}

/// Writes the base map (`landuse_{base}.tif`) and its carbon storage rasters; returns the
/// carbon raster in t per cell and the report's images of both (read here, beside the
/// workers' work, once the validation's training sample is drawn).
pub(super) fn base_files(
    ctx: &Ctx<'_>,
    run_carbon: &RunCarbon,
) -> anyhow::Result<(PathBuf, Prerendered)> {
    let (study, st, out) = (ctx.study, ctx.st, ctx.out);
    // after the validation's sample, which the workers wait for: these files are
    // written while the workers work
    ctx.gate.wait();
    let to = study.config.markov.to;
    let base = &st.maps[&to];
    let landuse = base_map_path(out, to);
    outputs::write_landuse(&landuse, study, &st.grid, base)?;
    let carbon = run_carbon.write_base(study, out, &st.grid, base)?;
    let images = Prerendered::of_files(&[landuse], std::slice::from_ref(&carbon))?;
    Ok((carbon, images))
}

/// The base map's file in `out`.
pub(super) fn base_map_path(out: &Path, year: i32) -> PathBuf {
    out.join(format!("landuse_{year}.tif"))
}

/// The validation, done: its run.json entry, its session's traffic and its timing.
pub(super) struct Validated {
    /// run.json `validation`.
    pub(super) json: crate::run_json::validation::ValidationJson,
    /// run.json `sessions.validation`.
    pub(super) session: Option<crate::cluster::remote::SessionTraffic>,
    /// Its stage timing (beside the main line).
    pub(super) timing: StageTiming,
    /// The report's images of its maps.
    pub(super) images: Prerendered,
}

/// The validation on the past period (its own network, session, CA, metrics and files),
/// run beside the scenarios' stages.
pub(super) fn validation(ctx: &Ctx<'_>, members: u32) -> anyhow::Result<Validated> {
    let mark = Mark::now();
    // the scenarios' sample is drawn once the validation's is (or once it ends without)
    let _opener = Opener(ctx.gate);
    let mk = &ctx.study.config.markov;
    tracing::info!("stage 3/5: validation {} -> {}", mk.from, mk.to);
    let (json, session) = super::validation::validation_stage(
        ctx.study,
        ctx.st,
        ctx.out,
        (ctx.cluster, ctx.trainers),
        ctx.forest,
        members,
        &|| ctx.gate.open(),
    )?;
    let timing = mark.timing("validation", true);
    // the report's images of its maps, read here while the workers run the scenarios
    let maps: Vec<PathBuf> = json
        .maps
        .iter()
        .flat_map(|m| [&m.observed_change, &m.simulated_change, &m.components])
        .filter_map(|f| f.as_ref().map(|f| ctx.out.join(f)))
        .filter(|p| p.exists())
        .collect();
    let images = Prerendered::of_files(&maps, &[])?;
    Ok(Validated {
        json,
        session,
        timing,
        images,
    })
}

/// The paper's tables 7-9 from integer counts per (zone, class) of the base map
/// (`base_counts`) and of every scenario stage (`scenario_counts`).
pub(super) fn carbon_tables(
    ctx: &Ctx<'_>,
    base_counts: &tables::ZoneCounts,
    scenario_counts: &[(String, tables::ZoneCounts, tables::ZoneAreas)],
    areas: &flus_shared::area::CellAreas,
) -> anyhow::Result<tables::TablesJson> {
    let (study, st) = (ctx.study, ctx.st);
    let to = study.config.markov.to;
    let base = &st.maps[&to];
    let base_label = to.to_string();
    let base_areas =
        tables::zone_areas(base_counts, base, st.zones.as_deref(), st.grid.width, areas);
    let mut maps = vec![tables::MapCounts {
        label: &base_label,
        counts: base_counts,
        areas: &base_areas,
    }];
    maps.extend(scenario_counts.iter().map(|(l, c, a)| tables::MapCounts {
        label: l,
        counts: c,
        areas: a,
    }));
    let _bar = crate::output::stage("carbon tables");
    Ok(tables::write(study, &maps, &st.zone_names, ctx.out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_lets_waiters_go_once_opened_even_by_a_thread_that_failed() {
        let gate = Gate::default();
        let r: anyhow::Result<()> = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                gate.wait();
                "went on"
            });
            // the opening thread fails before it opens the gate itself: the opener does
            let failed = s.spawn(|| -> anyhow::Result<()> {
                let _opener = Opener(&gate);
                anyhow::bail!("validation: no map of 2010")
            });
            assert!(failed.join().unwrap().is_err());
            assert_eq!(waiter.join().unwrap(), "went on");
            Ok(())
        });
        r.unwrap();
        // and it stays open
        gate.wait();
    }
}
