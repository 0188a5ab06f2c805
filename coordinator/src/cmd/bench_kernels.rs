//! The kernel figures of `flus bench`, each on data of the size its peer is timed on:
//!
//! - `carbon_pixels_per_second`: `flus carbon` (a child process, timed from start to
//!   exit, with its peak resident memory) on a generated baseline + alternate pair
//!   ([`flus_shared::synth::write_lulc_pair`]; 9000 x 14150 = 127.35 M pixels of 30 m by
//!   default, as InVEST is timed on), writing its default rasters;
//! - `gwr_seconds_n5000`: bandwidth search (AICc, adaptive bisquare) and fit of a GWR on
//!   5,000 generated points with 9 covariates ([`flus_shared::synth::gwr_points`]), as
//!   mgwr is timed on, in this process on all cores;
//! - `ca_validation_cell_updates_per_cpu_second`: whole validation runs of the shipped
//!   studies at their native resolution (Ben Cat 25 m, Dongguan 100 m), grid cells x
//!   iterations over the CPU seconds of the CA run (ANN and metrics excluded), on one
//!   thread.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use flus_shared::ca;
use flus_shared::config::Study;
use flus_shared::gwr::{self, GwrModel, GwrSettings};
use flus_shared::stack;
use serde_json::{json, Value};

use super::carbon_json::CarbonSummaryJson;

/// Seed of the generated data (fixed: the same data on every run).
const SEED: u64 = 20240601;

/// CPU seconds (user + system, all threads) of this process so far.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Runs `cmd` to its end: (wall seconds, CPU seconds, peak resident bytes, stdout).
fn timed_child(mut cmd: Command) -> anyhow::Result<(f64, f64, u64, Vec<u8>)> {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a child process")?;
    let mut stdout = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_end(&mut stdout).context("reading its output")?;
    }
    let mut status = 0;
    // SAFETY: wait4 on our own child, writing into the two values it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut u) };
    let wall = start.elapsed().as_secs_f64();
    anyhow::ensure!(pid > 0, "waiting for the child process failed");
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child process failed (status {status})"
    );
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    let cpu = t(u.ru_utime) + t(u.ru_stime);
    Ok((wall, cpu, u.ru_maxrss as u64 * 1024, stdout))
}

/// Rows and columns of a map of about `pixels` pixels in the peer's 9000 : 14150 shape.
fn lulc_shape(pixels: u64) -> (usize, usize) {
    let rows = ((pixels as f64 * 9000.0 / 14150.0).sqrt().round() as usize).max(1);
    (rows, (pixels as usize).div_ceil(rows).max(1))
}

/// Times `flus carbon` on a generated pair of about `pixels` pixels in `dir`.
pub fn carbon(dir: &Path, pixels: u64) -> anyhow::Result<Value> {
    let (rows, cols) = lulc_shape(pixels);
    tracing::info!(
        rows,
        cols,
        "generating the land-use pair of the carbon benchmark"
    );
    let pair = flus_shared::synth::write_lulc_pair(&dir.join("lulc"), rows, cols, 30.0, SEED)?;
    let out = dir.join("carbon");
    let mut cmd = Command::new(std::env::current_exe().context("path of flus")?);
    cmd.arg("carbon")
        .arg("--baseline")
        .arg(&pair.baseline)
        .arg("--alternate")
        .arg(&pair.alternate)
        .arg("--pools")
        .arg(&pair.pools)
        .arg("--out")
        .arg(&out)
        .args(["--json", "--quiet"]);
    let (wall, cpu, peak, stdout) = timed_child(cmd)?;
    let j: CarbonSummaryJson =
        serde_json::from_slice(&stdout).context("flus carbon --json output")?;
    let px = (rows * cols) as f64;
    let _ = std::fs::remove_dir_all(dir.join("lulc"));
    let _ = std::fs::remove_dir_all(&out);
    Ok(json!({
        "rows": rows,
        "cols": cols,
        "pixels": rows * cols,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "pixels_per_second": px / wall,
        "peak_rss_bytes": peak,
        "bytes_per_pixel": peak as f64 / px,
        "baseline_total_t": j.baseline_total_t,
        "alternate_total_t": j.alternate_total_t,
        "outputs": j.outputs.len(),
    }))
}

/// Times a GWR (AICc search and fit, adaptive bisquare) on `n` generated points.
pub fn gwr(n: usize) -> anyhow::Result<Value> {
    let data = flus_shared::synth::gwr_points(n, SEED)?;
    let (cpu0, start) = (process_cpu_seconds(), Instant::now());
    let model = GwrModel::new(data);
    let r = gwr::fit(&model, &GwrSettings::default())?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu0;
    Ok(json!({
        "n": n,
        "covariates": model.data().p() - 1,
        "seconds": wall,
        "cpu_seconds": cpu,
        "threads": rayon::current_num_threads(),
        "bandwidth": r.diagnostics.bandwidth,
        "aicc": r.diagnostics.aicc,
        "evaluations": r.search.as_ref().map(|s| s.probes.len()),
    }))
}

/// One whole validation run of `study` on one thread: its cells, iterations, CA CPU
/// seconds and map hash.
fn validation_run(study: &Path) -> anyhow::Result<Value> {
    let study = Study::load(study)?;
    let st = stack::load(&study)?;
    let out = tempfile::tempdir().context("temporary folder")?;
    let cells = st.grid.width * st.grid.height;
    let mut cpu = 0.0;
    let v = super::common::pool(Some(1))?.install(|| {
        super::validate::validate(&study, &st, out.path(), true, |params, input, _| {
            let c0 = process_cpu_seconds();
            let r = ca::run(params, input, ca::Tiling { rows: 1, cols: 1 }, |_, _| {});
            cpu = process_cpu_seconds() - c0;
            Ok(r?)
        })
    })?;
    let iterations = v.json.iterations;
    let updates = cells as f64 * iterations as f64;
    Ok(json!({
        "study": study.config.study.name,
        "width": st.grid.width,
        "height": st.grid.height,
        "cell_size_m": st.grid.cell_width(),
        "iterations": iterations,
        "ca_cpu_seconds": cpu,
        "cell_updates": updates,
        "cell_updates_per_cpu_second": updates / cpu.max(1e-9),
        "map_sha256": v.json.map_sha256,
    }))
}

/// Whole validation runs of `studies`, and their cell-updates over their CPU seconds.
pub fn ca_validation(studies: &[PathBuf]) -> anyhow::Result<Value> {
    let runs = studies
        .iter()
        .map(|s| validation_run(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sum = |k: &str| runs.iter().filter_map(|r| r[k].as_f64()).sum::<f64>();
    Ok(json!({
        "runs": runs,
        "cell_updates_per_cpu_second": sum("cell_updates") / sum("ca_cpu_seconds").max(1e-9),
    }))
}

/// The kernel figures asked by `args`, added to `report`.
pub fn add_to(report: &mut Value, args: &super::bench::Args) -> anyhow::Result<()> {
    if args.carbon_pixels > 0 {
        let dir = tempfile::tempdir().context("temporary folder")?;
        let c = carbon(dir.path(), args.carbon_pixels)?;
        tracing::info!(figures = %c, "carbon");
        report["carbon_pixels_per_second"] = c["pixels_per_second"].clone();
        report["carbon"] = c;
    }
    if args.gwr_points > 0 {
        let g = gwr(args.gwr_points)?;
        tracing::info!(figures = %g, "GWR");
        let key = format!("gwr_seconds_n{}", args.gwr_points);
        report[key.as_str()] = g["seconds"].clone();
        report["gwr"] = g;
    }
    if !args.ca_studies.is_empty() {
        let c = ca_validation(&args.ca_studies)?;
        tracing::info!(figures = %c, "CA validation runs");
        report["ca_validation_cell_updates_per_cpu_second"] =
            c["cell_updates_per_cpu_second"].clone();
        report["ca_validation"] = c;
    }
    Ok(())
}
