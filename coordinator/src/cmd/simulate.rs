//! `flus simulate STUDY.toml --scenario NAME`: one scenario from the base map to the
//! target year, in one process (any tiling and thread count give the same bits). With
//! staged years (`[markov] target_years`) it runs directly to the last year, in one
//! stage; `flus run` runs the stages.

use std::path::PathBuf;

use anyhow::Context;
use flus_shared::ca::{self, CaInput};
use flus_shared::config::{Study, SuitabilityModel};
use flus_shared::{markov, model, outputs, stack};
use serde_json::json;

use super::common;

/// Arguments of `flus simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The study config (TOML).
    pub study: PathBuf,
    /// The scenario to simulate.
    #[arg(long)]
    pub scenario: String,
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

/// Runs `flus simulate`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let tiling = common::parse_tiling(&args.tiles)?;
    let study = Study::load(&args.study)?;
    let index = scenario_index(args, &study)?;
    let st = stack::load(&study)?;
    let sc = Scenario {
        args,
        study: &study,
        st: &st,
        index,
        names: study.class_names(),
    };
    let alloc = sc.allocation()?;
    let out = args.out.clone().unwrap_or_else(|| study.output_dir());
    let pool = common::pool(args.threads)?;
    let sim = pool.install(|| sc.simulate(tiling, &alloc))?;
    let _writing = crate::output::stage("writing outputs");
    let written = sc.write_outputs(&out, &sim)?;
    let j = sc.report(&alloc, &sim, &written);
    if args.json {
        crate::output::print_json(&j)?;
    } else {
        let report = &sim.run.report;
        println!(
            "{} {}: {} iterations, stop: {:?}, demand met: {}\nmap: {}",
            args.scenario,
            study.config.markov.final_year(),
            report.iterations,
            report.stop_reason,
            report.demand_met,
            written.map.display()
        );
    }
    Ok(())
}

/// The index of `--scenario` in the study, or an error naming the study's scenarios.
fn scenario_index(args: &Args, study: &Study) -> anyhow::Result<usize> {
    study
        .config
        .scenarios
        .iter()
        .position(|s| s.name == args.scenario)
        .with_context(|| {
            format!(
                "{}: no scenario {:?} (scenarios: {})",
                args.study.display(),
                args.scenario,
                study
                    .config
                    .scenarios
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The scenario being simulated: the state shared by the steps of [`run`].
struct Scenario<'a> {
    args: &'a Args,
    study: &'a Study,
    st: &'a stack::Stack,
    index: usize,
    names: Vec<String>,
}

/// The scenario's demand (net cells per class) and, with quotas, its transitions.
struct Allocation {
    demand: Vec<i64>,
    quota: Option<Vec<u64>>,
}

/// The suitability and the CA's run.
struct Simulated {
    suit: model::Suitability,
    run: ca::CaOutput,
}

/// The files written.
struct Written {
    suitability: PathBuf,
    map: PathBuf,
    iterations: PathBuf,
    random_forest: Option<crate::run_json::suitability::RandomForestJson>,
}

impl Scenario<'_> {
    /// The Markov demand of the scenario from the later map, as the CA allocates it.
    fn allocation(&self) -> anyhow::Result<Allocation> {
        let (study, st) = (self.study, self.st);
        let mk = &study.config.markov;
        let t = markov::transition(&st.maps[&mk.from], &st.maps[&mk.to], study.k());
        let demands = markov::demand(study, &t, st.valid_cells())?;
        let (demand, quota) = model::scenario_allocation(
            study,
            (&st.maps[&mk.to], mk.to),
            &st.restricted,
            &demands[self.index],
            self.index,
        )?;
        Ok(Allocation { demand, quota })
    }

    /// The suitability of the later map, then the CA from it to the target year.
    fn simulate(&self, tiling: ca::Tiling, alloc: &Allocation) -> anyhow::Result<Simulated> {
        let (study, st) = (self.study, self.st);
        let mk = &study.config.markov;
        let what = match study.config.suitability.model {
            SuitabilityModel::Ann => format!("ANN suitability from the {} map", mk.to),
            SuitabilityModel::RandomForest => {
                format!("LEAS random forests of the {} -> {} period", mk.from, mk.to)
            }
        };
        tracing::info!("{what}");
        let ann = crate::output::stage(&what);
        let suit = model::suitability(study, st, mk.to)?;
        drop(ann);
        let params = model::ca_params(study, self.index);
        let input = CaInput {
            width: st.grid.width,
            height: st.grid.height,
            classes: &st.maps[&mk.to],
            suitability: &suit.values,
            restricted: &st.restricted,
            demand: &alloc.demand,
            quota: alloc.quota.as_deref(),
        };
        let label = format!("{} {}", self.args.scenario, mk.final_year());
        let run = ca::run(
            &params,
            &input,
            tiling,
            common::progress_logger(label, params.max_iterations),
        )?;
        Ok(Simulated { suit, run })
    }

    /// Writes the suitability, the map, the LEAS forests' outputs and the iterations.
    fn write_outputs(&self, out: &std::path::Path, sim: &Simulated) -> anyhow::Result<Written> {
        let (study, mk, scenario) = (self.study, &self.study.config.markov, &self.args.scenario);
        flus_shared::files::ensure_dir(out)?;
        let suit_path = out.join(format!("suitability_{}.tif", mk.to));
        flus_shared::ann::write_suitability(
            &suit_path,
            &self.st.grid,
            &sim.suit.values,
            &self.names,
        )?;
        outputs::finish_format(study, &suit_path)?;
        let map_path = out.join(format!("landuse_{}_{}.tif", scenario, mk.final_year()));
        outputs::write_landuse(&map_path, study, &self.st.grid, &sim.run.map)?;
        let random_forest = match &sim.suit.leas {
            Some(leas) => Some(common::leas_outputs(out, leas)?),
            None => None,
        };
        let iter_path = out.join(format!("iterations_{scenario}.csv"));
        outputs::write_iterations(&iter_path, study, &sim.run.records)?;
        Ok(Written {
            suitability: suit_path,
            map: map_path,
            iterations: iter_path,
            random_forest,
        })
    }

    /// The JSON report of the run.
    fn report(&self, alloc: &Allocation, sim: &Simulated, written: &Written) -> serde_json::Value {
        let (names, scenario, run) = (&self.names, &self.args.scenario, &sim.run);
        json!({
            "scenario": scenario,
            "target_year": self.study.config.markov.final_year(),
            "classes": names,
            "demand": common::by_class(names, &alloc.demand),
            "final_gap": common::by_class(names, &run.report.final_gap),
            "unmet": flus_shared::tables::unmet_by_class(&flus_shared::tables::unmet(
                names,
                scenario,
                &alloc.demand,
                &run.report.final_gap,
            )),
            "allocation": self.study.config.ca.allocation,
            "transitions": alloc.quota
                .as_ref()
                .zip(run.report.transitions_done.as_ref())
                .map(|(q, d)| crate::run_json::validation::transitions(names, q, d)),
            "demand_met": run.report.demand_met,
            "iterations": run.report.iterations,
            "stop_reason": run.report.stop_reason,
            "map": written.map,
            "map_sha256": flus_shared::files::sha256_hex(&run.map),
            "iterations_csv": written.iterations,
            "suitability": written.suitability,
            "ann": sim.suit.report,
            "random_forest": written.random_forest,
        })
    }
}
