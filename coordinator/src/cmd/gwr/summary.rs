//! What `flus gwr` reports: the JSON summary, the table of the points and the text.

use flus_shared::gwr::{self, GwrModel, GwrResult};
use serde::Serialize;

use super::Args;

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
pub(super) struct Summary<'a> {
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

impl<'a> Summary<'a> {
    /// The summary of the fit `r` of `args`, with the files written.
    pub(super) fn of(args: &'a Args, r: &'a GwrResult, outputs: Vec<String>) -> Self {
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

pub(super) fn points_csv(model: &GwrModel, r: &GwrResult) -> anyhow::Result<Vec<u8>> {
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

/// Prints the fit `r` of `args` as text (without --json).
pub(super) fn print_text(args: &Args, r: &GwrResult) {
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
