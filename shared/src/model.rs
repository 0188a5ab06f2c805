//! Glue between a study config and the algorithms: ANN settings, suitability for a
//! year (trained or user-supplied), CA parameters of a scenario, demand per scenario.

use crate::ann::{self, AnnSettings, TrainReport};
use crate::ca::CaParams;
use crate::config::{Study, SuitabilityModel};
use crate::error::{Error, Result};
use crate::forest;
use crate::rng::stream;
use crate::stack::Stack;

/// ANN settings from the study's `[ann]`.
pub fn ann_settings(study: &Study) -> AnnSettings {
    AnnSettings::from(&study.config.ann)
}

/// Cell-major suitability (K per cell) and where it came from.
pub struct Suitability {
    /// `cell * K + k`.
    pub values: Vec<f32>,
    /// The trained network (None for a user-supplied raster).
    pub network: Option<ann::Network>,
    /// Training report (None for a user-supplied raster).
    pub report: Option<TrainReport>,
    /// The LEAS forests (`[suitability] model = "random_forest"`), else None.
    pub leas: Option<forest::Leas>,
}

/// LEAS settings from the study's `[random_forest]` (mtry defaults to every driver).
pub fn leas_settings(study: &Study) -> forest::LeasSettings {
    let rf = &study.config.random_forest;
    forest::LeasSettings {
        forest: forest::ForestSettings {
            n_trees: rf.n_trees,
            tree: forest::TreeSettings {
                mtry: rf.mtry.unwrap_or(study.config.drivers.len()),
                max_depth: None,
                min_leaf: 1,
            },
        },
        sample_rate: rf.sample_rate,
    }
}

/// PLUS's LEAS on the Markov period (`[markov] from` -> `to`): a forest per class, its
/// development probability at every valid cell (the suitability the CA reads) and the
/// drivers' contributions.
pub fn forest_suitability(study: &Study, stack: &Stack) -> Result<Suitability> {
    forest_suitability_with(study, stack, &forest::fit)
}

/// [`forest_suitability`] with each class forest fitted by `fit_forest` (the trees
/// grown on the workers by `flus run`; the same bits as [`forest::fit`]).
pub fn forest_suitability_with(
    study: &Study,
    stack: &Stack,
    fit_forest: &forest::FitForest,
) -> Result<Suitability> {
    let mk = &study.config.markov;
    let map = |year: i32| {
        stack
            .maps
            .get(&year)
            .ok_or_else(|| Error::Data(format!("LEAS: no land-use map of {year}")))
    };
    let driver_names: Vec<String> = stack.drivers.iter().map(|d| d.name.clone()).collect();
    let class_names: Vec<String> = study.class_names();
    // finite driver values at every valid cell, each error naming the driver and cell
    ann::Normalisation::fit_layers(&stack.drivers, &driver_names, &stack.mask, stack.grid.width)?;
    let data = forest::LeasData {
        drivers: &stack.drivers,
        driver_names: &driver_names,
        from: map(mk.from)?,
        to: map(mk.to)?,
        restricted: &stack.restricted,
        class_names: &class_names,
        years: (mk.from, mk.to),
    };
    let leas = forest::leas_with(
        &data,
        &leas_settings(study),
        study.config.study.seed,
        fit_forest,
    )?;
    let values = forest::development_probability(&stack.drivers, &stack.mask, &leas)?;
    Ok(Suitability {
        values,
        network: None,
        report: None,
        leas: Some(leas),
    })
}

/// The suitability of the validation (the CA from the `[markov] from` map): the raster
/// of `[ann] validation_suitability` when given, else an ANN trained on that map and the
/// drivers (never the scenarios' `[ann] suitability`, which is of the `to` map).
pub fn validation_suitability(study: &Study, stack: &Stack) -> Result<Suitability> {
    if study.config.suitability.model == SuitabilityModel::RandomForest {
        return forest_suitability(study, stack);
    }
    let from = study.config.markov.from;
    match &study.config.ann.validation_suitability {
        Some(p) => read_given(study, stack, p),
        None if stack.drivers.is_empty() && study.config.ann.suitability.is_some() => {
            Err(Error::Config {
                file: study.file.clone(),
                key: "ann.validation_suitability".into(),
                message: format!(
                    "the validation simulates from the {from} map: give its K-band suitability raster here (no driver to train an ANN on, and [ann] suitability is the scenarios'), or skip the validation (--no-validation)"
                ),
            })
        }
        None => trained_suitability(study, stack, from),
    }
}

/// An ANN trained on the map of `year` and the drivers, and its suitability.
fn trained_suitability(study: &Study, stack: &Stack, year: i32) -> Result<Suitability> {
    let trained = train(study, stack, year)?;
    let values = ann::suitability(&stack.drivers, &stack.mask, &trained.network)?;
    Ok(Suitability {
        values,
        network: Some(trained.network),
        report: Some(trained.report),
        leas: None,
    })
}

/// Reads a user-supplied K-band suitability raster `p` (relative to the study file).
fn read_given(study: &Study, stack: &Stack, p: &std::path::Path) -> Result<Suitability> {
    let path = study.resolve(p);
    let class_names: Vec<String> = study.class_names();
    let (values, _check) = ann::read_suitability(
        &path,
        &stack.reference,
        &stack.grid,
        &class_names,
        &stack.mask,
        study.config.study.grid_tolerance,
    )?;
    Ok(Suitability {
        values,
        network: None,
        report: None,
        leas: None,
    })
}

/// Suitability for simulating from the map of `year`: an ANN trained on that map and the
/// drivers, or the raster given in `[ann] suitability`.
///
/// With `[suitability] model = "random_forest"`, PLUS's LEAS forests of the Markov
/// period instead ([`forest_suitability`]; `year` is then not used).
pub fn suitability(study: &Study, stack: &Stack, year: i32) -> Result<Suitability> {
    if study.config.suitability.model == SuitabilityModel::RandomForest {
        return forest_suitability(study, stack);
    }
    if let Some(p) = &study.config.ann.suitability {
        return read_given(study, stack, p);
    }
    trained_suitability(study, stack, year)
}

/// The ANN of [`suitability`] without the suitability of every cell: trained on the map
/// of `year` and the drivers (the caller computes suitability where and when it needs
/// it, e.g. a block of rows at a time). An error when the study has no driver.
pub fn train(study: &Study, stack: &Stack, year: i32) -> Result<ann::TrainedAnn> {
    ann::fit(
        &training_set(study, stack, year)?,
        &ann_settings(study),
        study.config.study.seed,
    )
}

/// The first half of [`train`] ([`ann::prepare`]): the normalised rows of the sample
/// drawn from the map of `year`, ready for [`ann::fit`] here or on a worker.
pub fn training_set(study: &Study, stack: &Stack, year: i32) -> Result<ann::TrainingSet> {
    if stack.drivers.is_empty() {
        return Err(Error::Config {
            file: study.file.clone(),
            key: "drivers".into(),
            message: "no driver given and no [ann] suitability raster: one of them is needed"
                .into(),
        });
    }
    let classes = stack
        .maps
        .get(&year)
        .ok_or_else(|| Error::Data(format!("no land-use map of {year}")))?;
    let driver_names: Vec<String> = stack.drivers.iter().map(|d| d.name.clone()).collect();
    let class_names: Vec<String> = study.class_names();
    let data = ann::TrainingData {
        drivers: &stack.drivers,
        driver_names: &driver_names,
        classes,
        class_names: &class_names,
        width: stack.grid.width,
    };
    ann::prepare(&data, &ann_settings(study), study.config.study.seed)
}

/// CA parameters of scenario `index` (its conversion matrix; the validation run uses
/// the matrix that allows every conversion the data shows, see [`validation_params`]),
/// run from the base map (stage 0).
pub fn ca_params(study: &Study, index: usize) -> CaParams {
    stage_params(study, index, 0)
}

/// CA parameters of scenario `index` in stage `stage` of its staged years (0: from the
/// base map): those of [`ca_params`] with the stage's own random stream
/// ([`stream::ca_scenario`]).
pub fn stage_params(study: &Study, index: usize, stage: usize) -> CaParams {
    let cfg = &study.config;
    let sc = &cfg.scenarios[index];
    let mut p = CaParams::new(
        cfg.classes.iter().map(|c| c.weight).collect(),
        sc.matrix.clone(),
        cfg.study.seed,
    );
    p.neighbourhood = cfg.ca.neighbourhood;
    p.max_iterations = cfg.ca.max_iterations;
    p.accelerate = cfg.ca.accelerate;
    p.stall_iterations = cfg.ca.stall_iterations;
    p.stream = stream::ca_scenario(index, stage);
    p.names = cfg.classes.iter().map(|c| c.name.clone()).collect();
    p.best_effort = cfg.ca.unmet == crate::config::Unmet::BestEffort;
    p.patches = cfg.ca.patches.map(|c| c.patches());
    p
}

/// Demand of the validation run: the later map's counts; where a class cannot reach
/// them because its cells are restricted (they never change), it keeps its restricted
/// cells and the class named in `[validation] absorb` takes the difference.
pub fn validation_demand(study: &Study, stack: &Stack) -> Result<Vec<i64>> {
    let mk = &study.config.markov;
    let k = study.k();
    let mut demand: Vec<i64> = stack.counts(mk.to, k).iter().map(|&c| c as i64).collect();
    let start = &stack.maps[&mk.from];
    let mut fixed = vec![0i64; k];
    for (i, &c) in start.iter().enumerate() {
        if (c as usize) < k && stack.restricted[i] {
            fixed[c as usize] += 1;
        }
    }
    let mut excess = 0i64;
    let mut clamped = Vec::new();
    for c in 0..k {
        if demand[c] < fixed[c] {
            excess += fixed[c] - demand[c];
            clamped.push(format!(
                "{} ({} restricted cells, {} in {})",
                study.config.classes[c].name, fixed[c], demand[c], mk.to
            ));
            demand[c] = fixed[c];
        }
    }
    if excess > 0 {
        let absorb = study
            .config
            .validation
            .absorb
            .as_ref()
            .and_then(|a| study.class_index(a));
        let Some(a) = absorb else {
            return Err(Error::Config {
                file: study.file.clone(),
                key: "validation.absorb".into(),
                message: format!(
                    "the {} map asks restricted cells to change: {}; name the class that gives up these {excess} cells with [validation] absorb = \"NAME\"",
                    mk.to,
                    clamped.join(", ")
                ),
            });
        };
        demand[a] -= excess;
        tracing::info!(absorb = %study.config.classes[a].name, excess, "validation demand: restricted cells kept");
    }
    Ok(demand)
}

/// CA parameters of the validation run (t0 -> t1), stream `CA_BASE`. The observed
/// period is not a planning scenario: a conversion is allowed exactly when it happened
/// in the period (transition count > 0), so e.g. built-up that never turned back into
/// anything stays built-up.
pub fn validation_params(study: &Study, transition_counts: &[Vec<u64>]) -> CaParams {
    let cfg = &study.config;
    let cost = transition_counts
        .iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(|(j, &n)| if i == j || n > 0 { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    let mut p = CaParams::new(
        cfg.classes.iter().map(|c| c.weight).collect(),
        cost,
        cfg.study.seed,
    );
    p.neighbourhood = cfg.ca.neighbourhood;
    p.max_iterations = cfg.ca.max_iterations;
    p.accelerate = cfg.ca.accelerate;
    p.stall_iterations = cfg.ca.stall_iterations;
    p.stream = stream::CA_BASE;
    p.names = cfg.classes.iter().map(|c| c.name.clone()).collect();
    p.patches = cfg.ca.patches.map(|c| c.patches());
    p.best_effort = cfg.ca.unmet == crate::config::Unmet::BestEffort;
    p
}

/// The validation's off-diagonal t0 -> t1 counts over the unrestricted cells (K x K,
/// row-major; restricted cells never change, so their observed changes are left out).
pub fn observed_quotas(study: &Study, stack: &Stack) -> Vec<u64> {
    let mk = &study.config.markov;
    let k = study.k();
    let (start, end) = (&stack.maps[&mk.from], &stack.maps[&mk.to]);
    let mut q = vec![0u64; k * k];
    for ((&a, &b), &r) in start.iter().zip(end).zip(&stack.restricted) {
        let (a, b) = (a as usize, b as usize);
        if a < k && b < k && a != b && !r {
            q[a * k + b] += 1;
        }
    }
    q
}

/// Demand and (transition mode) quotas of the validation: `[ca] allocation = "net"`
/// gives [`validation_demand`] and no quotas; `"transitions"` the observed counts of
/// [`observed_quotas`] and the class totals they lead to.
pub fn validation_allocation(study: &Study, stack: &Stack) -> Result<(Vec<i64>, Option<Vec<u64>>)> {
    if study.config.ca.allocation == crate::config::Allocation::Net {
        return Ok((validation_demand(study, stack)?, None));
    }
    let mk = &study.config.markov;
    let q = observed_quotas(study, stack);
    let start = stack.counts(mk.from, study.k());
    Ok((crate::ca::quota::demand_of(&q, &start), Some(q)))
}

/// Demand and (transition mode) quotas of scenario `index` from its start map `base`
/// of year `from_year` (with the `restricted` mask) and its Markov demand `d` at
/// `d.year`: `[ca] allocation = "net"` gives `d`'s cells and no quotas;
/// `"transitions"` the transition counts of the start map's classes projected over
/// `from_year -> d.year` ([`crate::markov::transition_counts`]; a stage of staged
/// years projects from the map it starts from over its own span) and the class totals
/// they lead to. Quotas that ask a class for more cells than it has unrestricted are
/// refused naming the scenario, unless `[ca] unmet = "best_effort"`.
pub fn scenario_allocation(
    study: &Study,
    (base, from_year): (&[u8], i32),
    restricted: &[bool],
    d: &crate::markov::ScenarioDemand,
    index: usize,
) -> Result<(Vec<i64>, Option<Vec<u64>>)> {
    let net: Vec<i64> = d.cells.iter().map(|&c| c as i64).collect();
    if study.config.ca.allocation == crate::config::Allocation::Net {
        return Ok((net, None));
    }
    let sc = &study.config.scenarios[index];
    let Some(p) = &d.probabilities else {
        return Err(Error::Config {
            file: study.file.clone(),
            key: format!("scenarios.{}.demand", sc.name),
            message: "[ca] allocation = \"transitions\" needs the Markov transition counts, \
                      but this scenario gives an explicit demand (class totals only); remove \
                      its demand table or use allocation = \"net\""
                .into(),
        });
    };
    let k = study.k();
    let mut start = vec![0u64; k];
    for &c in base {
        if (c as usize) < k {
            start[c as usize] += 1;
        }
    }
    let mk = &study.config.markov;
    let steps = (d.year - from_year) as f64 / (mk.to - mk.from) as f64;
    let mut q = crate::markov::transition_counts(&start, p, steps, &sc.matrix);
    (0..k).for_each(|c| q[c * k + c] = 0);
    let (_, free) = crate::ca::feasibility::class_counts(k, base, restricted)?;
    if let Err(e) = crate::ca::quota::check_quotas(&ca_params(study, index), &q, &free) {
        if study.config.ca.unmet == crate::config::Unmet::Error {
            return Err(Error::Config {
                file: study.file.clone(),
                key: format!("scenarios.{}", sc.name),
                message: format!(
                    "[ca] allocation = \"transitions\": {e}; allow fewer conversions in the \
                     scenario's matrix or multipliers, or set [ca] unmet = \"best_effort\""
                ),
            });
        }
    }
    Ok((crate::ca::quota::demand_of(&q, &start), Some(q)))
}
