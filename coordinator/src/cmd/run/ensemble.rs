//! Seed ensembles of `flus run --ensemble N`: every scenario runs N times, member m with
//! the seed [`flus_shared::ensemble::member_seed`] (member 0 is the study's own run and
//! writes the usual files). Members share the session (no tile reloaded, no ANN
//! retrained); what they give is gathered per (scenario, year) as they end: class counts
//! per cell (K bytes per cell) for the frequency rasters, and the carbon storage of each
//! member's map for `carbon_ensemble.csv`.

use crate::run_json::EnsembleMapJson;
use flus_shared::ensemble::{self, CarbonRow, FrequencyCounts};
use flus_shared::tables;

use super::stages::{Shared, StageRun};

/// What the members of one scenario gave, per stage (year).
pub(super) struct Accumulator {
    /// Per stage: class counts per cell over the members.
    counts: Vec<FrequencyCounts>,
    /// Per stage: storage (t) of each member's map, in member order.
    storage: Vec<Vec<f64>>,
    /// Storage (t) of the base map.
    base_t: f64,
}

/// The carbon storage (t) of a map from the workers' counts per (zone, class), as
/// `carbon_storage.csv` computes it.
pub(super) fn storage_t(shared: &Shared<'_>, counts: &tables::ZoneCounts, map: &[u8]) -> f64 {
    let st = shared.st;
    let k = shared.study.k();
    let areas = tables::zone_areas(
        counts,
        map,
        st.zones.as_deref(),
        st.grid.width,
        shared.areas,
    );
    tables::storage_of_areas(
        &tables::class_areas(&areas, k),
        &tables::densities(shared.study),
    )
}

impl Accumulator {
    /// An empty accumulator for `stages` stages; `None` without an ensemble (nothing
    /// is computed then).
    pub fn new(shared: &Shared<'_>, stages: usize) -> Option<Self> {
        (shared.members > 1).then(|| Self {
            counts: (0..stages)
                .map(|_| FrequencyCounts::new(shared.study.k(), shared.base.len()))
                .collect(),
            storage: vec![Vec::new(); stages],
            base_t: storage_t(shared, shared.base_zone_counts, shared.base),
        })
    }

    /// Adds a member's map of stage `s`.
    pub fn add(&mut self, shared: &Shared<'_>, s: usize, run: &StageRun) -> anyhow::Result<()> {
        self.counts[s].add(&run.res.map)?;
        self.storage[s].push(storage_t(shared, &run.counts, &run.res.map));
        Ok(())
    }

    /// Writes the frequency rasters of every stage of `scenario` (`years` in stage
    /// order); returns the `carbon_ensemble.csv` rows and run.json entries of the maps.
    pub fn finish(
        self,
        shared: &Shared<'_>,
        scenario: &str,
        years: &[i32],
    ) -> anyhow::Result<(Vec<CarbonRow>, Vec<EnsembleMapJson>)> {
        let (mut rows, mut maps) = (Vec::new(), Vec::new());
        for ((counts, storage), &year) in self.counts.iter().zip(&self.storage).zip(years) {
            let label = format!("{scenario}_{year}");
            let change = shared.out.join(format!("change_frequency_{label}.tif"));
            let class = shared.out.join(format!("class_frequency_{label}.tif"));
            // the share of members whose map differs from the base map, cell by cell
            ensemble::write_frequencies(
                &change,
                &class,
                &shared.st.grid,
                counts,
                shared.base,
                shared.names,
            )?;
            flus_shared::outputs::finish_format(shared.study, &change)?;
            flus_shared::outputs::finish_format(shared.study, &class)?;
            let changes: Vec<f64> = storage.iter().map(|s| s - self.base_t).collect();
            rows.push(CarbonRow {
                map: label.clone(),
                storage: ensemble::summarize(storage)?,
                change: ensemble::summarize(&changes)?,
            });
            maps.push(EnsembleMapJson {
                label: label.clone(),
                scenario: scenario.to_string(),
                year,
                members: counts.members() as u32,
                change_frequency: change.file_name().map(|n| n.to_string_lossy().to_string()),
                class_frequency: class.file_name().map(|n| n.to_string_lossy().to_string()),
                storage_t: storage.to_vec(),
            });
        }
        Ok((rows, maps))
    }
}
