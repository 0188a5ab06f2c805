//! `flus`: the command line of flus-cluster and its coordinator.
//!
//! Every stage command takes `--json` and then prints exactly one JSON object on stdout;
//! logs go to stderr (`RUST_LOG`, `--log-json`).

mod cmd;
mod output;

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
    /// Geographically weighted regression (GWR driver analysis) of a CSV table.
    Gwr(cmd::gwr::Args),
    /// Health and version of running workers.
    Ping(cmd::ping::Args),
    /// Run the shipped example study (Ben Cat) end to end.
    Demo(cmd::demo::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.log_json, cli.quiet);
    let result = match &cli.command {
        Command::Demand(a) => cmd::demand::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Gwr(a) => cmd::gwr::run(a),
        Command::Ping(a) => cmd::ping::run(a),
        Command::Demo(a) => cmd::demo::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
