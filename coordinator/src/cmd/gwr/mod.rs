//! `flus gwr`: geographically weighted regression of one CSV column on others.

mod cluster;
mod input;
mod summary;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use flus_shared::gwr::{
    self, BandwidthChoice, GwrModel, GwrSettings, Kernel, SearchCap, SearchSettings, SigmaDf,
    Weighting,
};

use cluster::fit_on_cluster;
use input::read_data;
use summary::{points_csv, print_text, Summary};

/// Arguments of `flus gwr`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CSV table of points (a header row, then one row per point).
    #[arg(long)]
    pub csv: PathBuf,
    /// The dependent variable's column.
    #[arg(long)]
    pub y: String,
    /// The factors' columns, comma separated (intercept added in front).
    #[arg(long, value_delimiter = ',', required = true)]
    pub x: Vec<String>,
    /// The coordinate columns XCOL,YCOL (projected, Euclidean distance; with
    /// --spherical longitude,latitude in degrees).
    #[arg(long, value_delimiter = ',', num_args = 1, required = true)]
    pub coords: Vec<String>,
    /// The coordinates are longitude, latitude in degrees: distances are great-circle
    /// kilometres (mgwr's spherical=True; fixed bandwidths are then in km).
    #[arg(long)]
    pub spherical: bool,
    /// Kernel: bisquare (default), gaussian or exponential.
    #[arg(long, default_value = "bisquare")]
    pub kernel: Kernel,
    /// Fixed-distance bandwidth (default: adaptive, k nearest neighbours).
    #[arg(long)]
    pub fixed: bool,
    /// The bandwidth (neighbours, or distance with --fixed); default: golden-section
    /// search on AICc.
    #[arg(long)]
    pub bandwidth: Option<f64>,
    /// Bandwidth search speed-up: `auto` (a pilot search on a quarter of the points, at
    /// most 4,000, sets a cap from 2,000 points on), `full` (evaluate every golden-section iteration, as
    /// mgwr/GWR4) or a cap (neighbours, or distance with --fixed). The first iterations
    /// whose probes lie above the cap are taken as won by the smaller bandwidth until
    /// the probes prove it; the bandwidth found is the full search's either way. The
    /// JSON's `search` reports the cap, pilot, skipped iterations and widenings.
    #[arg(long, default_value = "auto", value_parser = parse_cap)]
    pub search_cap: SearchCap,
    /// Standardise the factors to mean 0, standard deviation 1.
    #[arg(long)]
    pub standardize: bool,
    /// Gaussian/exponential kernels: drop weights below this (0 = keep every point, as
    /// GWR4); speeds up large data sets.
    #[arg(long, default_value_t = 0.0)]
    pub min_weight: f64,
    /// Run the local fits on these running workers (comma-separated host:port list);
    /// the results are the same bits as on this machine.
    #[arg(long, value_delimiter = ',', conflicts_with = "local_workers")]
    pub workers: Vec<String>,
    /// Run the local fits on this many local workers started on loopback.
    #[arg(long)]
    pub local_workers: Option<usize>,
    /// Cluster token file for --workers (else FLUS_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// TLS towards --workers.
    #[command(flatten)]
    pub tls: crate::cluster::pool::TlsArgs,
    /// Deadline of every worker call, seconds.
    #[arg(long, default_value_t = 300.0)]
    pub deadline: f64,
    /// Output folder for gwr_points.csv and gwr_summary.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Parses --search-cap: auto, full or a positive bandwidth.
fn parse_cap(s: &str) -> Result<SearchCap, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(SearchCap::Auto),
        "full" => Ok(SearchCap::Full),
        v => match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(SearchCap::Given(x)),
            _ => Err(format!(
                "expected auto, full or a positive bandwidth, found `{s}`"
            )),
        },
    }
}

/// Writes `bytes` to `path` through a temporary name in the same folder, never over an
/// input ([`files::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(flus_shared::files::write_atomic(path, bytes)?)
}

/// Runs `flus gwr`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.coords.len() != 2 {
        bail!(
            "--coords takes two columns XCOL,YCOL, got {}",
            args.coords.len()
        );
    }
    flus_shared::files::register_inputs([&args.csv]);
    let model = GwrModel::new(read_data(args)?);
    let settings = settings(args);
    tracing::info!(
        points = model.data().n(),
        factors = args.x.len(),
        kernel = args.kernel.name(),
        adaptive = !args.fixed,
        "GWR"
    );
    let fitting = crate::output::stage(&format!("GWR of {} points", model.data().n()));
    let r = if args.workers.is_empty() && args.local_workers.is_none() {
        gwr::fit(&model, &settings)
    } else {
        fit_on_cluster(args, &model, &settings)?
    }
    .with_context(|| format!("{}", args.csv.display()))?;
    drop(fitting);
    let mut outputs = Vec::new();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
        let p = dir.join("gwr_points.csv");
        write_atomic(&p, &points_csv(&model, &r)?)?;
        outputs.push(p.display().to_string());
        outputs.push(dir.join("gwr_summary.json").display().to_string());
    }
    let summary = Summary::of(args, &r, outputs);
    if let Some(dir) = &args.out {
        write_atomic(
            &dir.join("gwr_summary.json"),
            serde_json::to_string_pretty(&summary)?.as_bytes(),
        )?;
    }
    if args.json {
        crate::output::print_json(&summary)?;
    } else {
        print_text(args, &r);
    }
    Ok(())
}

/// The kernel, bandwidth (given or searched) and σ of `args`.
fn settings(args: &Args) -> GwrSettings {
    GwrSettings {
        weighting: Weighting {
            kernel: args.kernel,
            adaptive: !args.fixed,
            min_weight: args.min_weight,
        },
        bandwidth: match args.bandwidth {
            Some(b) => BandwidthChoice::Given(b),
            None => BandwidthChoice::Search(SearchSettings {
                cap: args.search_cap,
                ..SearchSettings::default()
            }),
        },
        sigma_df: SigmaDf::Residual,
    }
}
