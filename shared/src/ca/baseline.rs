//! The random-allocation baseline of the validation: the same demand met by converting
//! random convertible cells (valid, unrestricted, allowed by the matrix), in a random
//! order drawn from the counter-based generator's `RANDOM_BASELINE` stream.

use super::feasibility::{check_demand, check_feasible, class_counts};
use super::params::CaParams;
use crate::rng::{stream, CounterRng};
use crate::{Error, Result};

/// Allocates `demand` at random: the per-pair conversion amounts come from the
/// feasibility max-flow (so multi-hop demands such as forest -> cropland -> built-up are
/// met through the intermediate class), the converted cells of each class are its
/// unrestricted cells in ascending order of a random key. Returns the new class map.
pub fn random_allocation(
    params: &CaParams,
    classes: &[u8],
    restricted: &[bool],
    demand: &[i64],
) -> Result<Vec<u8>> {
    params.validate()?;
    if classes.len() != restricted.len() {
        return Err(Error::Data(format!(
            "class map has {} cells but the restriction mask {}",
            classes.len(),
            restricted.len()
        )));
    }
    let k = params.k;
    let (counts, free) = class_counts(k, classes, restricted)?;
    check_demand(demand, k, counts.iter().sum())?;
    let plan = check_feasible(params, &counts, &free, demand)?;
    allocate(params, classes, restricted, &plan.flow)
}

/// The random baseline of transition mode: the cells of every (from, to) pair of
/// `quota` (K x K, row-major) converted at random, drawn as in [`random_allocation`].
pub fn random_transitions(
    params: &CaParams,
    classes: &[u8],
    restricted: &[bool],
    quota: &[u64],
) -> Result<Vec<u8>> {
    params.validate()?;
    let k = params.k;
    if classes.len() != restricted.len() || quota.len() != k * k {
        return Err(Error::Data(format!(
            "random allocation: class map of {} cells, restriction mask of {}, {} quotas for {k} classes",
            classes.len(),
            restricted.len(),
            quota.len()
        )));
    }
    let flow: Vec<Vec<i64>> = (0..k)
        .map(|c| {
            (0..k)
                .map(|to| if c == to { 0 } else { quota[c * k + to] as i64 })
                .collect()
        })
        .collect();
    allocate(params, classes, restricted, &flow)
}

/// Converts, per class c, `flow[c][to]` of its unrestricted cells taken in ascending
/// order of a random key.
fn allocate(
    params: &CaParams,
    classes: &[u8],
    restricted: &[bool],
    flow: &[Vec<i64>],
) -> Result<Vec<u8>> {
    let k = params.k;
    let rng = CounterRng::new(params.seed);
    let mut out = classes.to_vec();
    for c in 0..k {
        let outflow: i64 = flow[c].iter().sum();
        if outflow == 0 {
            continue;
        }
        let mut cells: Vec<(u64, usize)> = classes
            .iter()
            .zip(restricted)
            .enumerate()
            .filter(|(_, (&v, &r))| v as usize == c && !r)
            .map(|(i, _)| {
                let b = rng.block(stream::RANDOM_BASELINE, 0, i as u64, 0);
                (((b[0] as u64) << 32) | b[1] as u64, i)
            })
            .collect();
        if (cells.len() as i64) < outflow {
            return Err(Error::Data(format!(
                "random allocation: class index {c} must give {outflow} cells but has only {} unrestricted",
                cells.len()
            )));
        }
        cells.sort_unstable();
        let mut it = cells.into_iter();
        for (to, &f) in flow[c].iter().enumerate() {
            for (_, i) in it.by_ref().take(f as usize) {
                out[i] = to as u8;
            }
        }
    }
    Ok(out)
}
