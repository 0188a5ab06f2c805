//! Markov land demand (docs/design.md §2): transition counts and probabilities between two
//! maps, projection of class shares in whole steps, scenario changes to the transition
//! matrix, and demand in cells rounded by largest remainder so it sums exactly.

use crate::config::{ScenarioConfig, Study};
use crate::error::{Error, Result};

/// Transition counts and probabilities between a start and an end map.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Transition {
    /// n_ij: cells of class i at t0 and class j at t1 (valid in both).
    pub counts: Vec<Vec<u64>>,
    /// P_ij = n_ij / sum_j n_ij (a class absent at t0 keeps its cells: P_ii = 1).
    pub probabilities: Vec<Vec<f64>>,
    /// Cells per class at t0.
    pub start_counts: Vec<u64>,
    /// Cells per class at t1.
    pub end_counts: Vec<u64>,
}

/// Counts transitions between `start` and `end` (class indices, values >= `k` invalid).
pub fn transition(start: &[u8], end: &[u8], k: usize) -> Transition {
    let cells = start.len().min(end.len());
    let flat = crate::counts::block_counts(cells, k * k, |r, n| {
        for (&a, &b) in start[r.clone()].iter().zip(&end[r]) {
            if (a as usize) < k && (b as usize) < k {
                n[a as usize * k + b as usize] += 1;
            }
        }
    });
    let counts: Vec<Vec<u64>> = flat.chunks(k.max(1)).map(<[u64]>::to_vec).collect();
    let start_counts: Vec<u64> = counts.iter().map(|r| r.iter().sum()).collect();
    let end_counts: Vec<u64> = (0..k).map(|j| counts.iter().map(|r| r[j]).sum()).collect();
    let probabilities = counts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s: u64 = r.iter().sum();
            (0..k)
                .map(|j| {
                    if s == 0 {
                        if i == j {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        r[j] as f64 / s as f64
                    }
                })
                .collect()
        })
        .collect();
    Transition {
        counts,
        probabilities,
        start_counts,
        end_counts,
    }
}

/// One Markov step: v P.
pub fn step(v: &[f64], p: &[Vec<f64>]) -> Vec<f64> {
    let k = v.len();
    (0..k)
        .map(|j| (0..k).map(|i| v[i] * p[i][j]).sum())
        .collect()
}

/// Shares after `steps` whole steps (v P^steps), or, for a fractional number of steps,
/// linearly interpolated between the two neighbouring whole steps.
pub fn project(v: &[f64], p: &[Vec<f64>], steps: f64) -> Vec<f64> {
    let whole = steps.floor() as u32;
    let mut cur = v.to_vec();
    for _ in 0..whole {
        cur = step(&cur, p);
    }
    let frac = steps - whole as f64;
    if frac > 0.0 {
        let next = step(&cur, p);
        cur = cur
            .iter()
            .zip(&next)
            .map(|(a, b)| a + frac * (b - a))
            .collect();
    }
    cur
}

/// Rounds `shares` (summing to 1) times `total` to whole cells summing to exactly
/// `total`: floors, then one more cell to the largest remainders (ties: lower index).
pub fn largest_remainder(shares: &[f64], total: u64) -> Vec<u64> {
    let sum: f64 = shares.iter().sum();
    let exact: Vec<f64> = shares
        .iter()
        .map(|s| {
            if sum > 0.0 {
                s / sum * total as f64
            } else {
                0.0
            }
        })
        .collect();
    let mut out: Vec<u64> = exact.iter().map(|e| e.floor().max(0.0) as u64).collect();
    let assigned: u64 = out.iter().sum();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut left = total.saturating_sub(assigned);
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Projected transition counts (transition allocation, docs/design.md §5): row i is
/// `start[i]` times row i of P^steps (interpolated like [`project`] for a fractional
/// number of steps), with the share of every conversion that `allowed` (the
/// scenario's conversion matrix, rows = from) forbids kept by class i itself (those
/// cells stay), rounded by largest remainder so that the row sums to `start[i]`
/// exactly. Returns K x K counts, row-major; the diagonal holds the cells that stay.
pub fn transition_counts(
    start: &[u64],
    p: &[Vec<f64>],
    steps: f64,
    allowed: &[Vec<f64>],
) -> Vec<u64> {
    let k = start.len();
    let mut out = Vec::with_capacity(k * k);
    for i in 0..k {
        let unit: Vec<f64> = (0..k).map(|j| if j == i { 1.0 } else { 0.0 }).collect();
        let mut row = project(&unit, p, steps);
        for j in 0..k {
            if j != i && allowed[i][j] <= 0.0 {
                row[i] += row[j];
                row[j] = 0.0;
            }
        }
        out.extend(largest_remainder(&row, start[i]));
    }
    out
}

/// The transition matrix of a scenario: P with forbidden conversions zeroed (when the
/// scenario asks for it), multipliers applied, rows renormalised.
pub fn scenario_probabilities(
    study: &Study,
    sc: &ScenarioConfig,
    p: &[Vec<f64>],
) -> Result<Vec<Vec<f64>>> {
    let k = p.len();
    let mut q: Vec<Vec<f64>> = p.to_vec();
    if sc.markov_follows_matrix {
        for i in 0..k {
            for j in 0..k {
                if i != j && sc.matrix[i][j] == 0.0 {
                    q[i][j] = 0.0;
                }
            }
        }
    }
    for m in &sc.multipliers {
        let (Some(i), Some(j)) = (study.class_index(&m.from), study.class_index(&m.to)) else {
            return Err(Error::Config {
                file: study.file.clone(),
                key: format!("scenarios.{}.multipliers", sc.name),
                message: format!("unknown class in {} -> {}", m.from, m.to),
            });
        };
        q[i][j] *= m.factor;
    }
    for (i, row) in q.iter_mut().enumerate() {
        let s: f64 = row.iter().sum();
        if !s.is_finite() {
            return Err(Error::Config {
                file: study.file.clone(),
                key: format!("scenarios.{}.multipliers", sc.name),
                message: format!(
                    "the multipliers make the row of class {:?} sum to {s}; expected factors \
                     whose products stay finite",
                    study.config.classes[i].name
                ),
            });
        }
        if s <= 0.0 {
            return Err(Error::Config {
                file: study.file.clone(),
                key: format!("scenarios.{}", sc.name),
                message: format!(
                    "after the matrix and multipliers no transition is left from class {:?}: its row sums to 0",
                    study.config.classes[i].name
                ),
            });
        }
        for v in row.iter_mut() {
            *v /= s;
        }
    }
    Ok(q)
}

/// Demand of a scenario with an explicit table: the given cells, the difference to the
/// valid total put on the `absorb` class (an error without one).
pub fn explicit_demand(study: &Study, sc: &ScenarioConfig, valid: u64) -> Result<Vec<u64>> {
    let table = sc
        .demand
        .as_ref()
        .ok_or_else(|| Error::Data("no explicit demand".into()))?;
    let mut d: Vec<i64> = study
        .config
        .classes
        .iter()
        .map(|c| table.get(&c.name).copied().unwrap_or(0))
        .collect();
    let sum: i64 = d.iter().sum();
    let diff = valid as i64 - sum;
    if diff != 0 {
        let Some(a) = sc.absorb.as_ref().and_then(|a| study.class_index(a)) else {
            return Err(Error::Config {
                file: study.file.clone(),
                key: format!("scenarios.{}.demand", sc.name),
                message: format!(
                    "the demand sums to {sum} cells but the study has {valid} valid cells (difference {diff}); \
                     fix it or name the class that absorbs the difference with `absorb`"
                ),
            });
        };
        d[a] += diff;
        if d[a] < 0 {
            return Err(Error::Config {
                file: study.file.clone(),
                key: format!("scenarios.{}.absorb", sc.name),
                message: format!(
                    "class {:?} cannot absorb {diff} cells: its demand would be {}",
                    study.config.classes[a].name, d[a]
                ),
            });
        }
    }
    Ok(d.into_iter().map(|v| v as u64).collect())
}

/// Demand and the matrix used, for one scenario.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScenarioDemand {
    /// Scenario name.
    pub name: String,
    /// How the demand was made: "markov" or "explicit".
    pub method: String,
    /// Transition probabilities used (Markov scenarios).
    pub probabilities: Option<Vec<Vec<f64>>>,
    /// Projected shares at the target year.
    pub shares: Vec<f64>,
    /// Demand in cells per class, summing to the valid cells.
    pub cells: Vec<u64>,
    /// The year of the demand.
    pub year: i32,
}

/// Demand of every scenario of `study` at the final target year
/// ([`crate::config::MarkovConfig::final_year`]) from the transition `t` (t0 -> t1) and
/// the valid-cell total; the base shares are the t1 counts.
pub fn demand(study: &Study, t: &Transition, valid: u64) -> Result<Vec<ScenarioDemand>> {
    demand_at(study, t, valid, study.config.markov.final_year())
}

/// Demand of every scenario at every target year (`[markov] target_years`, or the one
/// `target_year`): `[stage][scenario]`. Each year's shares are the base shares times
/// P^m, m = (year - to) / (to - from): the Markov shares at that year, whatever the
/// stages before it.
pub fn stage_demands(
    study: &Study,
    t: &Transition,
    valid: u64,
) -> Result<Vec<Vec<ScenarioDemand>>> {
    study
        .config
        .markov
        .years()
        .into_iter()
        .map(|y| demand_at(study, t, valid, y))
        .collect()
}

/// Demand of every scenario of `study` at `year` from the transition `t` (t0 -> t1) and
/// the valid-cell total; the base shares are the t1 counts.
pub fn demand_at(
    study: &Study,
    t: &Transition,
    valid: u64,
    year: i32,
) -> Result<Vec<ScenarioDemand>> {
    let mk = &study.config.markov;
    let steps = (year - mk.to) as f64 / (mk.to - mk.from) as f64;
    let v1: Vec<f64> = t
        .end_counts
        .iter()
        .map(|&c| c as f64 / valid as f64)
        .collect();
    let mut out = Vec::new();
    for sc in &study.config.scenarios {
        if sc.demand.is_some() {
            let cells = explicit_demand(study, sc, valid)?;
            out.push(ScenarioDemand {
                name: sc.name.clone(),
                method: "explicit".into(),
                probabilities: None,
                shares: cells.iter().map(|&c| c as f64 / valid as f64).collect(),
                cells,
                year,
            });
        } else {
            let q = scenario_probabilities(study, sc, &t.probabilities)?;
            let shares = project(&v1, &q, steps);
            let cells = largest_remainder(&shares, valid);
            out.push(ScenarioDemand {
                name: sc.name.clone(),
                method: "markov".into(),
                probabilities: Some(q),
                shares,
                cells,
                year,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_counts_and_rows_by_hand() {
        // start: 0 0 1 1 1 2 ; end: 0 1 1 1 0 2 ; one invalid pair
        let s = [0u8, 0, 1, 1, 1, 2, 255];
        let e = [0u8, 1, 1, 1, 0, 2, 0];
        let t = transition(&s, &e, 3);
        assert_eq!(t.counts, vec![vec![1, 1, 0], vec![1, 2, 0], vec![0, 0, 1]]);
        assert_eq!(t.probabilities[1], vec![1.0 / 3.0, 2.0 / 3.0, 0.0]);
        assert_eq!(t.start_counts, vec![2, 3, 1]);
        assert_eq!(t.end_counts, vec![2, 3, 1]);
    }

    #[test]
    fn projection_is_v_times_p_to_the_m() {
        let p = vec![vec![0.9, 0.1], vec![0.2, 0.8]];
        let v = [0.5, 0.5];
        // by hand: v P = [0.55, 0.45]; v P^2 = [0.55*0.9+0.45*0.2, 0.55*0.1+0.45*0.8] = [0.585, 0.415]
        let r = project(&v, &p, 2.0);
        assert!((r[0] - 0.585).abs() < 1e-12 && (r[1] - 0.415).abs() < 1e-12);
        let h = project(&v, &p, 1.5);
        assert!((h[0] - 0.5675).abs() < 1e-12);
    }

    #[test]
    fn transition_counts_by_hand_with_a_forbidden_chain() {
        // forest 0, cropland 1, built 2; P: forest -> cropland 0.2, cropland -> built
        // 0.1, built stays. P^2 row forest: [0.8 * 0.8, 0.8 * 0.2 + 0.2 * 0.9,
        // 0.2 * 0.1] = [0.64, 0.34, 0.02] (forest -> built through cropland); row
        // cropland: [0, 0.81, 0.9 * 0.1 + 0.1] = [0, 0.81, 0.19]. With forest -> built
        // forbidden its 0.02 stays forest: 0.66.
        let p = vec![
            vec![0.8, 0.2, 0.0],
            vec![0.0, 0.9, 0.1],
            vec![0.0, 0.0, 1.0],
        ];
        let mut allowed = vec![vec![1.0; 3]; 3];
        allowed[0][2] = 0.0;
        let n = transition_counts(&[1000, 500, 7], &p, 2.0, &allowed);
        // forest 1000: 660, 340, 0; cropland 500: 0, 405, 95; built 7 stays
        assert_eq!(n, vec![660, 340, 0, 0, 405, 95, 0, 0, 7]);
        // allowed: forest -> built takes its 20 cells
        let n = transition_counts(&[1000, 500, 7], &p, 2.0, &vec![vec![1.0; 3]; 3]);
        assert_eq!(&n[..3], &[640, 340, 20]);
        // rows sum exactly under rounding: 3 cells at shares 0.64/0.34/0.02 -> 1.92,
        // 1.02, 0.06: floors 1, 1, 0, the remaining cell to the largest remainder (0.92)
        let n = transition_counts(&[3, 0, 0], &p, 2.0, &vec![vec![1.0; 3]; 3]);
        assert_eq!(&n[..3], &[2, 1, 0]);
    }

    #[test]
    fn largest_remainder_sums_exactly() {
        // 10 cells, shares 1/3 each: 3.33 -> 3, 3, 3 and one more to the first (ties: index)
        assert_eq!(largest_remainder(&[1.0 / 3.0; 3], 10), vec![4, 3, 3]);
        // 0.26 * 7 = 1.82, 0.74 * 7 = 5.18 -> 1 + 1, 5
        assert_eq!(largest_remainder(&[0.26, 0.74], 7), vec![2, 5]);
        let d = largest_remainder(&[0.1234, 0.5, 0.3766], 928_375);
        assert_eq!(d.iter().sum::<u64>(), 928_375);
    }
}
