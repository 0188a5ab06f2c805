//! The GWR driver analysis of `flus run` (docs/design.md §8), its local fits on the
//! workers or on this machine.

use std::path::Path;
use std::time::Duration;

use flus_shared::config::Study;
use flus_shared::stack;

use super::SuitabilitySource;
use crate::cluster::{gwr_remote, pool};
use crate::run_json::gwr::{FitsOn, GwrJson};

/// The GWR driver analysis (docs/design.md §8): each class's suitability (from the
/// network or the given raster, at the sampled `cells` only) and each scenario's carbon change (`carbon`: scenario minus
/// the base map, from the class pools, at the same cells) on the drivers at the seeded
/// sample, with the local fits on the workers when `cluster` is given, else on this
/// machine.
#[allow(clippy::too_many_arguments)]
pub(super) fn driver_analysis(
    study: &Study,
    st: &stack::Stack,
    source: SuitabilitySource<'_>,
    cells: Vec<usize>,
    carbon: &[(String, Vec<f64>)],
    out: &Path,
    cluster: Option<(&tokio::runtime::Runtime, &[pool::WorkerConn])>,
    deadline: Duration,
) -> anyhow::Result<GwrJson> {
    use flus_shared::analysis;
    let k = study.k();
    let suitability = match source {
        // the sampled cells are valid: their suitability is the network's on their drivers
        SuitabilitySource::Network(network) => {
            let drivers: Vec<Vec<f32>> = (0..st.drivers.len())
                .map(|j| flus_shared::layers::values_at(&st.drivers, j, &cells))
                .collect::<flus_shared::Result<_>>()?;
            let drivers: Vec<&[f32]> = drivers.iter().map(|d| d.as_slice()).collect();
            let mut suitability = vec![0f32; cells.len() * network.n_classes()];
            flus_shared::ann::suitability_window(
                &drivers,
                &vec![true; cells.len()],
                network,
                &mut suitability,
            )?;
            suitability
        }
        SuitabilitySource::Given(values) => cells
            .iter()
            .flat_map(|&i| values[i * k..(i + 1) * k].iter().copied())
            .collect(),
    };
    let sample = analysis::driver_sample_at(study, st, &suitability, carbon, cells)?;
    let Some((rt, conns)) = cluster else {
        return Ok(GwrJson {
            analysis: analysis::run_with(study, st, &sample, &analysis::LocalSource, out)?,
            fits_on: Some(FitsOn::Coordinator),
            cluster: None,
        });
    };
    let remote = gwr_remote::GwrCluster::new(
        rt.handle().clone(),
        conns.to_vec(),
        deadline,
        format!("gwr-{}", std::process::id()),
        &gwr_remote::GwrSample {
            columns: sample.columns.clone(),
            y_columns: sample.y_columns.clone(),
            x: sample.x.clone(),
            y: sample.y.clone(),
            coords: sample.coords.clone(),
            spherical: sample.spherical,
        },
    );
    let result = analysis::run_with(study, st, &sample, &remote, out);
    remote.release();
    Ok(GwrJson {
        analysis: result?,
        fits_on: Some(FitsOn::Workers),
        cluster: Some(remote.traffic()),
    })
}
