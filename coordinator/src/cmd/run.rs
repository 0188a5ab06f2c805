//! `flus run STUDY.toml`: the whole pipeline over the cluster — inputs checked, Markov
//! demand, ANN, validation on the past period, every scenario to the target year,
//! outputs. Without a workers flag it starts one local worker per core on loopback.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use flus_shared::ca::{self, engine, CaInput, Tiling};
use flus_shared::config::Study;
use flus_shared::{files, markov, model, outputs, stack};
use serde_json::{json, Value};

use super::common;
use crate::cluster::{local::LocalWorkers, pool, remote};

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
    /// Deadline of every worker call, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub deadline: f64,
    /// Store a checkpoint every this many iterations.
    #[arg(long, default_value_t = 5)]
    pub checkpoint_every: u32,
    /// Continue a killed run from its checkpoints in the output folder.
    #[arg(long)]
    pub resume: bool,
    /// Skip the validation run on the past period.
    #[arg(long)]
    pub no_validation: bool,
    /// Only these scenarios (repeatable; default: all).
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// TLS towards --workers.
    #[command(flatten)]
    pub tls: pool::TlsArgs,
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
    let t = match &args.token_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("token file {}", f.display()))?
            .trim()
            .to_string(),
        None => std::env::var("FLUS_TOKEN")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    anyhow::ensure!(
        !t.is_empty(),
        "--workers needs the cluster token: --token-file FILE or FLUS_TOKEN"
    );
    Ok(t)
}

/// Where checkpoints of a CA run go.
fn checkpoint_path(out: &Path, label: &str) -> PathBuf {
    out.join("checkpoints").join(format!("{label}.json"))
}

fn load_checkpoint(path: &Path) -> anyhow::Result<Option<engine::Checkpoint>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let c: engine::Checkpoint = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a flus checkpoint", path.display()))?;
    Ok(Some(c))
}

/// One CA run over the workers: tiles loaded (the workers compute suitability from the
/// broadcast network), checkpoints every few iterations, resume from the last one.
struct ClusterCa<'a> {
    rt: &'a tokio::runtime::Runtime,
    conns: &'a [pool::WorkerConn],
    out: &'a Path,
    tiles: usize,
    deadline: Duration,
    every: u32,
    resume: bool,
}

impl ClusterCa<'_> {
    fn run(
        &self,
        label: &str,
        params: &ca::CaParams,
        input: &CaInput,
        network: &flus_shared::ann::Network,
        st: &stack::Stack,
    ) -> anyhow::Result<(
        ca::CaOutput,
        remote::Traffic,
        flus_shared::tables::ZoneCounts,
    )> {
        let tiling = tiling_for(self.tiles, input.width, input.height);
        let rects = tiling.rects(input.width, input.height)?;
        let layers = remote::StaticLayers {
            restricted: input.restricted,
            drivers: st.drivers.iter().map(|d| d.values.as_slice()).collect(),
            suitability: None,
            zones: st.zones.as_deref(),
        };
        let mut backend = remote::Remote::new(
            self.rt.handle().clone(),
            self.conns.to_vec(),
            rects,
            input.height,
            params.k,
            params.radius(),
            format!("{label}-{}", std::process::id()),
            self.deadline,
            layers,
        );
        backend.set_network(serde_json::to_vec(network)?);
        let cp_path = checkpoint_path(self.out, label);
        let resume = if self.resume {
            load_checkpoint(&cp_path)?
        } else {
            None
        };
        if let Some(c) = &resume {
            tracing::info!(label, iteration = c.t, "resuming from checkpoint");
        }
        let every = self.every.max(1);
        let mut progress = common::progress_logger(label.to_string());
        let mut checkpoint = |make: &dyn Fn() -> engine::Checkpoint| -> flus_shared::Result<()> {
            let c = make();
            if c.t.is_multiple_of(every) {
                let bytes =
                    serde_json::to_vec(&c).map_err(|e| flus_shared::Error::Data(e.to_string()))?;
                files::write_atomic(&cp_path, &bytes)?;
            }
            Ok(())
        };
        let out = engine::run_loop(
            params,
            input,
            &mut backend,
            resume,
            &mut progress,
            &mut checkpoint,
        )?;
        // carbon partial sums: cell counts per (zone, class) of the workers' final maps
        let r = params.radius();
        let pw = input.width + 2 * r;
        let mut padded = vec![ca::INVALID; pw * (input.height + 2 * r)];
        for y in 0..input.height {
            padded[(y + r) * pw + r..(y + r) * pw + r + input.width]
                .copy_from_slice(&out.map[y * input.width..(y + 1) * input.width]);
        }
        let counts = backend.carbon_counts(&engine::MapView {
            padded: &padded,
            stride: pw,
        })?;
        backend.release();
        let traffic = backend.traffic.clone();
        let _ = std::fs::remove_file(&cp_path);
        Ok((out, traffic, counts))
    }
}

/// Runs `flus run`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut study = Study::load(&args.study)?;
    if let Some(s) = args.seed {
        study.config.study.seed = s;
    }
    let out = args.out.clone().unwrap_or_else(|| study.output_dir());
    files::ensure_dir(&out)?;
    // The run folder says whether it is complete: `run.json` holds `"completed": false`
    // from the start (a killed run leaves it so), an error replaces it with the message,
    // and only a run that reaches the end writes `"completed": true`.
    let marker = |status: &str, error: Option<String>| {
        let j = json!({
            "completed": false,
            "status": status,
            "error": error,
            "study": args.study,
            "pid": std::process::id(),
            "version": env!("CARGO_PKG_VERSION"),
        });
        files::write_atomic(
            &out.join("run.json"),
            serde_json::to_string_pretty(&j)
                .unwrap_or_default()
                .as_bytes(),
        )
    };
    marker("running", None)?;
    let result = run_in(args, study, &out, started);
    if let Err(e) = &result {
        if let Err(w) = marker("failed", Some(format!("{e:#}"))) {
            tracing::error!("cannot record the failure in run.json: {w}");
        }
    }
    result
}

/// The body of `flus run` once the output folder exists.
fn run_in(args: &Args, study: Study, out: &Path, started: Instant) -> anyhow::Result<()> {
    let out = out.to_path_buf();
    let mut timings: Vec<(String, f64)> = Vec::new();
    let mut lap = Instant::now();
    let mut stage = |name: &str, lap: &mut Instant| {
        timings.push((name.to_string(), lap.elapsed().as_secs_f64()));
        *lap = Instant::now();
    };

    // inputs and demand
    tracing::info!(study = %args.study.display(), "stage 1/5: inputs");
    let st = stack::load(&study)?;
    let k = study.k();
    let mk = study.config.markov.clone();
    let names: Vec<String> = study
        .config
        .classes
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let transition = markov::transition(&st.maps[&mk.from], &st.maps[&mk.to], k);
    let demands = markov::demand(&study, &transition, st.valid_cells())?;
    let demand_result = super::demand::DemandResult {
        study: study.clone(),
        stack: st.clone(),
        transition: transition.clone(),
        scenarios: demands.clone(),
    };
    super::demand::write_tables(&demand_result, &out)?;
    drop(demand_result);
    stage("inputs_and_demand", &mut lap);

    // workers
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (_local, addrs, token) = if args.workers.is_empty() {
        let n = args.local_workers.unwrap_or(threads).max(1);
        let per = (threads / n).max(1);
        let lw = LocalWorkers::start(n, per)?;
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
            v.push(pool::connect(a, &token, Duration::from_secs(30), &tls).await?);
        }
        anyhow::Ok(v)
    })?;
    tracing::info!(
        workers = conns.len(),
        threads = conns.iter().map(|c| c.threads).sum::<u32>(),
        "stage 2/5: workers connected"
    );
    let cluster = ClusterCa {
        rt: &rt,
        conns: &conns,
        out: &out,
        tiles: conns.len() * args.tiles_per_worker.max(1),
        deadline,
        every: args.checkpoint_every,
        resume: args.resume,
    };
    stage("workers", &mut lap);

    // validation on the past period
    let mut report = json!({
        "study": study.config.study.name,
        "seed": study.config.study.seed,
        "workers": addrs,
        "classes": names,
        "valid_cells": st.valid_cells(),
    });
    if !args.no_validation {
        tracing::info!("stage 3/5: validation {} -> {}", mk.from, mk.to);
        let mut traffic = None;
        let v = super::validate::validate(&study, &st, &out, |params, input, suit| {
            let network = suit
                .network
                .as_ref()
                .context("validation needs an ANN (no suitability raster)")?;
            let (res, t, _) = cluster.run("validation", params, input, network, &st)?;
            traffic = Some(t);
            Ok(res)
        })?;
        let mut v = v.json;
        v["traffic"] = json!(traffic);
        report["validation"] = v;
        stage("validation", &mut lap);
    }

    // scenarios
    tracing::info!("stage 4/5: ANN suitability from the {} map", mk.to);
    let suit = model::suitability(&study, &st, mk.to)?;
    let network = suit
        .network
        .as_ref()
        .context("scenarios need an ANN (no suitability raster)")?;
    if let Some(r) = &suit.report {
        tracing::info!(train = r.train_accuracy, holdout = ?r.holdout_accuracy, "ANN accuracy");
    }
    let suit_path = out.join(format!("suitability_{}.tif", mk.to));
    flus_shared::ann::write_suitability(&suit_path, &st.grid, &suit.values, &names)?;
    report["ann"] = json!(suit.report);
    report["suitability"] = json!(suit_path);
    stage("ann", &mut lap);
    let mut scen = serde_json::Map::new();
    let mut scenario_counts: Vec<(String, flus_shared::tables::ZoneCounts)> = Vec::new();
    for name in &args.scenarios {
        anyhow::ensure!(
            study.config.scenarios.iter().any(|s| &s.name == name),
            "{}: no scenario {name:?}",
            args.study.display()
        );
    }
    for (i, sc) in study.config.scenarios.iter().enumerate() {
        if !args.scenarios.is_empty() && !args.scenarios.contains(&sc.name) {
            continue;
        }
        let label = format!("{}_{}", sc.name, mk.target_year);
        tracing::info!("stage 5/5: scenario {label}");
        let demand: Vec<i64> = demands[i].cells.iter().map(|&c| c as i64).collect();
        let params = model::ca_params(&study, i);
        let input = CaInput {
            width: st.grid.width,
            height: st.grid.height,
            classes: &st.maps[&mk.to],
            suitability: &suit.values,
            restricted: &st.restricted,
            demand: &demand,
        };
        let (res, traffic, counts) = cluster.run(&label, &params, &input, network, &st)?;
        let local = flus_shared::tables::zone_counts(&res.map, st.zones.as_deref(), k);
        anyhow::ensure!(
            local == counts,
            "scenario {}: the workers' cell counts differ from the committed map",
            sc.name
        );
        scenario_counts.push((label.clone(), counts));
        let map_path = out.join(format!("landuse_{label}.tif"));
        outputs::write_landuse(&map_path, &study, &st.grid, &res.map)?;
        outputs::write_iterations(
            &out.join(format!("iterations_{label}.csv")),
            &study,
            &res.records,
        )?;
        scen.insert(
            sc.name.clone(),
            json!({
                "demand": common::by_class(&names, &demand),
                "final_gap": common::by_class(&names, &res.report.final_gap),
                "demand_met": res.report.demand_met,
                "iterations": res.report.iterations,
                "stop_reason": res.report.stop_reason,
                "map": map_path,
                "map_sha256": files::sha256_hex(&res.map),
                "traffic": traffic,
            }),
        );
        stage(&format!("scenario_{}", sc.name), &mut lap);
    }
    report["scenarios"] = Value::Object(scen);
    // the paper's tables 7-9 from integer counts per (zone, class)
    let base_counts = flus_shared::tables::zone_counts(&st.maps[&mk.to], st.zones.as_deref(), k);
    let base_label = mk.to.to_string();
    let mut maps = vec![flus_shared::tables::MapCounts {
        label: &base_label,
        counts: &base_counts,
    }];
    maps.extend(
        scenario_counts
            .iter()
            .map(|(l, c)| flus_shared::tables::MapCounts {
                label: l,
                counts: c,
            }),
    );
    report["tables"] = flus_shared::tables::write(&study, st.grid.cell_area(), &maps, &out)?;
    stage("carbon_tables", &mut lap);
    if st.drivers.is_empty() {
        tracing::info!("no drivers: no GWR driver analysis");
    } else {
        tracing::info!(
            points = study.config.gwr.sample_points,
            "GWR driver analysis of the {} suitability",
            mk.to
        );
        report["gwr"] = flus_shared::analysis::run(&study, &st, &suit.values, &out)?;
        stage("gwr", &mut lap);
    }
    report["wall_seconds"] = json!(started.elapsed().as_secs_f64());
    report["timings"] = json!(timings
        .iter()
        .map(|(n, s)| json!({"stage": n, "seconds": s}))
        .collect::<Vec<_>>());
    report["version"] = json!(env!("CARGO_PKG_VERSION"));
    report["completed"] = json!(true);
    files::write_atomic(
        &out.join("run.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    if args.json {
        crate::output::print_json(&report)?;
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
}
