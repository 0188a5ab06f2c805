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
    let index = study
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
        })?;
    let st = stack::load(&study)?;
    let mk = &study.config.markov;
    let k = study.k();
    let names: Vec<String> = study.class_names();
    let t = markov::transition(&st.maps[&mk.from], &st.maps[&mk.to], k);
    let demands = markov::demand(&study, &t, st.valid_cells())?;
    let (demand, quota) = model::scenario_allocation(
        &study,
        (&st.maps[&mk.to], mk.to),
        &st.restricted,
        &demands[index],
        index,
    )?;
    let out = args.out.clone().unwrap_or_else(|| study.output_dir());
    let pool = common::pool(args.threads)?;
    let (suit, run) = pool.install(|| -> anyhow::Result<_> {
        let what = match study.config.suitability.model {
            SuitabilityModel::Ann => format!("ANN suitability from the {} map", mk.to),
            SuitabilityModel::RandomForest => {
                format!("LEAS random forests of the {} -> {} period", mk.from, mk.to)
            }
        };
        tracing::info!("{what}");
        let ann = crate::output::stage(&what);
        let suit = model::suitability(&study, &st, mk.to)?;
        drop(ann);
        let params = model::ca_params(&study, index);
        let input = CaInput {
            width: st.grid.width,
            height: st.grid.height,
            classes: &st.maps[&mk.to],
            suitability: &suit.values,
            restricted: &st.restricted,
            demand: &demand,
            quota: quota.as_deref(),
        };
        let label = format!("{} {}", args.scenario, mk.final_year());
        let run = ca::run(
            &params,
            &input,
            tiling,
            common::progress_logger(label, params.max_iterations),
        )?;
        Ok((suit, run))
    })?;
    let _writing = crate::output::stage("writing outputs");
    flus_shared::files::ensure_dir(&out)?;
    let suit_path = out.join(format!("suitability_{}.tif", mk.to));
    flus_shared::ann::write_suitability(&suit_path, &st.grid, &suit.values, &names)?;
    outputs::finish_format(&study, &suit_path)?;
    let map_path = out.join(format!("landuse_{}_{}.tif", args.scenario, mk.final_year()));
    outputs::write_landuse(&map_path, &study, &st.grid, &run.map)?;
    let leas_json = match &suit.leas {
        Some(leas) => Some(common::leas_outputs(&out, leas)?),
        None => None,
    };
    let iter_path = out.join(format!("iterations_{}.csv", args.scenario));
    outputs::write_iterations(&iter_path, &study, &run.records)?;
    let j = json!({
        "scenario": args.scenario,
        "target_year": mk.final_year(),
        "classes": names,
        "demand": common::by_class(&names, &demand),
        "final_gap": common::by_class(&names, &run.report.final_gap),
        "unmet": flus_shared::tables::unmet_by_class(&flus_shared::tables::unmet(
            &names,
            &args.scenario,
            &demand,
            &run.report.final_gap,
        )),
        "allocation": study.config.ca.allocation,
        "transitions": quota
            .as_ref()
            .zip(run.report.transitions_done.as_ref())
            .map(|(q, d)| crate::run_json::validation::transitions(&names, q, d)),
        "demand_met": run.report.demand_met,
        "iterations": run.report.iterations,
        "stop_reason": run.report.stop_reason,
        "map": map_path,
        "map_sha256": flus_shared::files::sha256_hex(&run.map),
        "iterations_csv": iter_path,
        "suitability": suit_path,
        "ann": suit.report,
        "random_forest": leas_json,
    });
    if args.json {
        crate::output::print_json(&j)?;
    } else {
        println!(
            "{} {}: {} iterations, stop: {:?}, demand met: {}\nmap: {}",
            args.scenario,
            mk.final_year(),
            run.report.iterations,
            run.report.stop_reason,
            run.report.demand_met,
            map_path.display()
        );
    }
    Ok(())
}
