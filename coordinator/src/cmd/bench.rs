//! `flus bench [--cells N] [--json]`: in one run on this machine, (a) the memory
//! bandwidth (a stream-copy loop), (b) CA cell-updates per second on one thread (the
//! tile step on Ben Cat, `flus_shared::ca::bench`), (c) the bytes the step touches per
//! cell and the ratio of (b) to the bandwidth bound, (d) the wall time of the whole
//! study, `flus run` (validation, every scenario, carbon, GWR) on a study of about N
//! cells generated from Ben Cat (`flus make-study`), with 1 and 2 local workers and the
//! speed-up, and (e) the peak resident memory of the coordinator and of each worker,
//! per cell, and (f) the kernels against their peers (`carbon_pixels_per_second`,
//! `gwr_seconds_n5000`, `ca_validation_cell_updates_per_cpu_second`: see
//! [`super::bench_kernels`]).
//!
//! What (d) reports: the whole `flus run` process's wall time and its speed-up
//! (`study_speedup`), every stage's seconds of run.json for both runs
//! (`stage_seconds`), the share of the 1-worker wall time in which no worker call was
//! in flight (`coordinator_only_fraction`, from run.json `worker_busy_seconds`: the
//! serial fraction of Amdahl's law) and per stage (`stage_coordinator_only_seconds`),
//! the seconds outside every stage (`outside_stages_seconds`: the process's start, the
//! HTML report, its exit; the validation, which runs beside the other stages and is
//! `overlapped` in run.json, is left out of their sum), the bytes each session sent, and for the first
//! scenario its CA run (`ca_seconds`, the coordinator's own share of it in
//! `coordinator_own_ca_seconds`) and the wait for the workers' steps
//! (`propose_seconds`), each with its speed-up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use flus_shared::ca::bench;
use flus_shared::config::Study;
use serde_json::{json, Map, Value};

/// Arguments of `flus bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cells of the generated study timed with 1 and 2 workers (0: skip (d) and (e)).
    #[arg(long, default_value_t = 20_000_000)]
    pub cells: u64,
    /// The source study the large one is generated from.
    #[arg(long, default_value = "examples/bencat/study.toml")]
    pub study: PathBuf,
    /// Folder for the generated study and the runs (default: a temporary folder,
    /// removed at the end).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Threads of each local worker in (d): with 1, the run with 2 workers uses twice the
    /// cores of the run with 1, so the speed-up measures what a second worker adds.
    #[arg(long, default_value_t = 1)]
    pub worker_threads: usize,
    /// Size of the stream-copy buffers, MiB.
    #[arg(long, default_value_t = 512)]
    pub copy_mib: usize,
    /// Runs of the study with 1 and with 2 workers, alternated (1, 2, 1, 2, ...); the
    /// figures and speed-ups are those of the fastest run (wall time) of each, which a
    /// shared or noisy machine disturbs least. Every run is listed in `runs`.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Pixels of the generated land-use pair `flus carbon` is timed on
    /// (`carbon_pixels_per_second`; 0: skip). Default: InVEST's benchmark, 9000 x 14150.
    #[arg(long, default_value_t = 127_350_000)]
    pub carbon_pixels: u64,
    /// Points of the generated GWR timed with its bandwidth search
    /// (`gwr_seconds_n<N>`; 0: skip). Default: mgwr's benchmark.
    #[arg(long, default_value_t = 5000)]
    pub gwr_points: usize,
    /// Studies whose whole validation run gives
    /// `ca_validation_cell_updates_per_cpu_second` (comma separated; the flag without a
    /// value: skip).
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_value = "examples/bencat/study.toml,examples/dongguan/study.toml"
    )]
    pub ca_studies: Vec<PathBuf>,
    /// `flus run --concurrent-runs N` for the runs of the generated study (default:
    /// flus run's own default), e.g. 1 to time the runs one after another.
    #[arg(long)]
    pub concurrent_runs: Option<u32>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs the whole `flus run` of `study` with `workers` local workers; returns its wall
/// seconds, stages and traffic from its run.json.
fn timed_run(
    study: &Path,
    out: &Path,
    scenario: &str,
    workers: usize,
    threads: usize,
    concurrent: Option<u32>,
) -> anyhow::Result<Value> {
    let wall = run_study(study, out, (workers, threads), concurrent)?;
    let report = crate::run_json::RunJson::read(out)?;
    let (stages, stage_coordinator_only, staged) = stage_seconds(&report);
    let ca_seconds = stages
        .get(&format!("scenario_{scenario}"))
        .and_then(|s| s.as_f64());
    let busy = report.worker_busy_seconds;
    let sc = report
        .scenarios
        .get(scenario)
        .map(|s| &s.last)
        .with_context(|| format!("{}: no scenario {scenario} in run.json", out.display()))?;
    let iterations = sc.iterations;
    let traffic = &sc.traffic;
    let phases = &traffic.seconds;
    let ca_seconds_total = phases.total;
    let per_iter = |bytes: u64| bytes as f64 / iterations.max(1) as f64;
    Ok(json!({
        "workers": workers,
        "threads_per_worker": threads,
        "wall_seconds": wall,
        "stage_seconds": stages,
        "stage_coordinator_only_seconds": stage_coordinator_only,
        "outside_stages_seconds": (wall - staged).max(0.0),
        "worker_busy_seconds": busy,
        "coordinator_only_seconds": (wall - busy).max(0.0),
        "coordinator_only_fraction": (wall - busy).max(0.0) / wall,
        "sessions": report.sessions,
        "scenario_stage_seconds": ca_seconds,
        "concurrent_runs": report.concurrent_runs,
        "scenario_ca_wall_seconds": report.scenario_ca_wall_seconds,
        "iterations": iterations,
        "seconds_per_iteration": ca_seconds.map(|s| s / iterations.max(1) as f64),
        "ca_seconds": ca_seconds_total,
        "coordinator_own_ca_seconds": ca_seconds_total - worker_waits(traffic),
        "propose_seconds": phases.propose,
        "map_sha256": sc.map_sha256,
        "map_sha256_all": report
            .scenarios
            .values()
            .map(|s| s.last.map_sha256.clone())
            .collect::<Vec<_>>(),
        "validation_map_sha256": report.validation.as_ref().map(|v| &v.map_sha256),
        "traffic": traffic,
        "halo_bytes_per_iteration": per_iter(traffic.halo_bytes),
        "reply_bytes_per_iteration": per_iter(traffic.reply_bytes),
        "memory": report.memory,
    }))
}

/// The coordinator's waits for the workers in the CA's phases of `traffic`, seconds.
fn worker_waits(traffic: &crate::cluster::remote::Traffic) -> f64 {
    let phases = &traffic.seconds;
    [
        phases.load,
        phases.propose,
        phases.exact,
        phases.commit,
        phases.carbon,
    ]
    .iter()
    .sum()
}

/// Runs `flus run` (this executable) on `study` into `out` with `(workers, threads)`
/// local workers of that many threads (and `--concurrent-runs concurrent`); returns
/// its wall seconds.
fn run_study(
    study: &Path,
    out: &Path,
    (workers, threads): (usize, usize),
    concurrent: Option<u32>,
) -> anyhow::Result<f64> {
    let exe = std::env::current_exe().context("path of flus")?;
    let start = Instant::now();
    let mut cmd = Command::new(exe);
    cmd.arg("run");
    if let Some(n) = concurrent {
        cmd.args(["--concurrent-runs", &n.to_string()]);
    }
    let status = cmd
        .arg(study)
        .arg("--quiet")
        .args(["--local-workers", &workers.to_string()])
        .args(["--worker-threads", &threads.to_string()])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .context("starting flus run")?;
    let wall = start.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "flus run with {workers} worker(s) failed");
    Ok(wall)
}

/// From a run's run.json: the seconds of every stage, the seconds of every stage in
/// which no worker call was in flight, and the seconds of the stages that did not run
/// beside others (what they leave out of the wall time is the process's start,
/// run.json, the HTML report and its exit).
fn stage_seconds(
    report: &crate::run_json::RunJson,
) -> (Map<String, Value>, Map<String, Value>, f64) {
    let stages: Map<String, Value> = report
        .timings
        .iter()
        .map(|t| (t.stage.clone(), json!(t.seconds)))
        .collect();
    let coordinator_only: Map<String, Value> = report
        .timings
        .iter()
        .map(|t| {
            let own = (t.seconds - t.worker_busy_seconds).max(0.0);
            (t.stage.clone(), json!(own))
        })
        .collect();
    // a stage that ran beside the others, the validation, is inside their seconds
    let staged: f64 = report
        .timings
        .iter()
        .filter(|t| !t.overlapped)
        .map(|t| t.seconds)
        .sum();
    (stages, coordinator_only, staged)
}

/// Runs `flus bench`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let (mut report, source) = machine_figures(args)?;
    // carbon, GWR and whole CA validation runs against their peers' sizes
    super::bench_kernels::add_to(&mut report, args)?;
    // (d), (e) the generated study with 1 and 2 workers
    if args.cells > 0 {
        study_figures(args, &source, &mut report)?;
    }
    if args.json {
        crate::output::print_json(&report)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// (a) the memory bandwidth, (b) the tile step on one thread on the source study
/// (`args.study`, returned with the figures) and (c) the bytes per cell and the
/// bandwidth bound.
fn machine_figures(args: &Args) -> anyhow::Result<(Value, Study)> {
    // (a) memory bandwidth
    let bandwidth = bench::stream_copy_bandwidth(args.copy_mib << 20, 5);
    tracing::info!(gb_per_s = bandwidth / 1e9, "stream copy");
    // (b) tile step on one thread
    let source = Study::load(&args.study)?;
    let grid = bench::bencat(&source.base_dir)?;
    let step = bench::time_step(&grid, 10);
    tracing::info!(
        m_cells_per_s = step.cells_per_second / 1e6,
        "tile step, 1 thread"
    );
    drop(grid);
    // (c) bytes per cell and the bandwidth bound
    let bytes = bench::kernel_bytes_per_cell(bench::BENCH_K);
    let bound = bandwidth / bytes as f64;
    let report = json!({
        "bandwidth_bytes_per_second": bandwidth,
        "bandwidth_gb_per_second": bandwidth / 1e9,
        "ca_step": step,
        "ca_cell_updates_per_second_per_core": step.cells_per_second,
        "kernel_bytes_per_cell": bytes,
        "bandwidth_bound_cell_updates_per_second": bound,
        "ratio_to_bandwidth_bound": step.cells_per_second / bound,
    });
    Ok((report, source))
}

/// (d), (e): generates a study of about `args.cells` cells from `source`, times it
/// with 1 and 2 workers and adds the figures to `report`.
fn study_figures(args: &Args, source: &Study, report: &mut Value) -> anyhow::Result<()> {
    let tmp;
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("temporary folder")?;
            tmp.path().to_path_buf()
        }
    };
    let made = flus_shared::make_study::make(source, args.cells, &dir.join("study"))?;
    let scenario = source
        .config
        .scenarios
        .first()
        .map(|s| s.name.clone())
        .context("the study has no scenario")?;
    tracing::info!(
        cells = made.cells,
        "timing the whole study with 1 and 2 workers"
    );
    let threads = args.worker_threads.max(1);
    let (mut ones, mut twos) = (Vec::new(), Vec::new());
    for i in 0..args.repeat.max(1) {
        let tag = if i == 0 {
            String::new()
        } else {
            format!("_{}", i + 1)
        };
        let run = |w: usize| dir.join(format!("run{w}{tag}"));
        let c = args.concurrent_runs;
        ones.push(timed_run(&made.study, &run(1), &scenario, 1, threads, c)?);
        twos.push(timed_run(&made.study, &run(2), &scenario, 2, threads, c)?);
    }
    report["study"] = json!({
        "cells": made.cells,
        "width": made.width,
        "height": made.height,
        "factor": made.factor,
        "scenario": scenario,
    });
    compare_runs(report, args.repeat.max(1), (&ones, &twos));
    Ok(())
}

/// Adds to `report` the figures of the fastest of the `ones` (1 worker) and `twos` (2
/// workers), alternated `repeat` times each, their speed-ups, whether every run gave
/// the same maps, and every run.
fn compare_runs(report: &mut Value, repeat: usize, (ones, twos): (&[Value], &[Value])) {
    let fastest = |runs: &[Value]| {
        runs.iter()
            .min_by(|a, b| {
                let wall = |v: &Value| v["wall_seconds"].as_f64().unwrap_or(f64::INFINITY);
                wall(a).total_cmp(&wall(b))
            })
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (one, two) = (fastest(ones), fastest(twos));
    let ratio = |key: &str| match (one[key].as_f64(), two[key].as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
        _ => Value::Null,
    };
    report["same_map_with_1_and_2_workers"] = json!(ones.iter().chain(twos).all(|r| {
        r["map_sha256_all"] == one["map_sha256_all"]
            && r["validation_map_sha256"] == one["validation_map_sha256"]
    }));
    report["study_speedup"] = ratio("wall_seconds");
    report["coordinator_only_fraction"] = one["coordinator_only_fraction"].clone();
    for key in [
        "stage_seconds",
        "stage_coordinator_only_seconds",
        "outside_stages_seconds",
    ] {
        report[key] = json!({
            "1_worker": one[key],
            "2_workers": two[key],
        });
    }
    report["speedup_wall"] = ratio("wall_seconds");
    report["speedup_scenario_stage"] = ratio("scenario_stage_seconds");
    report["speedup_ca"] = ratio("ca_seconds");
    report["speedup_propose"] = ratio("propose_seconds");
    report["repeat"] = json!(repeat);
    report["fastest"] = json!([one, two]);
    report["runs"] = json!(ones.iter().chain(twos).collect::<Vec<_>>());
}
