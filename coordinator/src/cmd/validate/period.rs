//! The steps of [`super::validate_with`] on the validation period.

use flus_shared::ca::{self, CaInput};
use flus_shared::config::{Study, SuitabilityModel};
use flus_shared::{metrics, model, outputs, stack};

use super::{common, write_metrics_csv, ChangeCounts};
use crate::run_json::validation::{transitions, ChangeMapsJson, ValidationJson};

/// The study, its maps and the two maps of the validation period (`[markov] from` ->
/// `to`): the state shared by the steps of [`validate_with`].
pub(super) struct Period<'a> {
    study: &'a Study,
    st: &'a stack::Stack,
    start: &'a [u8],
    truth: &'a [u8],
    k: usize,
}

/// The CA's run on the period with what it was given.
pub(super) struct Simulated {
    params: ca::CaParams,
    demand: Vec<i64>,
    quota: Option<Vec<u64>>,
    /// The CA's output.
    pub(super) run: ca::CaOutput,
}

/// The metrics of the simulated map and of the two baselines against the later map.
pub(super) struct Scores {
    sim: metrics::Metrics,
    persistence: metrics::Metrics,
    random: metrics::Metrics,
}

impl<'a> Period<'a> {
    pub(super) fn of(study: &'a Study, st: &'a stack::Stack) -> Self {
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
    pub(super) fn log_source(&self) {
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
    pub(super) fn own_suitability(
        &self,
        suitability_here: bool,
    ) -> anyhow::Result<model::Suitability> {
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
    pub(super) fn simulate(
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
    pub(super) fn scores(&self, sim: &Simulated) -> anyhow::Result<Scores> {
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
    pub(super) fn write_outputs(
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
    pub(super) fn report(
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
