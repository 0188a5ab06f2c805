//! `flus validate STUDY.toml`: the CA from the earlier Markov map to the later one with
//! demand = the later map's counts, compared with the later map, beside the persistence
//! baseline and a random allocation of the same demand.

mod period;

use std::path::PathBuf;

use flus_shared::ca::{self, CaInput};
use flus_shared::config::Study;
use flus_shared::{metrics, model, stack};

use super::common;
use super::compare::print_metrics;
use crate::run_json::validation::ValidationJson;
use period::Period;

/// Arguments of `flus validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The study config (TOML).
    pub study: PathBuf,
    /// Output folder (default: the study's output folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Tiling of the grid, ROWSxCOLS (the result does not depend on it).
    #[arg(long, default_value = "1x1")]
    pub tiles: String,
    /// Threads (the result does not depend on them; default all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The validation of a study.
pub struct Validation {
    /// Its report (`flus validate --json`; with the metrics of the simulation, the
    /// persistence and the random baselines).
    pub json: ValidationJson,
}

/// Runs the validation on a loaded study.
///
/// `run_ca` runs the CA (in this process or over the cluster) with the validation's
/// parameters, input and suitability; everything around it is shared by `flus validate`
/// and `flus run`. With `suitability_here` false the CA's backend computes the
/// suitability itself (the cluster's workers, from the network): only the network is
/// trained, the input's and the [`model::Suitability`]'s values are empty, and no
/// suitability of every cell is held here.
pub fn validate(
    study: &Study,
    st: &stack::Stack,
    out: &std::path::Path,
    suitability_here: bool,
    run_ca: impl FnOnce(&ca::CaParams, &CaInput, &model::Suitability) -> anyhow::Result<ca::CaOutput>,
) -> anyhow::Result<Validation> {
    validate_with(study, st, out, suitability_here, None, run_ca)
}

/// [`validate`] with the validation's suitability already computed (`given`: the LEAS
/// forests of the Markov period, which `flus run` trains once for the validation and the
/// scenarios), or computed here when None.
pub fn validate_with(
    study: &Study,
    st: &stack::Stack,
    out: &std::path::Path,
    suitability_here: bool,
    given: Option<&model::Suitability>,
    run_ca: impl FnOnce(&ca::CaParams, &CaInput, &model::Suitability) -> anyhow::Result<ca::CaOutput>,
) -> anyhow::Result<Validation> {
    let period = Period::of(study, st);
    period.log_source();
    // `[ann] validation_suitability` when given (never the scenarios' raster)
    let computed;
    let suit = match given {
        Some(s) => s,
        None => {
            computed = period.own_suitability(suitability_here)?;
            &computed
        }
    };
    let sim = period.simulate(suit, run_ca)?;
    let scores = period.scores(&sim)?;
    let random_forest = period.write_outputs(out, suit, &sim, &scores)?;
    if !sim.run.report.demand_met {
        tracing::warn!(gap = ?sim.run.report.final_gap, reason = ?sim.run.report.stop_reason, "validation did not reach the demand");
    }
    if let Some(r) = &suit.report {
        tracing::info!(train = r.train_accuracy, holdout = ?r.holdout_accuracy, "ANN accuracy");
    }
    let json = period.report(out, suit, sim, scores, random_forest);
    Ok(Validation { json })
}

/// Cells that change between maps of the validation (valid in all three maps).
#[derive(Debug, PartialEq, Eq)]
pub struct ChangeCounts {
    /// Cells whose simulated class differs from the start map's.
    pub simulated: u64,
    /// Cells whose observed (later map's) class differs from the start map's.
    pub observed: u64,
    /// The observed net change: the sum over classes of the observed gains (end count
    /// minus start count where positive), the fewest cells that reach the later
    /// map's totals.
    pub net: u64,
    /// Simulated conversions per (from, to), K x K row-major, diagonal 0.
    pub pairs: Vec<u64>,
}

impl ChangeCounts {
    /// Counts over the cells valid in `start`, `truth` and `sim`.
    pub fn of(start: &[u8], truth: &[u8], sim: &[u8], k: usize) -> Self {
        let (mut simulated, mut observed) = (0, 0);
        let mut balance = vec![0i64; k];
        let mut pairs = vec![0u64; k * k];
        for ((&a, &b), &s) in start.iter().zip(truth).zip(sim) {
            let (a, b, s) = (a as usize, b as usize, s as usize);
            if a >= k || b >= k || s >= k {
                continue;
            }
            balance[a] -= 1;
            balance[b] += 1;
            observed += (a != b) as u64;
            simulated += (a != s) as u64;
            if a != s {
                pairs[a * k + s] += 1;
            }
        }
        let net = balance.iter().filter(|&&g| g > 0).sum::<i64>() as u64;
        Self {
            simulated,
            observed,
            net,
            pairs,
        }
    }
}

/// Writes the metrics of the simulation and of the persistence and random baselines.
pub fn write_metrics_csv(
    path: &std::path::Path,
    sim: &metrics::Metrics,
    persistence: &metrics::Metrics,
    random: &metrics::Metrics,
) -> anyhow::Result<()> {
    let metrics_csv: Vec<Vec<String>> = [
        ("simulation", sim),
        ("persistence", persistence),
        ("random", random),
    ]
    .iter()
    .map(|(n, m)| {
        let o = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        vec![
            n.to_string(),
            format!("{:.6}", m.oa),
            o(m.kappa),
            o(m.kloc),
            o(m.khisto),
            o(m.fom),
            o(m.producer_accuracy),
            o(m.user_accuracy),
            m.hits.to_string(),
            m.misses.to_string(),
            m.wrong_hits.to_string(),
            m.false_alarms.to_string(),
        ]
    })
    .collect();
    let header: Vec<String> = [
        "map",
        "oa",
        "kappa",
        "kloc",
        "khisto",
        "fom",
        "producer_accuracy",
        "user_accuracy",
        "hits",
        "misses",
        "wrong_hits",
        "false_alarms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    flus_shared::files::write_csv(path, &header, &metrics_csv)?;
    Ok(())
}

/// Runs `flus validate`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let tiling = common::parse_tiling(&args.tiles)?;
    let study = Study::load(&args.study)?;
    let inputs = crate::output::stage("inputs");
    let st = stack::load(&study)?;
    drop(inputs);
    let out = args.out.clone().unwrap_or_else(|| study.output_dir());
    let label = format!("validation {}", study.config.markov.to);
    let v = common::pool(args.threads)?.install(|| {
        validate(&study, &st, &out, true, |params, input, _| {
            Ok(ca::run(
                params,
                input,
                tiling,
                common::progress_logger(label, params.max_iterations),
            )?)
        })
    })?;
    let j = &v.json;
    if args.json {
        crate::output::print_json_sorted(j)?;
    } else {
        print_metrics(&[
            ("simulation", &j.simulation),
            ("persistence", &j.persistence),
            ("random", &j.random),
        ]);
        println!(
            "\n{} iterations, stop: {}, demand met: {}; outputs in {}",
            j.iterations,
            serde_json::to_value(j.stop_reason)?,
            j.demand_met,
            out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_counts_by_hand() {
        // start 0 0 0 1 1 2 255; truth 1 0 0 0 2 2 1; sim 2 1 0 1 1 2 0
        // observed: cells 0, 3, 4 change (3); simulated: cells 0, 1 (2); observed
        // totals start [3, 2, 1] -> truth [2, 2, 2]: gains 1 (class 2) = net 1
        let start = [0u8, 0, 0, 1, 1, 2, 255];
        let truth = [1u8, 0, 0, 0, 2, 2, 1];
        let sim = [2u8, 1, 0, 1, 1, 2, 0];
        let c = ChangeCounts::of(&start, &truth, &sim, 3);
        assert_eq!((c.simulated, c.observed, c.net), (2, 3, 1));
        assert_eq!(c.pairs, vec![0, 1, 1, 0, 0, 0, 0, 0, 0]);
    }
}
