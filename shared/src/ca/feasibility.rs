//! Checks of the demand before any work: it sums to the valid cell count, and every
//! growing class can be fed from shrinking classes through allowed conversions on
//! unrestricted cells (a max-flow over classes; paths may pass through intermediate
//! classes, e.g. forest -> cropland -> built-up).

use super::params::CaParams;
use super::INVALID;
use crate::{Error, Result};

/// Per-class counts of valid cells and of valid unrestricted cells.
pub fn class_counts(k: usize, classes: &[u8], restricted: &[bool]) -> Result<(Vec<u64>, Vec<u64>)> {
    let mut all = vec![0u64; k];
    let mut free = vec![0u64; k];
    for (i, (&c, &r)) in classes.iter().zip(restricted).enumerate() {
        if c == INVALID {
            continue;
        }
        if c as usize >= k {
            return Err(Error::Data(format!(
                "class map: cell {i} holds class index {c}, expected 0..{} or {INVALID} (invalid)",
                k - 1
            )));
        }
        all[c as usize] += 1;
        if !r {
            free[c as usize] += 1;
        }
    }
    Ok((all, free))
}

/// Errors unless `demand` has one entry per class, none negative, summing to `valid`.
pub fn check_demand(demand: &[i64], k: usize, valid: u64) -> Result<()> {
    if demand.len() != k {
        return Err(Error::Data(format!(
            "demand has {} classes, expected {k}",
            demand.len()
        )));
    }
    if let Some((i, d)) = demand.iter().enumerate().find(|(_, d)| **d < 0) {
        return Err(Error::Data(format!(
            "demand of class index {i} is {d}, expected >= 0"
        )));
    }
    let sum: i64 = demand.iter().sum();
    if sum != valid as i64 {
        return Err(Error::Data(format!(
            "demand sums to {sum} cells but the map has {valid} valid cells (difference {:+}); \
             the demand must sum to the valid cell count",
            sum - valid as i64
        )));
    }
    Ok(())
}

/// A feasible plan: `flow[c][k]` cells of the original class c become k.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowPlan {
    /// Conversions per (from, to) pair.
    pub flow: Vec<Vec<i64>>,
}

/// The max-flow check (docs/design.md §4 "feasibility first"). Source -> shrinking class c with
/// capacity min(shrink amount, unrestricted cells of c); class c -> class k (c != k, both
/// with a non-zero initial gap) unbounded where cost[c][k] > 0; growing class k -> sink
/// with capacity its gap. Classes with gap 0 never change and cannot be intermediates.
/// Errors naming the classes whose demand cannot be met.
pub fn check_feasible(
    params: &CaParams,
    counts: &[u64],
    free: &[u64],
    demand: &[i64],
) -> Result<FlowPlan> {
    let k = params.k;
    let gap: Vec<i64> = (0..k).map(|c| demand[c] - counts[c] as i64).collect();
    let need: i64 = gap.iter().filter(|g| **g > 0).sum();
    let n = k + 2;
    let (s, t) = (k, k + 1);
    let inf = need.max(1) * 2 + 1;
    let mut cap = vec![vec![0i64; n]; n];
    for c in 0..k {
        if gap[c] < 0 {
            cap[s][c] = (-gap[c]).min(free[c] as i64);
        }
        if gap[c] > 0 {
            cap[c][t] = gap[c];
        }
        for to in 0..k {
            if c != to && gap[c] != 0 && gap[to] != 0 && params.cost[c][to] > 0.0 {
                cap[c][to] = inf;
            }
        }
    }
    let orig = cap.clone();
    let total = max_flow(&mut cap, s, t);
    if total < need {
        return Err(infeasible(params, &gap, free, &orig, &cap, total));
    }
    let mut flow = vec![vec![0i64; k]; k];
    for c in 0..k {
        for to in 0..k {
            if orig[c][to] == inf {
                // Net flow; where both directions exist the residual holds both.
                flow[c][to] = (inf - cap[c][to]).max(0);
            }
        }
    }
    Ok(FlowPlan { flow })
}

/// Edmonds-Karp on the capacity matrix `cap` from `s` to `t`: the maximum flow; `cap`
/// is left as the residual capacities.
fn max_flow(cap: &mut [Vec<i64>], s: usize, t: usize) -> i64 {
    let n = cap.len();
    let mut total = 0i64;
    loop {
        // Breadth-first search for an augmenting path (Edmonds-Karp).
        let mut prev = vec![usize::MAX; n];
        prev[s] = s;
        let mut queue = std::collections::VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            for v in 0..n {
                if prev[v] == usize::MAX && cap[u][v] > 0 {
                    prev[v] = u;
                    queue.push_back(v);
                }
            }
        }
        if prev[t] == usize::MAX {
            break;
        }
        let mut f = i64::MAX;
        let mut v = t;
        while v != s {
            f = f.min(cap[prev[v]][v]);
            v = prev[v];
        }
        let mut v = t;
        while v != s {
            cap[prev[v]][v] -= f;
            cap[v][prev[v]] += f;
            v = prev[v];
        }
        total += f;
    }
    total
}

/// The error of a demand that the flow (`total` of `need`) cannot meet: the growing
/// classes that stay short and the shrinking ones that cannot give their surplus, from
/// the network's capacities before (`orig`) and after (`cap`) the flow.
fn infeasible(
    params: &CaParams,
    gap: &[i64],
    free: &[u64],
    orig: &[Vec<i64>],
    cap: &[Vec<i64>],
    total: i64,
) -> Error {
    let k = params.k;
    let (s, t) = (k, k + 1);
    let need: i64 = gap.iter().filter(|g| **g > 0).sum();
    let short: Vec<String> = (0..k)
        .filter(|&c| gap[c] > 0 && cap[c][t] > 0)
        .map(|c| {
            format!(
                "{} gets {} of its {} cells",
                params.label(c),
                gap[c] - cap[c][t],
                gap[c]
            )
        })
        .collect();
    let stuck: Vec<String> = (0..k)
        .filter(|&c| gap[c] < 0 && orig[s][c] - cap[s][c] < -gap[c])
        .map(|c| {
            format!(
                "{} can give {} of its {} surplus cells ({} unrestricted)",
                params.label(c),
                orig[s][c] - cap[s][c],
                -gap[c],
                free[c]
            )
        })
        .collect();
    Error::Data(format!(
        "infeasible demand: only {total} of the {need} cells that growing classes need can \
         be converted through allowed matrix entries on unrestricted cells; {}{}{}",
        short.join(", "),
        if stuck.is_empty() { "" } else { "; " },
        stuck.join(", ")
    ))
}
