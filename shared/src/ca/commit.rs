//! Commit: applies the iteration's thresholds to a tile's proposals.

use super::acceptance::Thresholds;
use super::step::Proposal;

/// Appends to `changed` the (global cell index, new class) of every accepted proposal,
/// in the order of `proposals`; returns how many were accepted.
pub fn commit(
    proposals: &[Proposal],
    thresholds: &Thresholds,
    changed: &mut Vec<(u64, u8)>,
) -> u64 {
    let before = changed.len();
    changed.extend(
        proposals
            .iter()
            .filter(|p| thresholds.accepts(p))
            .map(|p| (p.cell, p.to)),
    );
    (changed.len() - before) as u64
}
