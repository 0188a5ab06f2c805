//! `flus run STUDY.toml`: the whole pipeline over the cluster — inputs checked, Markov
//! demand, ANN, validation on the past period, every scenario to the target year,
//! outputs. Without a workers flag it starts one local worker per core on loopback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use flus_shared::ca::{self, engine, CaInput, Tiling};
use flus_shared::config::Study;
use flus_shared::{files, markov, model, outputs, stack, tables};
use serde_json::{json, Value};

use super::common;
use crate::cluster::train_remote::Trainers;
use crate::cluster::{local::LocalWorkers, pool, remote};
use crate::run_files::{self, RunCarbon};
use crate::run_guard;
use crate::run_json::{EnsembleJson, LegendJson, MapJson, RunJson, StageTiming, Versions};
use checkpoints::{
    checkpoint_path, clear_checkpoints, load_checkpoint, tidy_checkpoints, CheckpointWriter,
};

mod checkpoints;
mod concurrent;
mod drivers;
mod ensemble;
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

/// The study's static layers as files relative to the workers' data root `root`, with the
/// nodata each is read with (the rules of `flus_shared::stack::load`).
fn shared_files(
    study: &Study,
    st: &stack::Stack,
    root: &Path,
) -> anyhow::Result<Vec<flus_proto::v1::LayerFile>> {
    use flus_proto::v1::{LayerFile, LayerKind};
    use flus_shared::config::NodataSetting;
    if let Some(w) = st.warped.first() {
        anyhow::bail!(
            "--shared-data: {} is not on the land-use grid (it was warped); workers read layers as they are: align it first (`flus prepare`, or `flus make-study`)",
            w.display()
        );
    }
    let root = root
        .canonicalize()
        .with_context(|| format!("data root {}", root.display()))?;
    let rel = |p: &Path| -> anyhow::Result<String> {
        let path = study.resolve(p);
        // a URL (GDAL's /vsicurl/, /vsis3/, ...) goes to the workers as it is: each reads
        // its tiles' windows from it
        if flus_shared::raster::is_virtual(&path) {
            return path
                .to_str()
                .map(str::to_string)
                .with_context(|| format!("{}: not a UTF-8 path", path.display()));
        }
        let c = path
            .canonicalize()
            .with_context(|| format!("{}", path.display()))?;
        let r = c.strip_prefix(&root).map_err(|_| {
            anyhow::anyhow!(
                "--shared-data: {} is not under the workers' data root {}",
                c.display(),
                root.display()
            )
        })?;
        r.to_str()
            .map(|s| s.replace('\\', "/"))
            .with_context(|| format!("{}: not a UTF-8 path", r.display()))
    };
    let nodata = |p: &Path, setting: Option<&NodataSetting>| -> anyhow::Result<Option<f64>> {
        Ok(match setting {
            Some(NodataSetting::Value(v)) => Some(*v),
            Some(NodataSetting::Keyword(w)) if w == "none" => None,
            _ => flus_shared::raster::info(&study.resolve(p))?.nodata,
        })
    };
    let cfg = &study.config;
    let mut out = Vec::new();
    for d in &cfg.drivers {
        out.push(LayerFile {
            kind: LayerKind::Driver as i32,
            path: rel(&d.path)?,
            band: d.band as u32,
            nodata: nodata(&d.path, d.nodata.as_ref())?,
        });
    }
    for r in &cfg.restrictions {
        out.push(LayerFile {
            kind: LayerKind::Restricted as i32,
            path: rel(&r.path)?,
            band: r.band as u32,
            nodata: nodata(&r.path, r.nodata.as_ref())?,
        });
    }
    if let Some(z) = &cfg.zones {
        out.push(LayerFile {
            kind: LayerKind::Zones as i32,
            path: rel(&z.path)?,
            band: 1,
            nodata: nodata(&z.path, None)?,
        });
    }
    Ok(out)
}

/// Peak resident memory of the coordinator and of every worker, total and per grid cell.
fn memory_report(rt: &tokio::runtime::Runtime, conns: &[pool::WorkerConn], cells: u64) -> Value {
    let per = |b: u64| b as f64 / cells.max(1) as f64;
    let coord = flus_shared::memory::peak_rss_bytes().unwrap_or(0);
    let workers: Vec<Value> = conns
        .iter()
        .map(|c| {
            let mut client = c.client.clone();
            let r = rt.block_on(async move {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    client.stats(flus_proto::v1::StatsRequest {}),
                )
                .await
            });
            match r {
                Ok(Ok(s)) => {
                    let s = s.into_inner();
                    json!({
                        "addr": c.addr,
                        "peak_rss_bytes": s.peak_rss_bytes,
                        "peak_rss_bytes_per_cell": per(s.peak_rss_bytes),
                    })
                }
                _ => json!({ "addr": c.addr, "peak_rss_bytes": null }),
            }
        })
        .collect();
    // The sum of the processes' peaks: an upper bound of the machine's peak when the
    // workers are local (the peaks need not coincide); null when a worker did not answer.
    let total = workers
        .iter()
        .map(|w| w["peak_rss_bytes"].as_u64())
        .sum::<Option<u64>>()
        .map(|w| w + coord);
    json!({
        "grid_cells": cells,
        "coordinator_peak_rss_bytes": coord,
        "coordinator_peak_rss_bytes_per_cell": per(coord),
        "workers": workers,
        "all_processes_peak_rss_bytes": total,
        "all_processes_peak_rss_bytes_per_cell": total.map(per),
    })
}

/// Tiles of a run: `base` (workers x tiles per worker), or the smallest multiple of it
/// whose tiles hold at most `max_cells` cells each on average.
pub fn tile_count(base: usize, cells: usize, max_cells: usize) -> usize {
    let base = base.max(1);
    let need = cells.div_ceil(max_cells.max(1));
    base * need.div_ceil(base).max(1)
}

/// A near-square tiling with about `n` tiles.
pub fn tiling_for(n: usize, width: usize, height: usize) -> Tiling {
    let n = n.max(1);
    let mut rows = ((n as f64 * height as f64 / width as f64).sqrt().round() as usize).clamp(1, n);
    while !n.is_multiple_of(rows) && rows > 1 {
        rows -= 1;
    }
    Tiling {
        rows: rows.min(height),
        cols: (n / rows).clamp(1, width),
    }
}

fn token_for(args: &Args) -> anyhow::Result<String> {
    common::cluster_token(args.token_file.as_deref())
}

/// The CA over the workers: sessions (the tiles of one network, loaded once) and the
/// runs in them, with checkpoints every few iterations and resume from the last one.
struct ClusterCa<'a> {
    rt: &'a tokio::runtime::Runtime,
    conns: &'a [pool::WorkerConn],
    out: &'a Path,
    tiles: usize,
    deadline: Duration,
    every: u32,
    resume: bool,
    rejoin_probe: Option<Duration>,
    files: Option<Vec<flus_proto::v1::LayerFile>>,
    /// SHA-256 of the study file and the seed: with the label, whom a checkpoint is of.
    study_sha256: &'a str,
    seed: u64,
    /// CA runs of one session at once (`--concurrent-runs`).
    concurrent: usize,
}

/// CA runs of a session at once when `--concurrent-runs` is not given (fewer when the
/// session has fewer runs).
pub const DEFAULT_CONCURRENT_RUNS: usize = 8;

/// The ANN of the map of `year` trained on a worker (`job` names it): the sample drawn
/// here ([`model::training_set`]), the network fitted there with the bits of
/// [`model::train`].
fn train_on_workers(
    trainers: &Trainers,
    study: &Study,
    st: &stack::Stack,
    year: i32,
    job: &str,
) -> anyhow::Result<flus_shared::ann::TrainedAnn> {
    let t0 = Instant::now();
    let set = model::training_set(study, st, year)?;
    let prepare = t0.elapsed().as_secs_f64();
    tracing::info!(
        job,
        rows = set.train.cells.len() + set.holdout.cells.len(),
        bytes = set.row_bytes(),
        prepare_seconds = prepare,
        "ANN training set drawn; training on a worker"
    );
    let settings = model::ann_settings(study);
    trainers.train_ann(job, &set, &settings, study.config.study.seed, prepare)
}

/// The suitability of the scenarios: an ANN trained on a worker, a given raster, or the LEAS
/// forests trained before the validation (PLUS mode).
enum ScenarioSuitability {
    Trained(flus_shared::ann::TrainedAnn),
    Given(model::Suitability),
    Forest,
}

/// Where a session's suitability comes from.
#[derive(Clone, Copy)]
enum SuitabilitySource<'a> {
    /// The workers compute it from this network and their tiles' drivers.
    Network(&'a flus_shared::ann::Network),
    /// A given raster (`[ann] suitability`, `[ann] validation_suitability`), cell-major,
    /// sent to the workers with the tiles.
    Given(&'a [f32]),
}

/// The largest suitability per class over the cells a CA may change (valid, not
/// restricted) of a cell-major suitability held here.
fn free_maxima_here(values: &[f32], st: &stack::Stack, k: usize) -> Vec<f32> {
    let free: Vec<bool> = st
        .mask
        .iter()
        .zip(&st.restricted)
        .map(|(&v, &r)| v && !r)
        .collect();
    flus_shared::ann::max_suitability_per_class(values, &free, k)
}

/// A session shared by the runs that proceed in it at once (each on its own lane).
type Session<'s> = std::sync::Mutex<remote::Remote<'s>>;

/// An open session and its start map padded by the halo (kept until the session's
/// first-load work is done: base counts; then dropped).
struct OpenSession<'s> {
    remote: remote::Remote<'s>,
    padded_start: Vec<u8>,
    stride: usize,
}

impl ClusterCa<'_> {
    /// Opens the session `name` from the start map `start`: every tile (class window,
    /// static layers) is sent once and its suitability computed on its worker from the
    /// network, or sent with it when the suitability is given; the CA runs with
    /// neighbourhood radius up to `radius` and `k` classes.
    fn open<'s>(
        &self,
        name: &str,
        start: &'s [u8],
        restricted: &'s [bool],
        (k, radius): (usize, usize),
        suitability: SuitabilitySource<'s>,
        st: &'s stack::Stack,
    ) -> anyhow::Result<OpenSession<'s>> {
        let (width, height) = (st.grid.width, st.grid.height);
        let tiling = tiling_for(self.tiles, width, height);
        let rects = tiling.rects(width, height)?;
        let layers = remote::StaticLayers {
            start,
            restricted,
            drivers: &st.drivers,
            suitability: match suitability {
                SuitabilitySource::Given(v) => Some(v),
                SuitabilitySource::Network(_) => None,
            },
            zones: st.zones.as_deref(),
        };
        let mut backend = remote::Remote::new(
            self.rt.handle().clone(),
            self.conns.to_vec(),
            rects,
            height,
            k,
            radius,
            format!("{name}-{}", std::process::id()),
            self.deadline,
            layers,
        );
        backend.set_rejoin_probe(self.rejoin_probe);
        if let SuitabilitySource::Network(network) = suitability {
            backend.set_network(serde_json::to_vec(network)?);
            // workers that read their layers from files (the suitability is shipped)
            if let Some(f) = &self.files {
                backend.set_files(f.clone());
            }
        }
        let padded_start = ca::pad(start, width, height, radius)?;
        let mut session = OpenSession {
            remote: backend,
            padded_start,
            stride: width + 2 * radius,
        };
        session
            .remote
            .open()
            .with_context(|| format!("session {name}: loading the tiles"))?;
        tracing::info!(
            session = name,
            bytes = session.remote.session.first_load_bytes,
            secs = session.remote.session.load_seconds,
            "session open: tiles loaded and their suitability computed on the workers"
        );
        Ok(session)
    }

    /// One CA run `label` in `session` on a lane of its own (other runs of the session
    /// may run at once from other threads), from `input.classes` or from its checkpoint;
    /// returns its output, traffic and the workers' cell counts per (zone, class) of the
    /// final map.
    fn run(
        &self,
        session: &Session<'_>,
        label: &str,
        params: &ca::CaParams,
        input: &CaInput,
    ) -> anyhow::Result<(
        ca::CaOutput,
        remote::Traffic,
        flus_shared::tables::ZoneCounts,
    )> {
        session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .session
            .runs += 1;
        let mut lane = remote::RunLane::new(session, label);
        if input.quota.is_some() {
            // transition mode: the workers skip the cells off the run's start map (a
            // later stage starts from the previous stage's map, not the session's)
            lane.set_run_start(input.classes);
        }
        tracing::debug!(label, lane = lane.lane(), "run on its lane of the session");
        let backend = &mut lane;
        let cp_path = checkpoint_path(self.out, label);
        let identity = run_guard::identity(self.study_sha256, self.seed, label);
        let resume = if self.resume {
            run_guard::resume_from(&cp_path, &identity)?
        } else {
            None
        };
        if let Some(c) = &resume {
            tracing::info!(label, iteration = c.t, "resuming from checkpoint");
        }
        let every = self.every.max(1);
        let mut progress = common::progress_logger(label.to_string(), params.max_iterations);
        // built on this thread (a copy of the map), serialised and written on another
        // while the workers step the next iterations
        let mut writer = CheckpointWriter::new(cp_path.clone());
        let mut checkpoint = |t: u32, make: &dyn Fn() -> engine::Checkpoint| {
            if t.is_multiple_of(every) {
                let mut c = make();
                c.identity = Some(identity.clone());
                writer.submit(c)?;
            }
            Ok(())
        };
        let started = Instant::now();
        let res = engine::run_loop(
            params,
            input,
            backend,
            resume,
            &mut progress,
            &mut checkpoint,
        );
        // the last checkpoint is on disk before the result is reported or cleared
        let written = writer.finish();
        let out = match res.and_then(|o| written.map(|_| o)) {
            Ok(out) => out,
            Err(e) => {
                let kept = match load_checkpoint(&cp_path) {
                    Ok(Some(c)) => format!(
                        "{label} stopped; checkpoint {} (iteration {}) kept",
                        cp_path.display(),
                        c.t
                    ),
                    _ => format!("{label} stopped before its first checkpoint"),
                };
                return Err(anyhow::Error::new(e).context(kept));
            }
        };
        // carbon partial sums: cell counts per (zone, class) of the workers' final maps
        let r = params.radius();
        let padded = ca::pad(&out.map, input.width, input.height, r)?;
        let counts = backend.carbon_counts(&engine::MapView {
            padded: &padded,
            stride: input.width + 2 * r,
        })?;
        backend.traffic().seconds.total = started.elapsed().as_secs_f64();
        let traffic = backend.traffic().clone();
        clear_checkpoints(&cp_path);
        Ok((out, traffic, counts))
    }
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

/// The workers of a run and the runtime that talks to them: local ones started on
/// loopback (stopped when this is dropped) or those of `--workers`, connected.
struct Workers {
    /// Local worker processes, kept alive for the run.
    _local: Option<LocalWorkers>,
    /// Their addresses.
    addrs: Vec<String>,
    /// The runtime of the gRPC calls.
    rt: tokio::runtime::Runtime,
    /// One connection per worker.
    conns: Vec<pool::WorkerConn>,
    /// Deadline of every call.
    deadline: Duration,
}

impl Workers {
    /// Starts local workers (one per core unless `--local-workers`, sharing the cores
    /// or `--worker-threads` each) or takes `--workers`, and connects to every one.
    fn start(args: &Args, data_root: Option<&Path>) -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (_local, addrs, token) = if args.workers.is_empty() {
            let n = args.local_workers.unwrap_or(threads).max(1);
            let per = args.worker_threads.unwrap_or(threads / n).max(1);
            let lw = LocalWorkers::start(n, per, data_root)?;
            let (a, t) = (lw.addrs.clone(), lw.token.clone());
            (Some(lw), a, t)
        } else {
            (None, args.workers.clone(), token_for(args)?)
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let deadline = Duration::from_secs_f64(args.deadline);
        // local workers speak plaintext on loopback; TLS is for --workers
        let tls = if args.workers.is_empty() {
            pool::Tls::default()
        } else {
            args.tls.tls()
        };
        let conns: Vec<pool::WorkerConn> = rt.block_on(async {
            let mut v = Vec::new();
            for a in &addrs {
                v.push(pool::connect(a, &token, deadline, &tls).await?);
            }
            anyhow::Ok(v)
        })?;
        Ok(Self {
            _local,
            addrs,
            rt,
            conns,
            deadline,
        })
    }
}

/// The body of `flus run` once the output folder exists.
fn run_in(
    args: &Args,
    study: Study,
    out: &Path,
    started: Instant,
    config_sha256: &str,
) -> anyhow::Result<()> {
    let out = out.to_path_buf();
    // per stage: its wall seconds and the part of them some worker call was in flight
    let mut timings: Vec<(String, f64, f64)> = Vec::new();
    let mut lap = Instant::now();
    let mut busy_at = crate::cluster::busy::seconds();
    let mut stage = |name: &str, lap: &mut Instant| {
        let busy = crate::cluster::busy::seconds();
        timings.push((
            name.to_string(),
            lap.elapsed().as_secs_f64(),
            busy - busy_at,
        ));
        (*lap, busy_at) = (Instant::now(), busy);
    };

    // inputs and demand
    tracing::info!(study = %args.study.display(), "stage 1/5: inputs");
    let bar = crate::output::stage("inputs and demand");
    // the drivers stay in scratch files, read a run of cells at a time
    let st = stack::load_spilled(&study)?;
    let k = study.k();
    let mk = study.config.markov.clone();
    let names: Vec<String> = study.class_names();
    let transition = markov::transition(&st.maps[&mk.from], &st.maps[&mk.to], k);
    let stage_demands = markov::stage_demands(&study, &transition, st.valid_cells())?;
    // the demand tables show every stage; run.json's `demand` the final year's
    let demands = stage_demands.last().cloned().unwrap_or_default();
    // the stack is lent to the tables, not copied
    let demand_result = super::demand::DemandResult {
        study: study.clone(),
        stack: st,
        transition: transition.clone(),
        scenarios: demands,
        stages: stage_demands.clone(),
    };
    super::demand::write_tables(&demand_result, &out)?;
    let mut st = demand_result.stack;
    stage("inputs_and_demand", &mut lap);
    drop(bar);
    let bar = crate::output::stage("workers");

    // workers
    let data_root = args.shared_data.then(|| {
        args.data_root
            .clone()
            .unwrap_or_else(|| study.base_dir.clone())
    });
    let files = match &data_root {
        Some(root) => Some(shared_files(&study, &st, root)?),
        None => None,
    };
    let Workers {
        _local,
        addrs,
        rt,
        conns,
        deadline,
    } = Workers::start(args, data_root.as_deref())?;
    tracing::info!(
        workers = conns.len(),
        threads = conns.iter().map(|c| c.threads).sum::<u32>(),
        "stage 2/5: workers connected"
    );
    let cluster = ClusterCa {
        rt: &rt,
        conns: &conns,
        out: &out,
        tiles: tile_count(
            conns.len() * args.tiles_per_worker.max(1),
            st.grid.cells(),
            args.max_tile_cells,
        ),
        deadline,
        every: args.checkpoint_every,
        resume: args.resume,
        rejoin_probe: Duration::try_from_secs_f64(args.rejoin_probe).ok(),
        files,
        study_sha256: config_sha256,
        seed: study.config.study.seed,
        concurrent: args
            .concurrent_runs
            .map_or(DEFAULT_CONCURRENT_RUNS, |n| n as usize),
    };
    stage("workers", &mut lap);
    drop(bar);
    let trainers = Trainers::new(rt.handle().clone(), &conns, deadline);

    // PLUS mode: the LEAS forests of the Markov period, trained once for the validation
    // and the scenarios, their trees over the workers; the workers get their development
    // probability with the tiles, as a given suitability
    let forest = match study.config.suitability.model {
        flus_shared::config::SuitabilityModel::RandomForest => {
            tracing::info!(
                "LEAS random forests of the {} -> {} period (validation and scenarios)",
                mk.from,
                mk.to
            );
            let bar = crate::output::stage("LEAS forests on the workers");
            let f = model::forest_suitability_with(&study, &st, &|s, set, seed, key| {
                trainers.fit_forest(s, set, seed, key)
            })?;
            stage("leas_forests", &mut lap);
            drop(bar);
            Some(f)
        }
        flus_shared::config::SuitabilityModel::Ann => None,
    };
    // only the maps still needed: the base map, and the start map of the validation
    st.maps
        .retain(|&y, _| y == mk.to || (y == mk.from && !args.no_validation));

    // validation on the past period
    let mut sessions = BTreeMap::new();
    let mut report = RunJson {
        study: study.config.study.name.clone(),
        seed: study.config.study.seed,
        workers: addrs.clone(),
        classes: names.clone(),
        valid_cells: st.valid_cells() as u64,
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
    };
    // the scenarios' network (its sample drawn on this thread, its fit on a worker)
    // trains while the validation trains its own network on another worker and runs
    // its CA (its own session); or the scenarios' suitability raster (`[ann]
    // suitability`) is read meanwhile
    let bar = crate::output::stage("validation and the scenarios' ANN");
    let (validation, scenario_suit, ann_seconds) = std::thread::scope(|scope| {
        let training = scope.spawn(|| {
            // test builds: a fault test can hold the training thread while the validation
            // runs on the workers, and disturb the workers meanwhile
            flus_shared::hooks::hold(|| "scenarios-ann-training".into());
            let t0 = Instant::now();
            let s = if forest.is_some() {
                ScenarioSuitability::Forest
            } else if study.config.ann.suitability.is_some() {
                tracing::info!("stage 4/5: the given suitability of the {} map", mk.to);
                ScenarioSuitability::Given(model::suitability(&study, &st, mk.to)?)
            } else {
                tracing::info!(
                    "stage 4/5: ANN suitability from the {} map, on a worker",
                    mk.to
                );
                ScenarioSuitability::Trained(train_on_workers(
                    &trainers,
                    &study,
                    &st,
                    mk.to,
                    "scenarios",
                )?)
            };
            anyhow::Ok((s, t0.elapsed().as_secs_f64()))
        });
        let v = if args.no_validation {
            Ok(None)
        } else {
            tracing::info!("stage 3/5: validation {} -> {}", mk.from, mk.to);
            validation::validation_stage(
                &study,
                &st,
                &out,
                (&cluster, &trainers),
                forest.as_ref(),
                args.ensemble.unwrap_or(1),
            )
            .map(Some)
        };
        let trained = training
            .join()
            .map_err(|_| anyhow::anyhow!("the ANN training thread panicked"))?;
        let (trained, secs) = trained?;
        anyhow::Ok((v?, trained, secs))
    })?;
    tidy_checkpoints(&out);
    if let Some((v, session)) = validation {
        report.validation = Some(v);
        sessions.insert("validation".into(), session);
        stage("validation", &mut lap);
        st.maps.retain(|&y, _| y == mk.to);
    }
    let source = match &scenario_suit {
        ScenarioSuitability::Trained(trained) => {
            let network = &trained.network;
            let r = &trained.report;
            tracing::info!(train = r.train_accuracy, holdout = ?r.holdout_accuracy, "ANN accuracy");
            report.ann = Some(json!(trained.report));
            // the network's bits, to compare runs (the same for any worker and thread count)
            report.ann_network_sha256 = Some(files::sha256_hex(&serde_json::to_vec(network)?));
            SuitabilitySource::Network(network)
        }
        ScenarioSuitability::Forest => {
            let f = forest
                .as_ref()
                .context("the LEAS forests were not trained")?;
            if let Some(leas) = &f.leas {
                // driver_contributions.csv in the run folder (the report charts it)
                report.random_forest = Some(common::leas_outputs(&out, leas)?);
            }
            SuitabilitySource::Given(&f.values)
        }
        ScenarioSuitability::Given(s) => {
            report.ann = Some(json!({
                "suitability_raster": study.config.ann.suitability.as_ref().map(|p| study.resolve(p)),
            }));
            SuitabilitySource::Given(&s.values)
        }
    };
    // the training's own time; the stage "ann" is what remained of it after the validation
    report.ann_seconds = ann_seconds;
    // where every network and forest was trained, and how long it took
    report.training = json!(trainers.log());
    stage("ann", &mut lap);
    drop(bar);
    // one session for every scenario: the tiles of the base map and this network are
    // loaded once; each scenario only resets the class windows
    let bar = crate::output::stage("scenario tiles and suitability raster");
    let base = &st.maps[&mk.to];
    let radius = (0..study.config.scenarios.len())
        .map(|i| model::ca_params(&study, i).radius())
        .max()
        .unwrap_or(0);
    let opened = cluster.open("scenarios", base, &st.restricted, (k, radius), source, &st)?;
    let (session, padded_base) = (Session::new(opened.remote), opened.padded_start);
    let view = engine::MapView {
        padded: &padded_base,
        stride: opened.stride,
    };
    // the base map's counts per (zone, class), from the workers' tiles
    let base_counts = remote::RunLane::new(&session, "base").carbon_counts(&view)?;
    let base_class_counts = flus_shared::tables::class_totals(&base_counts, k);
    // the suitability raster, assembled from the workers' tiles (what the CA steps on),
    // or the given one written as it was read
    let suit_path = out.join(format!("suitability_{}.tif", mk.to));
    let max_suitability = match source {
        SuitabilitySource::Network(_) => {
            let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
            s.write_suitability(&suit_path, &st.grid, &names)?;
            s.free_maxima()
                .context("the workers returned no suitability maxima")?
        }
        SuitabilitySource::Given(values) => {
            flus_shared::ann::write_suitability(&suit_path, &st.grid, values, &names)?;
            free_maxima_here(values, &st, k)
        }
    };
    outputs::finish_format(&study, &suit_path)?;
    drop(padded_base);
    report.suitability = suit_path;
    stage("scenario_tiles", &mut lap);
    drop(bar);
    // the base map and its carbon storage, for the report and the change rasters
    let base_label = mk.to.to_string();
    let base_map = out.join(format!("landuse_{base_label}.tif"));
    outputs::write_landuse(&base_map, &study, &st.grid, base)?;
    let areas = st.cell_areas()?;
    let run_carbon = RunCarbon::new(&study, &base_label, areas.clone())?;
    report.base_carbon = run_carbon.write_base(&study, &out, &st.grid, base)?;
    // the GWR sample (valid cells only, from the seed): each scenario's carbon change is
    // taken there as soon as its map is done, and the map is dropped
    let gwr_cells = (!st.drivers.is_empty()).then(|| {
        flus_shared::analysis::sample_cells(
            &st.mask,
            study.config.gwr.sample_points,
            study.config.study.seed,
        )
    });
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string());
    // every map of the run with its files (names in the folder), base first
    let mut run_maps = vec![MapJson {
        label: base_label.clone(),
        scenario: None,
        year: mk.to,
        landuse: file_name(&base_map).unwrap_or_default(),
        carbon: Some(run_files::storage_name(&base_label)),
        carbon_change: None,
    }];
    report.base_map = base_map;
    for name in &args.scenarios {
        anyhow::ensure!(
            study.config.scenarios.iter().any(|s| &s.name == name),
            "{}: no scenario {name:?}",
            args.study.display()
        );
    }
    let shared = stages::Shared {
        study: &study,
        st: &st,
        out: &out,
        base,
        base_counts: &base_class_counts,
        max_suitability: &max_suitability,
        run_carbon: &run_carbon,
        areas: &areas,
        names: &names,
        demands: &stage_demands,
        gwr_cells: gwr_cells.as_deref(),
        base_zone_counts: &base_counts,
        members: args.ensemble.unwrap_or(1),
    };
    let done = stages::run_all(&cluster, &session, &shared, &args.scenarios, &mut |name| {
        stage(name, &mut lap)
    })?;
    tidy_checkpoints(&out);
    let stages::Outputs {
        maps: stage_maps,
        scenarios: scen,
        counts: scenario_counts,
        unmet: unmet_all,
        carbon_at,
        ensemble_carbon,
        ensemble_maps,
        ca_seconds,
        ca_wall_seconds,
    } = done;
    report.scenario_ca_seconds = ca_seconds;
    report.scenario_ca_wall_seconds = ca_wall_seconds;
    report.concurrent_runs = cluster.concurrent as u32;
    run_maps.extend(stage_maps);
    if let Some(n) = args.ensemble.filter(|&n| n > 1) {
        let csv = out.join("carbon_ensemble.csv");
        flus_shared::ensemble::write_carbon(&csv, &ensemble_carbon)?;
        let seed = study.config.study.seed;
        report.ensemble = Some(EnsembleJson {
            members: n,
            seeds: (0..n)
                .map(|m| flus_shared::ensemble::member_seed(seed, m))
                .collect(),
            carbon: ensemble_carbon,
            carbon_csv: csv.file_name().map(|f| f.to_string_lossy().to_string()),
            maps: ensemble_maps,
            validation: report.validation.as_ref().map(|v| v["ensemble"].clone()),
        });
    }
    if !unmet_all.is_empty() {
        tables::write_unmet(&out, &unmet_all)?;
    }
    let mut session = session.into_inner().unwrap_or_else(|e| e.into_inner());
    session.release();
    sessions.insert("scenarios".into(), json!(session.session));
    report.sessions = sessions;
    report.scenarios = scen;
    report.maps = run_maps;
    // the paper's tables 7-9 from integer counts per (zone, class)
    let base_areas = tables::zone_areas(
        &base_counts,
        base,
        st.zones.as_deref(),
        st.grid.width,
        &areas,
    );
    let mut maps = vec![tables::MapCounts {
        label: &base_label,
        counts: &base_counts,
        areas: &base_areas,
    }];
    maps.extend(scenario_counts.iter().map(|(l, c, a)| tables::MapCounts {
        label: l,
        counts: c,
        areas: a,
    }));
    let bar = crate::output::stage("carbon tables");
    report.tables = tables::write(&study, &maps, &st.zone_names, &out)?;
    stage("carbon_tables", &mut lap);
    drop(bar);
    if let Some(cells) = gwr_cells {
        tracing::info!(
            points = study.config.gwr.sample_points,
            "GWR driver analysis of the {} suitability and the scenarios' carbon change",
            mk.to
        );
        let bar = crate::output::stage("GWR driver analysis");
        report.gwr = Some(drivers::driver_analysis(
            &study,
            &st,
            source,
            cells,
            &carbon_at,
            &out,
            (!args.gwr_local).then_some((&rt, conns.as_slice())),
            deadline,
        )?);
        drop(bar);
        stage("gwr", &mut lap);
    } else {
        tracing::info!("no drivers: no GWR driver analysis");
    }
    report.shared_data = args.shared_data;
    report.memory = memory_report(&rt, &conns, st.grid.cells() as u64);
    report.wall_seconds = started.elapsed().as_secs_f64();
    // the wall time during which some worker call was in flight; the rest is the
    // coordinator's alone (the serial part of the study)
    report.worker_busy_seconds = crate::cluster::busy::seconds();
    report.timings = timings
        .into_iter()
        .map(|(stage, seconds, worker_busy_seconds)| StageTiming {
            stage,
            seconds,
            worker_busy_seconds,
        })
        .collect();
    report.version = env!("CARGO_PKG_VERSION").to_string();
    report.versions = Versions {
        flus: env!("CARGO_PKG_VERSION").to_string(),
        gdal: flus_shared::raster::gdal_version(),
    };
    report.outputs = run_files::manifest(&out)?;
    report.warnings = flus_shared::notices::all();
    report.completed = true;
    files::write_atomic(
        &out.join("run.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let bar = crate::output::stage("report");
    let built = crate::report::build(&out)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilings_have_about_the_asked_number_of_tiles() {
        assert_eq!(tiling_for(1, 100, 100), Tiling { rows: 1, cols: 1 });
        assert_eq!(tiling_for(4, 100, 100), Tiling { rows: 2, cols: 2 });
        let t = tiling_for(8, 1004, 1559);
        assert_eq!(t.rows * t.cols, 8);
        assert!(t.rows >= t.cols);
    }

    #[test]
    fn large_grids_get_a_multiple_of_the_base_tiles_below_the_largest_tile() {
        // Ben Cat (1,565,236 cells) on 2 workers x 4 tiles: 8 tiles of ~196 k cells
        assert_eq!(tile_count(8, 1_565_236, 4_000_000), 8);
        // 130,003,200 cells: 130.0 M / 4 M = 32.5 -> 33 tiles needed -> 5 x 8 = 40
        assert_eq!(tile_count(8, 130_003_200, 4_000_000), 40);
        // exactly 8 tiles of 4 M
        assert_eq!(tile_count(8, 32_000_000, 4_000_000), 8);
        assert_eq!(tile_count(8, 32_000_001, 4_000_000), 16);
        // no limit below one cell
        assert_eq!(tile_count(3, 10, 0), 12);
    }
}
