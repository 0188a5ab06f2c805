//! `flus`: the command line of flus-cluster and its coordinator.
//!
//! Every stage command takes `--json` and then prints exactly one JSON object on stdout;
//! logs go to stderr (`RUST_LOG`, `--log-json`).

mod cluster;
mod cmd;
mod output;
mod report;
mod run_files;
mod run_guard;
mod run_json;

use clap::{Parser, Subcommand};

/// flus: multi-scenario land-use simulation (Markov + FLUS), carbon storage and GWR
/// driver analysis, on one machine or a cluster.
#[derive(Debug, Parser)]
#[command(name = "flus", version, about, propagate_version = true)]
struct Cli {
    /// Logs as JSON lines on stderr (for batch systems).
    #[arg(long, global = true)]
    log_json: bool,
    /// Only warnings and errors on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Markov land demand: transition matrix and demand per scenario.
    Demand(cmd::demand::Args),
    /// Accuracy metrics between a start map, the truth and a simulation.
    Compare(cmd::compare::Args),
    /// Carbon storage like InVEST's carbon model: totals by class and zone, change,
    /// valuation; `flus carbon correct-density` corrects a pools table for precipitation.
    Carbon(Box<cmd::carbon::Args>),
    /// Align raw inputs to the land-use grid: warp rasters, slope and aspect from a DEM,
    /// distance, restriction and zone rasters from vector files.
    Prepare(cmd::prepare::Args),
    /// Geographically weighted regression (GWR driver analysis) of a CSV table.
    Gwr(cmd::gwr::Args),
    /// Health and version of running workers.
    Ping(cmd::ping::Args),
    /// Run the shipped example study (Ben Cat) end to end.
    Demo(cmd::demo::Args),
    /// Validate the CA on the past period (t0 -> t1) against the real t1 map.
    Validate(cmd::validate::Args),
    /// Simulate one scenario to the target year in one process.
    Simulate(cmd::simulate::Args),
    /// The whole pipeline, every scenario, over the cluster (local workers by default).
    Run(cmd::run::Args),
    /// Rebuild report.html (maps, charts, tables) of a `flus run` folder.
    Report(cmd::report::Args),
    /// A large study from a real one: every raster upsampled and mosaicked to N cells.
    MakeStudy(cmd::make_study::Args),
    /// Memory bandwidth, CA cell-updates per second per core, and the wall time and peak
    /// memory of a large generated study with 1 and 2 local workers.
    Bench(cmd::bench::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.log_json, cli.quiet);
    let result = match &cli.command {
        Command::Demand(a) => cmd::demand::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Carbon(a) => cmd::carbon::run(a),
        Command::Prepare(a) => cmd::prepare::run(a),
        Command::Gwr(a) => cmd::gwr::run(a),
        Command::Ping(a) => cmd::ping::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Validate(a) => cmd::validate::run(a),
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::MakeStudy(a) => cmd::make_study::run(a),
        Command::Bench(a) => cmd::bench::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
