//! The validation of `flus run`: the CA over the `[markov]` period in the validation's
//! own session (its own network), and with `--ensemble` its other members, up to
//! `--concurrent-runs` at once (each on its own lane).

use std::path::Path;

use flus_shared::ca;
use flus_shared::config::Study;
use flus_shared::{model, stack};

use super::{free_maxima_here, train_on_workers, ClusterCa, Session, SuitabilitySource};
use crate::cluster::remote::SessionTraffic;
use crate::cluster::train_remote::Trainers;
use crate::run_json::validation::{RangeJson, ValidationEnsembleJson, ValidationJson};

/// The validation on the past period over the cluster, in its own session (its own
/// network, trained on a worker): the validation's JSON (with the run's traffic) and
/// the session's traffic. `drawn` is called once its network's sample is drawn (at
/// once when it trains none).
pub(super) fn validation_stage(
    study: &Study,
    st: &stack::Stack,
    out: &Path,
    (cluster, trainers): (&ClusterCa<'_>, &Trainers),
    forest: Option<&model::Suitability>,
    members: u32,
    drawn: &dyn Fn(),
) -> anyhow::Result<(ValidationJson, Option<SessionTraffic>)> {
    let (mut traffic, mut session, mut ensemble) = (None, None, None);
    // the validation's own ANN (of the `from` map) unless it reads a raster or the
    // forests: trained on a worker, beside the scenarios' network on another
    let cfg = &study.config;
    let trained = if forest.is_none()
        && cfg.suitability.model == flus_shared::config::SuitabilityModel::Ann
        && cfg.ann.validation_suitability.is_none()
        && !st.drivers.is_empty()
    {
        let t = train_on_workers(trainers, study, st, (cfg.markov.from, "validation"), drawn)?;
        Some(model::Suitability {
            values: Vec::new(),
            network: Some(t.network),
            report: Some(t.report),
            leas: None,
        })
    } else {
        // no sample to draw: who waits for it goes on now
        drawn();
        None
    };
    let network_sha256 = match trained.as_ref().and_then(|t| t.network.as_ref()) {
        Some(n) => Some(flus_shared::files::sha256_hex(&serde_json::to_vec(n)?)),
        None => None,
    };
    let v = crate::cmd::validate::validate_with(
        study,
        st,
        out,
        false,
        forest.or(trained.as_ref()),
        |params, input, suit| {
            let source = match &suit.network {
                Some(n) => SuitabilitySource::Network(n),
                None => SuitabilitySource::Given(&suit.values),
            };
            let s = cluster.open(
                "validation",
                input.classes,
                input.restricted,
                (params.k, params.radius()),
                source,
                st,
            )?;
            // the warning the CA loop gives when it holds the suitability, from the maxima
            // the workers returned (or of the given raster)
            let max = match source {
                SuitabilitySource::Given(v) => Some(free_maxima_here(v, st, params.k)),
                SuitabilitySource::Network(_) => s.remote.free_maxima(),
            };
            if let Some(max) = max {
                let (counts, _) =
                    ca::feasibility::class_counts(params.k, input.classes, input.restricted)?;
                ca::warn_low_max_suitability(params, input.demand, &counts, &max);
            }
            let remote = Session::new(s.remote);
            drop(s.padded_start);
            // member 0 is the study seed's run; the others run beside it
            let mut runs = run_members(
                cluster,
                &remote,
                study.config.study.seed,
                params,
                input,
                members,
            )?;
            if members > 1 {
                let maps: Vec<&[u8]> = runs.iter().map(|(r, _)| r.map.as_slice()).collect();
                ensemble = Some(validation_members((study, st), params.k, &maps)?);
            }
            let mut remote = remote.into_inner().unwrap_or_else(|e| e.into_inner());
            remote.release();
            session = Some(remote.session.clone());
            let (res, t) = runs.swap_remove(0);
            traffic = Some(t);
            Ok(res)
        },
    )?;
    let mut v = v.json;
    v.traffic = traffic;
    // the validation network's bits, to compare runs (the same for any worker count)
    v.ann_network_sha256 = network_sha256;
    v.ensemble = ensemble;
    Ok((v, session))
}

/// Members `0..members` of the validation in `session`, up to `--concurrent-runs` at
/// once: member 0 with `params` (label `validation`), member m with
/// [`flus_shared::ensemble::member_seed`] of `seed` (label `validation_m{m}`). Their
/// outputs and traffic in member order.
fn run_members(
    cluster: &ClusterCa<'_>,
    session: &Session<'_>,
    seed: u64,
    params: &ca::CaParams,
    input: &ca::CaInput,
    members: u32,
) -> anyhow::Result<Vec<(ca::CaOutput, crate::cluster::remote::Traffic)>> {
    let mut runs = Vec::with_capacity(members as usize);
    super::concurrent::in_order(
        members as usize,
        cluster.concurrent,
        |m| {
            let (label, p) = match m {
                0 => ("validation".to_string(), params.clone()),
                m => {
                    tracing::info!("validation: ensemble member {} of {members}", m + 1);
                    let seed = flus_shared::ensemble::member_seed(seed, m as u32);
                    (
                        format!("validation_m{m}"),
                        ca::CaParams {
                            seed,
                            ..params.clone()
                        },
                    )
                }
            };
            let (res, t, _) = cluster.run(session, &label, &p, input)?;
            Ok((res, t))
        },
        |_, r| {
            runs.push(r);
            Ok(())
        },
    )?;
    Ok(runs)
}

/// The validation's ensemble: the mean, min and max over the members' maps `maps`
/// (member m run with [`flus_shared::ensemble::member_seed`]) of OA, Kappa and FoM
/// against the later map.
fn validation_members(
    (study, st): (&Study, &stack::Stack),
    k: usize,
    maps: &[&[u8]],
) -> anyhow::Result<ValidationEnsembleJson> {
    use flus_shared::{ensemble, metrics};
    let mk = &study.config.markov;
    let (start, truth) = (&st.maps[&mk.from], &st.maps[&mk.to]);
    let all: Vec<_> = maps
        .iter()
        .map(|m| metrics::compare(start, truth, m, k))
        .collect();
    let range = |members: Vec<f64>| -> anyhow::Result<RangeJson> {
        let s = ensemble::summarize(&members)?;
        Ok(RangeJson {
            mean: s.mean,
            min: s.min,
            max: s.max,
            members,
        })
    };
    // None where a member's metric is undefined (no change observed or simulated)
    let optional = |v: Option<Vec<f64>>| v.map(range).transpose();
    Ok(ValidationEnsembleJson {
        members: maps.len(),
        oa: range(all.iter().map(|m| m.oa).collect())?,
        kappa: optional(all.iter().map(|m| m.kappa).collect())?,
        fom: optional(all.iter().map(|m| m.fom).collect())?,
    })
}
