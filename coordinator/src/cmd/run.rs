//! `flus run STUDY.toml`: the whole pipeline over the cluster — inputs checked, Markov
//! demand, ANN, validation on the past period, every scenario to the target year,
//! outputs. Without a workers flag it starts one local worker per core on loopback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use flus_shared::config::Study;
use flus_shared::files;
use serde_json::json;

use crate::cluster::pool;
use crate::cluster::train_remote::Trainers;
use crate::report::Prerendered;
use crate::run_files::RunCarbon;
use crate::run_guard;
use crate::run_json::{EnsembleJson, LegendJson, MapJson, RunJson, StageTiming, Versions};
use background::{Background, Queue};
use checkpoints::tidy_checkpoints;
use cluster_ca::{
    free_maxima_here, train_on_workers, ClusterCa, Session, SuitabilitySource,
    DEFAULT_CONCURRENT_RUNS,
};
use pipeline::{Ctx, Inputs, Timings};
use setup::{memory_report, shared_files, tile_count, Workers};

mod background;
mod checkpoints;
mod cluster_ca;
mod concurrent;
mod drivers;
mod ensemble;
mod pipeline;
mod setup;
mod stages;
mod validation;

/// Arguments of `flus run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The study config (TOML).
    pub study: PathBuf,
    /// Output folder (default: the study's output folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start this many local workers on loopback (default: one per core).
    #[arg(long, conflicts_with = "workers")]
    pub local_workers: Option<usize>,
    /// Threads of each local worker (default: the cores divided among the local workers).
    #[arg(long, conflicts_with = "workers")]
    pub worker_threads: Option<usize>,
    /// Use running workers: comma-separated host:port list.
    #[arg(long, value_delimiter = ',')]
    pub workers: Vec<String>,
    /// Cluster token file for --workers (else FLUS_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Seed (overrides the study's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Tiles per worker (over-decomposition).
    #[arg(long, default_value_t = 4)]
    pub tiles_per_worker: usize,
    /// Largest tile, in cells: a large grid gets more tiles (a multiple of workers x
    /// tiles per worker), so that a worker loading a tile holds its drivers for a small
    /// part of the grid only.
    #[arg(long, default_value_t = 4_000_000)]
    pub max_tile_cells: usize,
    /// Deadline of every worker call, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub deadline: f64,
    /// Store a checkpoint every this many iterations.
    #[arg(long, default_value_t = 5)]
    pub checkpoint_every: u32,
    /// Continue a killed run from its checkpoints in the output folder.
    #[arg(long)]
    pub resume: bool,
    /// Seed ensemble: run every scenario (and the validation) N times, member m with a
    /// seed derived from the study seed and m (member 1 is the study seed's run), and
    /// write per scenario and year the change and class frequency rasters,
    /// carbon_ensemble.csv and the validation metrics' mean, min and max (1 to 255).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=255))]
    pub ensemble: Option<u32>,
    /// CA runs of one session at once (scenarios, their ensemble members, validation
    /// members), each in its own lane of the workers' tiles: about one more byte per
    /// cell (plus the halo) on the workers and a few on the coordinator per extra run.
    /// Default: every scenario and member, at most 8. The maps are the same bits for
    /// any value (1: one run after another).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrent_runs: Option<u32>,
    /// Seconds between health checks of a lost worker's address; a worker that answers
    /// again is re-admitted at the next iteration and takes its tiles back (0: never).
    #[arg(long, default_value_t = 2.0)]
    pub rejoin_probe: f64,
    /// Skip the validation run on the past period.
    #[arg(long)]
    pub no_validation: bool,
    /// Run the GWR driver analysis's local fits in this process instead of on the
    /// workers (the results are the same bits).
    #[arg(long)]
    pub gwr_local: bool,
    /// Only these scenarios (repeatable; default: all).
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Workers read the static layers (drivers, restrictions, zones) of their tiles
    /// themselves from the study's rasters, which must lie under their data root (a
    /// shared filesystem) and on the land-use grid; only class windows are streamed.
    #[arg(long)]
    pub shared_data: bool,
    /// The workers' data root for --shared-data (default: the study file's folder);
    /// local workers are started with it.
    #[arg(long, requires = "shared_data")]
    pub data_root: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// TLS towards --workers.
    #[command(flatten)]
    pub tls: pool::TlsArgs,
}

/// Runs `flus run`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let study_bytes = std::fs::read(&args.study)
        .with_context(|| format!("reading the study file {}", args.study.display()))?;
    run_guard::check_args(args.deadline, args.max_tile_cells, args.tiles_per_worker)?;
    let mut study = Study::load(&args.study)?;
    if let Some(s) = args.seed {
        study.config.study.seed = s;
    }
    let out = args.out.clone().unwrap_or_else(|| study.output_dir());
    files::check_outputs(run_guard::planned_outputs(&study, &out, &args.scenarios))?;
    files::ensure_dir(&out)?;
    // The run folder says whether it is complete: `run.json` holds `"completed": false`
    // from the start (a killed run leaves it so), an error replaces it with the message,
    // and only a run that reaches the end writes `"completed": true`.
    let marker = |status: &str, error: Option<String>| {
        run_guard::write_marker(&out, &args.study, status, error)
    };
    marker("running", None)?;
    run_guard::on_interrupt(out.clone(), args.study.clone())?;
    let config_sha256 = files::sha256_hex(&study_bytes);
    let result = run_in(args, study, &out, started, &config_sha256);
    if let Err(e) = &result {
        if let Err(w) = marker("failed", Some(format!("{e:#}"))) {
            tracing::error!("cannot record the failure in run.json: {w}");
        }
    }
    result
}

/// The body of `flus run` once the output folder exists: the inputs, the workers, then
/// the study on them ([`study_on_workers`]) and the run's end ([`finish`]).
fn run_in(
    args: &Args,
    study: Study,
    out: &Path,
    started: Instant,
    config_sha256: &str,
) -> anyhow::Result<()> {
    let mut timings = Timings::new();
    let (data_root, inputs, local) = inputs_beside_local_workers(args, &study, out)?;
    let Inputs {
        mut st,
        stage_demands,
    } = inputs;
    timings.lap("inputs_and_demand");
    let bar = crate::output::stage("workers");
    let (workers, layer_files) = connect(args, (&study, &st), data_root.as_deref(), local)?;
    let identity = (config_sha256, study.config.study.seed);
    let cluster = cluster_ca(args, &workers, out, st.grid.cells(), layer_files, identity);
    timings.lap("workers");
    drop(bar);
    let (trainers, forest) = forests(&study, &st, &workers, &mut timings)?;
    // only the maps still needed: the base map, and the start map of the validation
    let mk = &study.config.markov;
    st.maps
        .retain(|&y, _| y == mk.to || (y == mk.from && !args.no_validation));
    let names = study.class_names();
    let gate = pipeline::Gate::default();
    if args.no_validation {
        gate.open();
    }
    let ctx = Ctx {
        study: &study,
        st: &st,
        out,
        cluster: &cluster,
        trainers: &trainers,
        forest: forest.as_ref(),
        names: &names,
        gate: &gate,
    };
    let mut report = report_head(&ctx, &workers.addrs, config_sha256);
    let images = study_on_workers(
        args,
        &ctx,
        &workers,
        &stage_demands,
        &mut timings,
        &mut report,
    )?;
    tidy_checkpoints(out);
    let report = finish(args, &ctx, &workers, report, timings, started)?;
    // (the context's borrows of them end here)
    drop((cluster, trainers));
    // the local workers stop and the drivers' scratch files go (a fifth of a second on
    // 100 MB-class layers) while the report is built
    std::thread::scope(|scope| {
        scope.spawn(move || drop((workers, st)));
        report_and_print(args, out, report, images, started)
    })
}

/// Stage 1 of [`run_in`]: the workers' data root (with `--shared-data`), and the
/// inputs and demand of `study` read into `out` while the local workers start and are
/// connected to (none without local workers; an error of the inputs is the one
/// reported).
fn inputs_beside_local_workers(
    args: &Args,
    study: &Study,
    out: &Path,
) -> anyhow::Result<(Option<PathBuf>, Inputs, Option<anyhow::Result<Workers>>)> {
    tracing::info!(study = %args.study.display(), "stage 1/5: inputs");
    let _bar = crate::output::stage("inputs and demand");
    let data_root = args.shared_data.then(|| {
        args.data_root
            .clone()
            .unwrap_or_else(|| study.base_dir.clone())
    });
    // local workers start while the inputs are read; workers named by --workers are
    // connected to after them
    let spawned = Workers::spawn_local(args, data_root.as_deref());
    let (inputs, local) = std::thread::scope(|scope| {
        let local = match spawned {
            Ok(Some(s)) => Some(Ok(scope.spawn(|| Workers::connect(args, Some(s))))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        };
        let inputs = pipeline::inputs(study, out);
        let local = local.map(|h| {
            h?.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("starting the local workers panicked")))
        });
        (inputs, local)
    });
    Ok((data_root, inputs?, local))
}

/// Stage 2 of [`run_in`]: the layer files of `(study, st)` the workers read under
/// `data_root` (with `--shared-data`), and the workers: the `local` ones started in
/// stage 1, else those of `--workers`.
fn connect(
    args: &Args,
    (study, st): (&Study, &flus_shared::stack::Stack),
    data_root: Option<&Path>,
    local: Option<anyhow::Result<Workers>>,
) -> anyhow::Result<(Workers, Option<Vec<crate::cluster::wire::LayerFile>>)> {
    let layer_files = match data_root {
        Some(root) => Some(shared_files(study, st, root)?),
        None => None,
    };
    let workers = match local {
        Some(w) => w?,
        None => Workers::connect(args, None)?,
    };
    tracing::info!(
        workers = workers.conns.len(),
        threads = workers.conns.iter().map(|c| c.threads).sum::<u32>(),
        "stage 2/5: workers connected"
    );
    Ok((workers, layer_files))
}

/// The training jobs on `workers`, and the LEAS forests of `study` trained on them (PLUS
/// mode; the stage `leas_forests` in `timings`).
fn forests(
    study: &Study,
    st: &flus_shared::stack::Stack,
    workers: &Workers,
    timings: &mut Timings,
) -> anyhow::Result<(Trainers, Option<flus_shared::model::Suitability>)> {
    let trainers = Trainers::new(
        workers.rt.handle().clone(),
        &workers.conns,
        workers.deadline,
    );
    let forest = pipeline::forests(study, st, &trainers)?;
    if forest.is_some() {
        timings.lap("leas_forests");
    }
    Ok((trainers, forest))
}

/// The CA over `workers` with the run's tiling, checkpoints and lanes; `identity`: the
/// study file's SHA-256 and the seed, whom its checkpoints are of.
fn cluster_ca<'a>(
    args: &Args,
    workers: &'a Workers,
    out: &'a Path,
    cells: usize,
    files: Option<Vec<crate::cluster::wire::LayerFile>>,
    (study_sha256, seed): (&'a str, u64),
) -> ClusterCa<'a> {
    ClusterCa {
        rt: &workers.rt,
        conns: &workers.conns,
        out,
        tiles: tile_count(
            workers.conns.len() * args.tiles_per_worker.max(1),
            cells,
            args.max_tile_cells,
        ),
        deadline: workers.deadline,
        every: args.checkpoint_every,
        resume: args.resume,
        rejoin_probe: Duration::try_from_secs_f64(args.rejoin_probe).ok(),
        files,
        study_sha256,
        seed,
        concurrent: args
            .concurrent_runs
            .map_or(DEFAULT_CONCURRENT_RUNS, |n| n as usize),
        stop: Default::default(),
    }
}

/// run.json's head: what the study is, before anything ran.
fn report_head(ctx: &Ctx<'_>, addrs: &[String], config_sha256: &str) -> RunJson {
    let (study, mk) = (ctx.study, &ctx.study.config.markov);
    RunJson {
        study: study.config.study.name.clone(),
        seed: study.config.study.seed,
        workers: addrs.to_vec(),
        classes: ctx.names.to_vec(),
        valid_cells: ctx.st.valid_cells(),
        config_sha256: config_sha256.to_string(),
        base_year: mk.to,
        target_year: mk.final_year(),
        target_years: mk.years(),
        legend: study
            .config
            .classes
            .iter()
            .map(|c| LegendJson {
                code: c.code,
                name: c.name.clone(),
                color: c.color.clone(),
            })
            .collect(),
        ..RunJson::default()
    }
}

/// The study on the workers. The validation (its own network, session, CA, metrics and
/// files) and the base map's files run on threads of their own beside the main line:
/// the scenarios' network, their session, the scenarios with their suitability raster
/// written beside them ([`scenarios_and_after`]). A failure of either thread stops the run with its error.
/// Returns the report's images read meanwhile.
fn study_on_workers(
    args: &Args,
    ctx: &Ctx<'_>,
    workers: &Workers,
    stage_demands: &[Vec<flus_shared::markov::ScenarioDemand>],
    timings: &mut Timings,
    report: &mut RunJson,
) -> anyhow::Result<Prerendered> {
    let study = ctx.study;
    for name in &args.scenarios {
        anyhow::ensure!(
            study.config.scenarios.iter().any(|s| &s.name == name),
            "{}: no scenario {name:?}",
            args.study.display()
        );
    }
    let base_label = study.config.markov.to.to_string();
    let areas = ctx.st.cell_areas()?;
    let run_carbon = RunCarbon::new(study, &base_label, areas.clone())?;
    let members = args.ensemble.unwrap_or(1);
    std::thread::scope(|scope| {
        let validation_at = timings.position();
        let mut validation = (!args.no_validation).then(|| {
            Background::spawn(scope, "the validation", || {
                let v = pipeline::validation(ctx, members);
                if let Err(e) = &v {
                    stop_others(ctx, "the validation", e);
                }
                v
            })
        });
        let mut base = Background::spawn(scope, "the base map's files", || {
            pipeline::base_files(ctx, &run_carbon)
        });
        let mut poll = |base: &mut Background<'_, (PathBuf, Prerendered)>| -> anyhow::Result<()> {
            base.poll()?;
            validation.as_mut().map_or(Ok(()), |v| v.poll())
        };
        let mut main_line = || -> anyhow::Result<Prerendered> {
            let bar = crate::output::stage("the scenarios' suitability");
            let (suit, seconds) = pipeline::scenario_suitability(ctx)?;
            let source = pipeline::record_suitability(ctx, &suit, report)?;
            // the training's own time (beside the validation)
            report.ann_seconds = seconds;
            timings.lap("ann");
            drop(bar);
            poll(&mut base)?;
            let bar = crate::output::stage("scenario tiles and suitability raster");
            let tiles = pipeline::open_scenarios(ctx, source)?;
            report.suitability = tiles.suitability.clone();
            timings.lap("scenario_tiles");
            drop(bar);
            poll(&mut base)?;
            let after = After {
                args,
                workers,
                areas: &areas,
                run_carbon: &run_carbon,
                stage_demands,
                source,
            };
            let images = scenarios_and_after(ctx, &after, tiles, timings, report)?;
            Ok(images)
        };
        let mut images = match main_line() {
            Ok(images) => images,
            Err(e) => {
                stop_others(ctx, "the scenarios", &e);
                // the validation's own failure is the one to report when the main line
                // was only stopped because of it
                return Err(match validation {
                    Some(v) => cluster_ca::cause(e, v.wait()),
                    None => e,
                });
            }
        };
        if let Some(v) = validation {
            let v = v.wait()?;
            report.validation = Some(v.json);
            report.sessions.insert("validation".into(), v.session);
            timings.insert(validation_at, v.timing);
            images.merge(v.images);
        }
        let (base_carbon, base_images) = base.wait()?;
        report.base_carbon = base_carbon;
        images.merge(base_images);
        // where every network and forest was trained, and how long it took
        report.training = ctx.trainers.log();
        anyhow::Ok(images)
    })
}

/// `part` of the run failed with `e`: every CA run stops at its next iteration and no
/// session opens, so the run ends with that error soon instead of after the other
/// parts have run to their end.
fn stop_others(ctx: &Ctx<'_>, part: &str, e: &anyhow::Error) {
    if !cluster_ca::is_stopped(e) {
        tracing::warn!("{part} failed; stopping the rest of the run: {e:#}");
    }
    ctx.cluster.stop();
}

/// What the scenarios and the stages after them read besides the [`Ctx`].
struct After<'a> {
    args: &'a Args,
    workers: &'a Workers,
    areas: &'a flus_shared::area::CellAreas,
    run_carbon: &'a RunCarbon,
    stage_demands: &'a [Vec<flus_shared::markov::ScenarioDemand>],
    source: SuitabilitySource<'a>,
}

/// The scenarios in their session (their files written on a writer thread while the
/// workers run on, the suitability raster assembled from the session's tiles on another,
/// ended before the tiles are dropped), then the carbon tables and the GWR driver analysis on the workers
/// while the last files are written and the report's images of the scenarios' maps
/// read (returned).
fn scenarios_and_after(
    ctx: &Ctx<'_>,
    after: &After<'_>,
    tiles: pipeline::ScenarioTiles<'_>,
    timings: &mut Timings,
    report: &mut RunJson,
) -> anyhow::Result<Prerendered> {
    let (study, st, args) = (ctx.study, ctx.st, after.args);
    let pipeline::ScenarioTiles {
        session,
        base_counts,
        base_class_counts,
        max_suitability,
        suitability,
    } = tiles;
    // the GWR sample (valid cells only, from the seed): each scenario's carbon change is
    // taken there as soon as its map is done, and the map is dropped
    let gwr_cells = (!st.drivers.is_empty()).then(|| {
        flus_shared::analysis::sample_cells(
            &st.mask,
            study.config.gwr.sample_points,
            study.config.study.seed,
        )
    });
    let to = study.config.markov.to;
    let shared = stages::Shared {
        study,
        st,
        out: ctx.out,
        base: &st.maps[&to],
        base_counts: &base_class_counts,
        max_suitability: &max_suitability,
        run_carbon: after.run_carbon,
        areas: after.areas,
        names: ctx.names,
        demands: after.stage_demands,
        gwr_cells: gwr_cells.as_deref(),
        base_zone_counts: &base_counts,
        members: args.ensemble.unwrap_or(1),
    };
    let session = &session;
    std::thread::scope(|files| {
        // the suitability raster, assembled from the session's tiles while its runs go on
        let raster_at = timings.position();
        let raster = Background::spawn(files, "the suitability raster", || {
            let mark = pipeline::Mark::now();
            let r = pipeline::suitability_raster(ctx, session, after.source, &suitability);
            if let Err(e) = &r {
                stop_others(ctx, "the suitability raster", e);
            }
            r.map(|()| mark.timing("suitability_raster", true))
        });
        // the stages' results wait here rather than in the CA's lanes: as many as run at
        // once, so that taking a stage never waits for the files of the one before
        let waiting = ctx.cluster.concurrent.max(1);
        let mut queue = Queue::new(files, "the scenarios' file writer", waiting);
        let mut lap = |name: &str| timings.lap(name);
        let done = stages::run_all(
            ctx.cluster,
            session,
            &shared,
            &args.scenarios,
            &mut lap,
            &mut queue,
        );
        // the raster is complete before the session's tiles are dropped
        let (done, raster) = with_raster(ctx, done, raster)?;
        timings.insert(raster_at, raster);
        let carbon_at = record_scenarios(ctx, args, done, report)?;
        // once the last stage's files are written: the report's images of the scenarios'
        // maps, read while the workers run the GWR (the base map's at the end)
        let scenario_maps = report.maps[1..].to_vec();
        let mut images = Background::spawn(files, "the scenarios' files", move || {
            queue.finish()?;
            Prerendered::read(ctx.out, &scenario_maps)
        });
        release(session, report);
        report.tables = pipeline::carbon_tables(ctx, &base_counts, &carbon_at.1, after.areas)?;
        timings.lap("carbon_tables");
        images.poll()?;
        if let Some(cells) = gwr_cells.clone() {
            report.gwr = Some(gwr(ctx, after, cells, &carbon_at.0)?);
            timings.lap("gwr");
        } else {
            tracing::info!("no drivers: no GWR driver analysis");
        }
        let images = images.wait()?;
        timings.lap("scenario_files");
        anyhow::Ok(images)
    })
}

/// The scenarios' result `done` once the suitability raster written beside them has
/// ended, with the raster's timing. When the scenarios failed the raster stops at its
/// next strip, and its own failure is the one reported when the scenarios were only
/// stopped because of it.
fn with_raster<T>(
    ctx: &Ctx<'_>,
    done: anyhow::Result<T>,
    raster: Background<'_, StageTiming>,
) -> anyhow::Result<(T, StageTiming)> {
    match done {
        Ok(done) => Ok((done, raster.wait()?)),
        Err(e) => {
            ctx.cluster.stop();
            Err(cluster_ca::cause(e, raster.wait()))
        }
    }
}

/// Drops the scenarios' session's tiles from the workers and records what the session
/// cost in `report` (`sessions.scenarios`).
fn release(session: &Session<'_>, report: &mut RunJson) {
    let mut session = session.lock().unwrap_or_else(|e| e.into_inner());
    session.release();
    report
        .sessions
        .insert("scenarios".into(), Some(session.session.clone()));
}

/// The counts of every scenario stage, for the carbon tables; and each scenario's carbon
/// change at the GWR cells.
type ScenarioCounts = (
    Vec<(String, Vec<f64>)>,
    Vec<(
        String,
        flus_shared::tables::ZoneCounts,
        flus_shared::tables::ZoneAreas,
    )>,
);

/// Records the scenarios' outputs in `report` (maps, stages, ensemble, CA seconds) and
/// writes `carbon_ensemble.csv` and `unmet_demand.csv`; returns what the tables and the
/// GWR take from them.
fn record_scenarios(
    ctx: &Ctx<'_>,
    args: &Args,
    done: stages::Outputs,
    report: &mut RunJson,
) -> anyhow::Result<ScenarioCounts> {
    let (study, out) = (ctx.study, ctx.out);
    let to = study.config.markov.to;
    let base_label = to.to_string();
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string());
    let base_map = pipeline::base_map_path(out, to);
    // every map of the run with its files (names in the folder), base first
    report.maps = vec![MapJson {
        label: base_label.clone(),
        scenario: None,
        year: to,
        landuse: file_name(&base_map).unwrap_or_default(),
        carbon: Some(crate::run_files::storage_name(&base_label)),
        carbon_change: None,
    }];
    report.base_map = base_map;
    report.scenario_ca_seconds = done.ca_seconds;
    report.scenario_ca_wall_seconds = done.ca_wall_seconds;
    report.concurrent_runs = ctx.cluster.concurrent as u32;
    report.maps.extend(done.maps);
    if let Some(n) = args.ensemble.filter(|&n| n > 1) {
        let csv = out.join("carbon_ensemble.csv");
        flus_shared::ensemble::write_carbon(&csv, &done.ensemble_carbon)?;
        let seed = study.config.study.seed;
        report.ensemble = Some(EnsembleJson {
            members: n,
            seeds: (0..n)
                .map(|m| flus_shared::ensemble::member_seed(seed, m))
                .collect(),
            carbon: done.ensemble_carbon,
            carbon_csv: file_name(&csv),
            maps: done.ensemble_maps,
            // filled in once the validation is done
            validation: None,
        });
    }
    if !done.unmet.is_empty() {
        flus_shared::tables::write_unmet(out, &done.unmet)?;
    }
    report.scenarios = done.scenarios;
    Ok((done.carbon_at, done.counts))
}

/// The GWR driver analysis of the base year's suitability and the scenarios' carbon
/// change `carbon_at` at `cells`, its local fits on the workers unless `--gwr-local`.
fn gwr(
    ctx: &Ctx<'_>,
    after: &After<'_>,
    cells: Vec<usize>,
    carbon_at: &[(String, Vec<f64>)],
) -> anyhow::Result<crate::run_json::gwr::GwrJson> {
    let study = ctx.study;
    tracing::info!(
        points = study.config.gwr.sample_points,
        "GWR driver analysis of the {} suitability and the scenarios' carbon change",
        study.config.markov.to
    );
    let _bar = crate::output::stage("GWR driver analysis");
    let w = after.workers;
    drivers::driver_analysis(
        study,
        ctx.st,
        after.source,
        cells,
        carbon_at,
        ctx.out,
        (!after.args.gwr_local).then_some((&w.rt, w.conns.as_slice())),
        w.deadline,
    )
}

/// The run's end: memory, timings, versions, the file manifest; run.json with
/// `"completed": true` written last of the run's data. Returns what it wrote.
fn finish(
    args: &Args,
    ctx: &Ctx<'_>,
    workers: &Workers,
    mut report: RunJson,
    timings: Timings,
    started: Instant,
) -> anyhow::Result<RunJson> {
    if let (Some(e), Some(v)) = (report.ensemble.as_mut(), report.validation.as_ref()) {
        e.validation = v.ensemble.clone();
    }
    report.shared_data = args.shared_data;
    report.memory = memory_report(&workers.rt, &workers.conns, ctx.st.grid.cells() as u64);
    report.wall_seconds = started.elapsed().as_secs_f64();
    // the wall time during which some worker call was in flight; the rest is the
    // coordinator's alone (the serial part of the study)
    report.worker_busy_seconds = crate::cluster::busy::seconds();
    report.timings = timings.into_list();
    report.version = env!("CARGO_PKG_VERSION").to_string();
    report.versions = Versions {
        flus: env!("CARGO_PKG_VERSION").to_string(),
        gdal: flus_shared::raster::gdal_version(),
    };
    let out = ctx.out;
    report.outputs = crate::run_files::manifest(out)?;
    report.warnings = flus_shared::notices::all();
    report.completed = true;
    files::write_atomic(
        &out.join("run.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    Ok(report)
}

/// The HTML report of the run in `out` (whose run.json is `report`), then the run's
/// JSON object (`--json`) or its last line.
fn report_and_print(
    args: &Args,
    out: &Path,
    report: RunJson,
    images: Prerendered,
    started: Instant,
) -> anyhow::Result<()> {
    let bar = crate::output::stage("report");
    let built = crate::report::build_with(out, images)?;
    drop(bar);
    tracing::info!(report = %built.report.display(), "report written");
    if args.json {
        let mut printed = serde_json::to_value(&report)?;
        printed["report"] = json!(built.report);
        crate::output::print_json(&printed)?;
    } else {
        println!(
            "run complete in {:.1} s; outputs in {}",
            started.elapsed().as_secs_f64(),
            out.display()
        );
    }
    Ok(())
}
