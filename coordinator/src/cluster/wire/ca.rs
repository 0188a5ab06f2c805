//! Conversions between the CA's types and the wire messages of the remote CA.

use flus_proto::v1::{CellChanges, PatchParams, StepParams as PStep, Threshold};
use flus_shared::ca::{self, CaParams, Proposal};

/// The step parameters of iteration `step` of a run with `params`, as sent with Propose.
pub(crate) fn step_message(params: &CaParams, step: &ca::StepParams) -> PStep {
    PStep {
        iteration: step.iteration,
        seed: params.seed,
        stream: params.stream,
        neighbourhood: params.neighbourhood as u32,
        weights: params.weights.clone(),
        cost: params.cost.iter().flatten().copied().collect(),
        inertia: step.inertia.clone(),
        closed_in: step.closed_in.clone(),
        closed_out: step.closed_out.clone(),
        closed_pairs: step.closed_pairs.clone(),
        patches: params.patches.map(|p| PatchParams {
            threshold: p.threshold,
            decay: p.decay,
            seeds: p.seeds,
        }),
        patch_level: step.patch_level,
        transitions: step.transitions,
    }
}

/// Acceptance thresholds as sent with Commit (`open` for [`ca::OPEN`]).
pub(crate) fn thresholds(v: &[ca::Key]) -> Vec<Threshold> {
    v.iter()
        .map(|&(key, cell)| Threshold {
            key,
            cell,
            open: (key, cell) == ca::OPEN,
        })
        .collect()
}

/// Cell changes `(global cell, class)` as sent with Propose and ResetClasses.
pub(crate) fn changes(v: &[(u64, u8)]) -> CellChanges {
    let (cells, classes) = v.iter().copied().unzip();
    CellChanges { cells, classes }
}

/// The proposals of an ExactKeys reply.
pub(crate) fn proposals(v: Vec<flus_proto::v1::Proposal>) -> impl Iterator<Item = Proposal> {
    v.into_iter().map(|p| Proposal {
        cell: p.cell,
        key: p.key,
        from: p.from as u8,
        to: p.to as u8,
    })
}
