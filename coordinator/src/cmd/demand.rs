//! `flus demand STUDY.toml`: Markov transition matrix and demand per scenario.

use std::path::PathBuf;

use anyhow::Context;
use flus_shared::config::Study;
use flus_shared::{files, markov, stack};
use serde_json::{json, Map, Value};

/// Arguments of `flus demand`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The study config (TOML).
    pub study: PathBuf,
    /// Output folder for the CSV tables (default: the study's output folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Everything `flus demand` computes, for reuse by other stages.
pub struct DemandResult {
    /// The study.
    pub study: Study,
    /// Its raster stack.
    pub stack: stack::Stack,
    /// Transition t0 -> t1.
    pub transition: markov::Transition,
    /// Demand per scenario at the final target year.
    pub scenarios: Vec<markov::ScenarioDemand>,
    /// Demand `[stage][scenario]` at every target year (one stage for `target_year`).
    pub stages: Vec<Vec<markov::ScenarioDemand>>,
}

/// Loads the study and computes the transition and the demand.
pub fn compute(path: &std::path::Path) -> anyhow::Result<DemandResult> {
    let study = Study::load(path)?;
    let stack = stack::load(&study)?;
    let k = study.k();
    let mk = &study.config.markov;
    let t0 = &stack.maps[&mk.from];
    let t1 = &stack.maps[&mk.to];
    let transition = markov::transition(t0, t1, k);
    let valid = stack.valid_cells();
    let stages = markov::stage_demands(&study, &transition, valid)?;
    let scenarios = stages.last().cloned().unwrap_or_default();
    Ok(DemandResult {
        study,
        stack,
        transition,
        scenarios,
        stages,
    })
}

/// Writes `transition_counts.csv`, `transition_probabilities.csv` and `demand.csv`.
pub fn write_tables(r: &DemandResult, dir: &std::path::Path) -> anyhow::Result<()> {
    let names: Vec<String> = r
        .study
        .config
        .classes
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let mut header = vec!["from \\ to".to_string()];
    header.extend(names.iter().cloned());
    let rows = |m: &dyn Fn(usize, usize) -> String| -> Vec<Vec<String>> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut row = vec![n.clone()];
                row.extend((0..names.len()).map(|j| m(i, j)));
                row
            })
            .collect()
    };
    files::write_csv(
        &dir.join("transition_counts.csv"),
        &header,
        &rows(&|i, j| r.transition.counts[i][j].to_string()),
    )?;
    files::write_csv(
        &dir.join("transition_probabilities.csv"),
        &header,
        &rows(&|i, j| format!("{:.6}", r.transition.probabilities[i][j])),
    )?;
    let mk = &r.study.config.markov;
    let mut dh = vec![
        "class".to_string(),
        format!("cells_{}", mk.from),
        format!("cells_{}", mk.to),
    ];
    // one column per scenario and target year: `{scenario}_{year}`
    let columns: Vec<&markov::ScenarioDemand> = (0..r.scenarios.len())
        .flat_map(|i| r.stages.iter().filter_map(move |s| s.get(i)))
        .collect();
    dh.extend(columns.iter().map(|s| format!("{}_{}", s.name, s.year)));
    let drows: Vec<Vec<String>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut row = vec![
                n.clone(),
                r.transition.start_counts[i].to_string(),
                r.transition.end_counts[i].to_string(),
            ];
            row.extend(columns.iter().map(|s| s.cells[i].to_string()));
            row
        })
        .collect();
    files::write_csv(&dir.join("demand.csv"), &dh, &drows)?;
    Ok(())
}

/// The JSON object of `flus demand --json`.
pub fn to_json(r: &DemandResult) -> Value {
    let names: Vec<&str> = r
        .study
        .config
        .classes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut scen = Map::new();
    let by_name = |cells: &[u64]| -> Map<String, Value> {
        names
            .iter()
            .zip(cells)
            .map(|(n, c)| (n.to_string(), json!(c)))
            .collect()
    };
    for s in &r.scenarios {
        let demand = by_name(&s.cells);
        let stages: Vec<Value> = r
            .stages
            .iter()
            .filter_map(|st| st.iter().find(|d| d.name == s.name))
            .map(|d| json!({ "year": d.year, "demand": by_name(&d.cells), "shares": d.shares }))
            .collect();
        scen.insert(
            s.name.clone(),
            json!({ "method": s.method, "demand": demand, "shares": s.shares, "probabilities": s.probabilities, "stages": stages }),
        );
    }
    let mk = &r.study.config.markov;
    json!({
        "study": r.study.config.study.name,
        "classes": names,
        "from": mk.from,
        "to": mk.to,
        "target_year": mk.final_year(),
        "target_years": mk.years(),
        "valid_cells": r.stack.valid_cells(),
        "transition_counts": r.transition.counts,
        "transition_probabilities": r.transition.probabilities,
        "counts_from": r.transition.start_counts,
        "counts_to": r.transition.end_counts,
        "warped_layers": r.stack.warped,
        "scenarios": scen,
    })
}

/// Prints the transition matrix and the demand table for people.
pub fn print_tables(r: &DemandResult) {
    let names: Vec<&str> = r
        .study
        .config
        .classes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mk = &r.study.config.markov;
    let w = names.iter().map(|n| n.len()).max().unwrap_or(8).max(10);
    println!(
        "{}: {} valid cells; transitions {} -> {}",
        r.study.config.study.name,
        r.stack.valid_cells(),
        mk.from,
        mk.to
    );
    print!("{:>w$}", "from \\ to");
    for n in &names {
        print!(" {n:>w$}");
    }
    println!();
    for (i, n) in names.iter().enumerate() {
        print!("{n:>w$}");
        for j in 0..names.len() {
            print!(
                " {:>w$}",
                format!(
                    "{} ({:.3})",
                    r.transition.counts[i][j], r.transition.probabilities[i][j]
                )
            );
        }
        println!();
    }
    println!();
    print!("{:>w$} {:>w$} {:>w$}", "class", mk.from, mk.to);
    let columns: Vec<&markov::ScenarioDemand> = (0..r.scenarios.len())
        .flat_map(|i| r.stages.iter().filter_map(move |s| s.get(i)))
        .collect();
    for s in &columns {
        print!(" {:>w$}", format!("{} {}", s.name, s.year));
    }
    println!();
    for (i, n) in names.iter().enumerate() {
        print!(
            "{n:>w$} {:>w$} {:>w$}",
            r.transition.start_counts[i], r.transition.end_counts[i]
        );
        for s in &columns {
            print!(" {:>w$}", s.cells[i]);
        }
        println!();
    }
}

/// Runs `flus demand`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let r = compute(&args.study)?;
    let dir = args.out.clone().unwrap_or_else(|| r.study.output_dir());
    write_tables(&r, &dir).with_context(|| format!("writing tables to {}", dir.display()))?;
    if args.json {
        crate::output::print_json(&to_json(&r))?;
    } else {
        print_tables(&r);
        println!("\ntables written to {}", dir.display());
    }
    Ok(())
}
