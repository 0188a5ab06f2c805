//! `flus gwr`: geographically weighted regression of one CSV column on others.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use flus_shared::gwr::{
    self, BandwidthChoice, GwrData, GwrModel, GwrResult, GwrSettings, Kernel, SearchCap,
    SearchSettings, SigmaDf, Weighting,
};
use serde::Serialize;

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

/// The global OLS figures in the JSON output.
#[derive(Debug, Serialize)]
struct OlsJson<'a> {
    rss: f64,
    aic: f64,
    aicc: f64,
    r2: f64,
    adj_r2: f64,
    sigma: f64,
    params: &'a [f64],
    se: &'a [f64],
    t: &'a [f64],
}

/// The JSON output of `flus gwr`.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    csv: String,
    y: &'a str,
    names: &'a [String],
    kernel: &'static str,
    adaptive: bool,
    /// Great-circle distances in km between (lon, lat) coordinates.
    spherical: bool,
    standardized: bool,
    n: usize,
    bandwidth: f64,
    bandwidth_searched: bool,
    search: Option<&'a gwr::SearchOutcome>,
    aicc: f64,
    aic: f64,
    bic: f64,
    r2: f64,
    adj_r2: f64,
    enp: f64,
    tr_sts: f64,
    rss: f64,
    sigma: f64,
    coefficients: &'a [gwr::CoefficientSummary],
    ols: OlsJson<'a>,
    params: Vec<&'a [f64]>,
    outputs: Vec<String>,
}

/// Reads the named numeric columns of a CSV file; errors name the file, the column and
/// the row (1-based data row, header excluded).
fn read_columns(path: &Path, names: &[&str]) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("{}: cannot open the CSV file", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let mut idx = Vec::with_capacity(names.len());
    for name in names {
        match headers.iter().position(|h| h == *name) {
            Some(i) => idx.push(i),
            None => bail!(
                "{}: no column `{name}` (columns are: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    let mut cols = vec![Vec::new(); names.len()];
    for (r, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), r + 1))?;
        for (c, &i) in idx.iter().enumerate() {
            let raw = rec.get(i).unwrap_or("");
            let v: f64 = raw.parse().ok().filter(|v: &f64| v.is_finite()).with_context(|| {
                format!(
                    "{}: column `{}` row {}: `{raw}` is not a finite number (non-numeric, empty, NaN or infinite)",
                    path.display(),
                    names[c],
                    r + 1
                )
            })?;
            cols[c].push(v);
        }
    }
    Ok(cols)
}

/// Writes `bytes` to `path` through a temporary name in the same folder, never over an
/// input ([`files::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(flus_shared::files::write_atomic(path, bytes)?)
}

fn points_csv(model: &GwrModel, r: &GwrResult) -> anyhow::Result<Vec<u8>> {
    let data = model.data();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "index".to_string(),
        "x".into(),
        "y".into(),
        data.y_name().into(),
    ];
    header.extend(["yhat".to_string(), "residual".into()]);
    for n in data.names() {
        header.extend([format!("est_{n}"), format!("se_{n}"), format!("t_{n}")]);
    }
    header.extend(["local_r2".to_string(), "influence".into()]);
    w.write_record(&header)?;
    for (f, s) in r.fits.iter().zip(&r.stats) {
        let c = data.coords()[f.index];
        let mut row = vec![
            f.index.to_string(),
            c[0].to_string(),
            c[1].to_string(),
            data.y()[f.index].to_string(),
            f.fitted.to_string(),
            f.residual.to_string(),
        ];
        for k in 0..data.p() {
            row.extend([
                f.params[k].to_string(),
                s.se[k].to_string(),
                s.t[k].to_string(),
            ]);
        }
        row.extend([s.local_r2.to_string(), f.influence.to_string()]);
        w.write_record(&row)?;
    }
    Ok(w.into_inner()?)
}

/// With --spherical: every longitude in [-360, 360] and latitude in [-90, 90], else an
/// error naming the file, the column, the row and the value.
fn check_lon_lat(path: &Path, names: &[String], lon: &[f64], lat: &[f64]) -> anyhow::Result<()> {
    for (name, col, limit) in [(&names[0], lon, 360.0), (&names[1], lat, 90.0)] {
        if let Some(i) = col.iter().position(|v| v.abs() > limit) {
            bail!(
                "{}: column `{name}` row {} holds {}; --spherical expects longitude, latitude in degrees (|value| <= {limit})",
                path.display(),
                i + 2,
                col[i]
            );
        }
    }
    Ok(())
}

/// Fits `model` with its local fits on the workers of `args`.
fn fit_on_cluster(
    args: &Args,
    model: &GwrModel,
    settings: &GwrSettings,
) -> anyhow::Result<flus_shared::Result<GwrResult>> {
    use crate::cluster::{gwr_remote, local::LocalWorkers, pool};
    let (_local, addrs, token) = match args.local_workers {
        Some(n) => {
            let lw = LocalWorkers::start(n.max(1), 1, None)?;
            let (a, t) = (lw.addrs.clone(), lw.token.clone());
            (Some(lw), a, t)
        }
        None => (
            None,
            args.workers.clone(),
            super::common::cluster_token(args.token_file.as_deref())?,
        ),
    };
    // local workers on loopback speak plaintext
    let tls = if args.workers.is_empty() {
        pool::Tls::default()
    } else {
        args.tls.tls()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    anyhow::ensure!(
        args.deadline.is_finite() && args.deadline > 0.0,
        "--deadline {}: expected a number of seconds > 0",
        args.deadline
    );
    let deadline = std::time::Duration::from_secs_f64(args.deadline);
    let conns = rt.block_on(async {
        let mut v = Vec::new();
        for a in &addrs {
            v.push(pool::connect(a, &token, deadline, &tls).await?);
        }
        anyhow::Ok(v)
    })?;
    let data = model.data();
    let sample = gwr_remote::GwrSample {
        columns: data.names().to_vec(),
        y_columns: vec![data.y_name().to_string()],
        x: data.design().to_vec(),
        y: data.y().to_vec(),
        coords: data.coords().to_vec(),
        spherical: data.spherical(),
    };
    let cluster = gwr_remote::GwrCluster::new(
        rt.handle().clone(),
        conns,
        deadline,
        format!("gwr-{}", std::process::id()),
        &sample,
    );
    let fitter = gwr_remote::RemoteFitter::new(&cluster, model, 0, (0..data.p()).collect());
    let r = gwr::fit_with(model, &fitter, settings);
    tracing::info!(workers = addrs.len(), traffic = ?cluster.traffic(), "GWR local fits on the cluster");
    cluster.release();
    Ok(r)
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

/// The points of `--csv`: `--y`, the factors `--x` and the coordinates `--coords`
/// (checked as longitude, latitude with --spherical), standardised with --standardize.
fn read_data(args: &Args) -> anyhow::Result<GwrData> {
    let mut names: Vec<&str> = vec![args.y.as_str(), &args.coords[0], &args.coords[1]];
    names.extend(args.x.iter().map(String::as_str));
    let cols = read_columns(&args.csv, &names)?;
    let coords = cols[1]
        .iter()
        .zip(&cols[2])
        .map(|(x, y)| [*x, *y])
        .collect();
    let factors = args
        .x
        .iter()
        .cloned()
        .zip(cols[3..].iter().cloned())
        .collect();
    if args.spherical {
        check_lon_lat(&args.csv, &args.coords, &cols[1], &cols[2])?;
    }
    let mut data = GwrData::new(&args.y, cols[0].clone(), factors, coords)
        .with_context(|| format!("{}", args.csv.display()))?
        .with_spherical(args.spherical);
    if args.standardize {
        data.standardize_factors();
    }
    Ok(data)
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

impl<'a> Summary<'a> {
    /// The summary of the fit `r` of `args`, with the files written.
    fn of(args: &'a Args, r: &'a GwrResult, outputs: Vec<String>) -> Self {
        let d = &r.diagnostics;
        Summary {
            csv: args.csv.display().to_string(),
            y: &args.y,
            names: &r.names,
            kernel: args.kernel.name(),
            adaptive: !args.fixed,
            spherical: args.spherical,
            standardized: args.standardize,
            n: d.n,
            bandwidth: d.bandwidth,
            bandwidth_searched: r.search.is_some(),
            search: r.search.as_ref(),
            aicc: d.aicc,
            aic: d.aic,
            bic: d.bic,
            r2: d.r2,
            adj_r2: d.adj_r2,
            enp: d.tr_s,
            tr_sts: d.tr_sts,
            rss: d.rss,
            sigma: d.sigma,
            coefficients: &r.coefficients,
            ols: OlsJson {
                rss: r.ols.rss,
                aic: r.ols.aic,
                aicc: r.ols.aicc,
                r2: r.ols.r2,
                adj_r2: r.ols.adj_r2,
                sigma: r.ols.sigma,
                params: &r.ols.params,
                se: &r.ols.se,
                t: &r.ols.t,
            },
            params: r.fits.iter().map(|f| f.params.as_slice()).collect(),
            outputs,
        }
    }
}

/// Prints the fit `r` of `args` as text (without --json).
fn print_text(args: &Args, r: &GwrResult) {
    let d = &r.diagnostics;
    println!(
        "GWR {} ~ {}: n = {}, {} {} bandwidth {}{}",
        args.y,
        args.x.join(" + "),
        d.n,
        if args.fixed { "fixed" } else { "adaptive" },
        args.kernel.name(),
        d.bandwidth,
        if r.search.is_some() {
            " (AICc search)"
        } else {
            ""
        }
    );
    println!(
        "AICc {:.6}  AIC {:.6}  R2 {:.6}  adj. R2 {:.6}  ENP (tr S) {:.6}  sigma {:.6}",
        d.aicc, d.aic, d.r2, d.adj_r2, d.tr_s, d.sigma
    );
    println!(
        "global OLS: RSS {:.6}  AICc {:.6}  R2 {:.6}",
        r.ols.rss, r.ols.aicc, r.ols.r2
    );
    for c in &r.coefficients {
        println!(
            "{:<20} mean {:>12.6} sd {:>12.6} min {:>12.6} median {:>12.6} max {:>12.6}",
            c.name, c.mean, c.std, c.min, c.median, c.max
        );
    }
}
