//! `flus validate STUDY.toml`: the CA from the earlier Markov map to the later one with
//! demand = the later map's counts, compared with the later map, beside the persistence
//! baseline and a random allocation of the same demand.

use std::path::PathBuf;

use flus_shared::ca::{self, CaInput};
use flus_shared::config::{Study, SuitabilityModel};
use flus_shared::{metrics, model, outputs, stack};

use super::common;
use super::compare::print_metrics;
use crate::run_json::validation::{transitions, ChangeMapsJson, ValidationJson};

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

/// The study, its maps and the two maps of the validation period (`[markov] from` ->
/// `to`): the state shared by the steps of [`validate_with`].
struct Period<'a> {
    study: &'a Study,
    st: &'a stack::Stack,
    start: &'a [u8],
    truth: &'a [u8],
    k: usize,
}

/// The CA's run on the period with what it was given.
struct Simulated {
    params: ca::CaParams,
    demand: Vec<i64>,
    quota: Option<Vec<u64>>,
    run: ca::CaOutput,
}

/// The metrics of the simulated map and of the two baselines against the later map.
struct Scores {
    sim: metrics::Metrics,
    persistence: metrics::Metrics,
    random: metrics::Metrics,
}

impl<'a> Period<'a> {
    fn of(study: &'a Study, st: &'a stack::Stack) -> Self {
        let mk = &study.config.markov;
        Self {
            study,
            st,
            start: &st.maps[&mk.from],
            truth: &st.maps[&mk.to],
            k: study.k(),
        }
    }

    /// Logs where the validation's suitability comes from.
    fn log_source(&self) {
        let mk = &self.study.config.markov;
        let forest = self.study.config.suitability.model == SuitabilityModel::RandomForest;
        let given_raster = self.study.config.ann.validation_suitability.is_some();
        tracing::info!(
            "validation {} -> {}: {}",
            mk.from,
            mk.to,
            if forest {
                format!("LEAS random forests of the {} -> {} period", mk.from, mk.to)
            } else if given_raster {
                format!("the given suitability of the {} map", mk.from)
            } else {
                format!("ANN suitability from the {} map", mk.from)
            }
        );
    }

    /// The suitability when none is given: of every cell, or (`suitability_here` false,
    /// an ANN trained on drivers) only the trained network, the values left empty.
    fn own_suitability(&self, suitability_here: bool) -> anyhow::Result<model::Suitability> {
        let (study, st) = (self.study, self.st);
        let forest = study.config.suitability.model == SuitabilityModel::RandomForest;
        let given_raster = study.config.ann.validation_suitability.is_some();
        if suitability_here || forest || given_raster || st.drivers.is_empty() {
            return Ok(model::validation_suitability(study, st)?);
        }
        let trained = model::train(study, st, study.config.markov.from)?;
        Ok(model::Suitability {
            values: Vec::new(),
            network: Some(trained.network),
            report: Some(trained.report),
            leas: None,
        })
    }

    /// Runs the CA (`run_ca`) from the start map with the demand of the later one.
    fn simulate(
        &self,
        suit: &model::Suitability,
        run_ca: impl FnOnce(
            &ca::CaParams,
            &CaInput,
            &model::Suitability,
        ) -> anyhow::Result<ca::CaOutput>,
    ) -> anyhow::Result<Simulated> {
        let st = self.st;
        let (demand, quota) = model::validation_allocation(self.study, st)?;
        let transition = flus_shared::markov::transition(self.start, self.truth, self.k);
        let params = model::validation_params(self.study, &transition.counts);
        // Without the suitability here, the low-suitability warning that the CA loop gives
        // when it holds the suitability is `run_ca`'s: the cluster's session warns from the
        // maxima its workers return with their tiles' suitability.
        let input = CaInput {
            width: st.grid.width,
            height: st.grid.height,
            classes: self.start,
            suitability: &suit.values,
            restricted: &st.restricted,
            demand: &demand,
            quota: quota.as_deref(),
        };
        let run = run_ca(&params, &input, suit)?;
        Ok(Simulated {
            params,
            demand,
            quota,
            run,
        })
    }

    /// The simulation's, the persistence's and a random allocation's metrics.
    fn scores(&self, sim: &Simulated) -> anyhow::Result<Scores> {
        let (start, truth, k) = (self.start, self.truth, self.k);
        let restricted = &self.st.restricted;
        let simulation = metrics::compare(start, truth, &sim.run.map, k);
        let persistence = metrics::compare(start, truth, start, k);
        let random_map = match &sim.quota {
            None => ca::random_allocation(&sim.params, start, restricted, &sim.demand)?,
            Some(q) => ca::baseline::random_transitions(&sim.params, start, restricted, q)?,
        };
        let random = metrics::compare(start, truth, &random_map, k);
        Ok(Scores {
            sim: simulation,
            persistence,
            random,
        })
    }

    /// Writes the simulated map, the iterations, the change maps, the LEAS forests'
    /// outputs (returned) and the metrics into `out`.
    fn write_outputs(
        &self,
        out: &std::path::Path,
        suit: &model::Suitability,
        sim: &Simulated,
        scores: &Scores,
    ) -> anyhow::Result<Option<crate::run_json::suitability::RandomForestJson>> {
        let (study, st, to) = (self.study, self.st, self.study.config.markov.to);
        flus_shared::files::ensure_dir(out)?;
        outputs::write_landuse(
            &out.join(format!("validation_{to}.tif")),
            study,
            &st.grid,
            &sim.run.map,
        )?;
        outputs::write_iterations(
            &out.join("validation_iterations.csv"),
            study,
            &sim.run.records,
        )?;
        // where the change is, observed and simulated, and the figure of merit's components
        let maps = [self.start, self.truth, &sim.run.map];
        flus_shared::change_maps::write(study, out, to, &st.grid, maps)?;
        let random_forest = match &suit.leas {
            Some(leas) => Some(common::leas_outputs(out, leas)?),
            None => None,
        };
        write_metrics_csv(
            &out.join("validation_metrics.csv"),
            &scores.sim,
            &scores.persistence,
            &scores.random,
        )?;
        Ok(random_forest)
    }

    /// The validation's report.
    fn report(
        &self,
        out: &std::path::Path,
        suit: &model::Suitability,
        sim: Simulated,
        scores: Scores,
        random_forest: Option<crate::run_json::suitability::RandomForestJson>,
    ) -> ValidationJson {
        let (study, mk) = (self.study, &self.study.config.markov);
        let names: Vec<String> = study.class_names();
        let run = &sim.run;
        let change = ChangeCounts::of(self.start, self.truth, &run.map, self.k);
        let [observed, simulated, components] = flus_shared::change_maps::paths(out, mk.to);
        let name = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().to_string());
        ValidationJson {
            simulation: scores.sim,
            persistence: scores.persistence,
            random: scores.random,
            allocation: study.config.ca.allocation,
            gross_change_simulated: change.simulated,
            gross_change_observed: change.observed,
            net_change: change.net,
            transitions: sim
                .quota
                .as_ref()
                .map(|q| transitions(&names, q, &change.pairs)),
            demand_met: run.report.demand_met,
            final_gap: common::by_class(&names, &run.report.final_gap),
            iterations: run.report.iterations as u64,
            map_sha256: flus_shared::files::sha256_hex(&run.map),
            stop_reason: run.report.stop_reason,
            // PLUS's landscape figures: patches of the new land per class, observed and
            // simulated
            patches: Some(flus_shared::landscape::validation_json(
                &names,
                self.start,
                self.truth,
                &run.map,
                self.st.grid.width,
            )),
            // whether the CA seeded random patches (`[ca] patches`, PLUS's CARS), and with what
            ca_patches: study.config.ca.patches,
            maps: Some(ChangeMapsJson {
                observed_change: name(&observed),
                simulated_change: name(&simulated),
                components: name(&components),
            }),
            from: mk.from,
            to: mk.to,
            classes: names,
            ann: suit.report.clone(),
            random_forest,
            mean_proposals_per_iteration: mean_proposals(&run.records),
            traffic: None,
            ann_network_sha256: None,
            ensemble: None,
        }
    }
}

/// The mean number of proposals per iteration of the CA (0 without iterations).
fn mean_proposals(records: &[ca::IterationRecord]) -> f64 {
    if records.is_empty() {
        0.0
    } else {
        records.iter().map(|r| r.proposals as f64).sum::<f64>() / records.len() as f64
    }
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
