//! `flus compare --start S --truth T --sim M`: accuracy of a simulated map, beside the
//! persistence baseline (M = S).

use std::path::PathBuf;

use flus_shared::metrics::{self, Metrics};
use flus_shared::{raster, stack};

/// Arguments of `flus compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Land use at the start of the period.
    #[arg(long)]
    pub start: PathBuf,
    /// Observed land use at the end of the period.
    #[arg(long)]
    pub truth: PathBuf,
    /// Simulated land use at the end of the period.
    #[arg(long)]
    pub sim: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What `flus compare --json` prints: the simulation's metrics, the class codes in
/// class order, and the persistence baseline's metrics (keys sorted, as always).
#[derive(serde::Serialize)]
struct CompareJson<'a> {
    /// The simulation against the truth.
    #[serde(flatten)]
    simulation: &'a Metrics,
    /// The class codes, in the order of the confusion matrix's rows and columns.
    codes: &'a [i64],
    /// The start map taken as the simulation (nothing changes).
    persistence: &'a Metrics,
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "n/a".into())
}

/// Prints metrics of the simulation and of baselines side by side.
pub fn print_metrics(columns: &[(&str, &Metrics)]) {
    print!("{:<20}", "metric");
    for (n, _) in columns {
        print!(" {n:>12}");
    }
    println!();
    type Row<'a> = (&'a str, &'a dyn Fn(&Metrics) -> String);
    let rows: [Row; 11] = [
        ("OA", &|m| format!("{:.4}", m.oa)),
        ("Kappa", &|m| opt(m.kappa)),
        ("Kloc", &|m| opt(m.kloc)),
        ("Khisto", &|m| opt(m.khisto)),
        ("FoM", &|m| opt(m.fom)),
        ("producer's accuracy", &|m| opt(m.producer_accuracy)),
        ("user's accuracy", &|m| opt(m.user_accuracy)),
        ("hits (B)", &|m| m.hits.to_string()),
        ("misses (A)", &|m| m.misses.to_string()),
        ("wrong hits (C)", &|m| m.wrong_hits.to_string()),
        ("false alarms (D)", &|m| m.false_alarms.to_string()),
    ];
    for (name, f) in rows {
        print!("{name:<20}");
        for (_, m) in columns {
            print!(" {:>12}", f(m));
        }
        println!();
    }
}

/// Runs `flus compare`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let s = stack::read_codes(&args.start)?;
    let t = stack::read_codes(&args.truth)?;
    let m = stack::read_codes(&args.sim)?;
    for other in [&t, &m] {
        raster::check_same_grid(
            &s.info.path,
            &s.info.grid,
            &other.info.path,
            &other.info.grid,
            0.01,
        )
        .map_err(|e| e.with_grid_hint(flus_shared::error::WARP_HINT))?;
    }
    let (codes, maps) = stack::index_maps(&[&s, &t, &m])?;
    let k = codes.len();
    let sim = metrics::compare(&maps[0], &maps[1], &maps[2], k);
    anyhow::ensure!(
        sim.cells > 0,
        "no cell has data in all three maps ({}, {}, {}): expected maps whose data overlap",
        args.start.display(),
        args.truth.display(),
        args.sim.display()
    );
    let persistence = metrics::compare(&maps[0], &maps[1], &maps[0], k);
    if args.json {
        crate::output::print_json_sorted(&CompareJson {
            simulation: &sim,
            codes: &codes,
            persistence: &persistence,
        })?;
    } else {
        println!("{} cells compared; class codes {:?}", sim.cells, codes);
        print_metrics(&[("simulation", &sim), ("persistence", &persistence)]);
        println!("\nconfusion matrix (rows = truth, columns = simulation):");
        for (i, row) in sim.confusion.iter().enumerate() {
            println!("{:>8} {:?}", codes[i], row);
        }
    }
    Ok(())
}
