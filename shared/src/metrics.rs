//! Accuracy metrics of a simulation (docs/design.md §6): confusion matrix, overall accuracy,
//! Kappa, Kloc, Khisto, and the figure of merit with its hits, misses, wrong hits and
//! false alarms, plus producer's and user's accuracy of the change.

use serde::{Deserialize, Serialize};

/// Metrics of one simulated map against the truth (the keys of `flus compare --json`
/// and of the validation's metrics).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    /// Cells compared (valid in all three maps).
    pub cells: u64,
    /// Confusion matrix, rows = truth, columns = simulation.
    pub confusion: Vec<Vec<u64>>,
    /// Overall accuracy (0 without cells).
    pub oa: f64,
    /// Cohen's Kappa (None when undefined: a single class everywhere).
    pub kappa: Option<f64>,
    /// Kappa for location (None when undefined).
    pub kloc: Option<f64>,
    /// Kappa for histogram (quantity) (None when undefined).
    pub khisto: Option<f64>,
    /// Figure of merit B / (A + B + C + D) (None when nothing changed anywhere).
    pub fom: Option<f64>,
    /// Producer's accuracy of the change B / (A + B + C).
    pub producer_accuracy: Option<f64>,
    /// User's accuracy of the change B / (B + C + D).
    pub user_accuracy: Option<f64>,
    /// B: observed change simulated as the right class.
    pub hits: u64,
    /// A: observed change simulated as persistence.
    pub misses: u64,
    /// C: observed change simulated as the wrong class.
    pub wrong_hits: u64,
    /// D: observed persistence simulated as change.
    pub false_alarms: u64,
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    if den == 0.0 {
        None
    } else {
        Some(num / den)
    }
}

/// Compares `sim` with `truth`, starting from `start`; maps hold class indices < `k`
/// and any value >= `k` marks a cell that is not compared.
pub fn compare(start: &[u8], truth: &[u8], sim: &[u8], k: usize) -> Metrics {
    let mut confusion = vec![vec![0u64; k]; k];
    let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
    for ((&s, &t), &m) in start.iter().zip(truth).zip(sim) {
        let (su, tu, mu) = (s as usize, t as usize, m as usize);
        if su >= k || tu >= k || mu >= k {
            continue;
        }
        confusion[tu][mu] += 1;
        if t != s {
            if m == s {
                a += 1;
            } else if m == t {
                b += 1;
            } else {
                c += 1;
            }
        } else if m != s {
            d += 1;
        }
    }
    from_confusion(confusion, a, b, c, d)
}

/// The metrics of a confusion matrix (rows = truth) and change counts A, B, C, D.
pub fn from_confusion(confusion: Vec<Vec<u64>>, a: u64, b: u64, c: u64, d: u64) -> Metrics {
    let k = confusion.len();
    let n: u64 = confusion.iter().flatten().sum();
    let nf = n as f64;
    let diag: u64 = (0..k).map(|i| confusion[i][i]).sum();
    let po = if n > 0 { diag as f64 / nf } else { 0.0 };
    let row: Vec<f64> = confusion
        .iter()
        .map(|r| r.iter().sum::<u64>() as f64 / nf)
        .collect();
    let col: Vec<f64> = (0..k)
        .map(|j| confusion.iter().map(|r| r[j]).sum::<u64>() as f64 / nf)
        .collect();
    let pe: f64 = (0..k).map(|i| row[i] * col[i]).sum();
    let pmax: f64 = (0..k).map(|i| row[i].min(col[i])).sum();
    Metrics {
        cells: n,
        oa: po,
        kappa: ratio(po - pe, 1.0 - pe),
        kloc: ratio(po - pe, pmax - pe),
        khisto: ratio(pmax - pe, 1.0 - pe),
        fom: ratio(b as f64, (a + b + c + d) as f64),
        producer_accuracy: ratio(b as f64, (a + b + c) as f64),
        user_accuracy: ratio(b as f64, (b + c + d) as f64),
        hits: b,
        misses: a,
        wrong_hits: c,
        false_alarms: d,
        confusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_family_by_hand() {
        // truth rows, sim columns: [[40, 10], [20, 30]], n = 100
        // Po = 0.70; row = [0.5, 0.5]; col = [0.6, 0.4]; Pe = 0.3 + 0.2 = 0.5
        // Kappa = 0.2 / 0.5 = 0.4; Pmax = 0.5 + 0.4 = 0.9; Kloc = 0.2 / 0.4 = 0.5;
        // Khisto = 0.4 / 0.5 = 0.8 (and Kappa = Kloc * Khisto)
        let m = from_confusion(vec![vec![40, 10], vec![20, 30]], 0, 0, 0, 0);
        assert_eq!(m.cells, 100);
        assert!((m.oa - 0.7).abs() < 1e-12);
        assert!((m.kappa.unwrap() - 0.4).abs() < 1e-12);
        assert!((m.kloc.unwrap() - 0.5).abs() < 1e-12);
        assert!((m.khisto.unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(m.fom, None);
    }

    #[test]
    fn figure_of_merit_by_hand() {
        // 8 cells: start S, truth T, sim M
        // cell: S T M  -> kind
        // 0:    0 1 0  -> miss (A)
        // 1:    0 1 1  -> hit (B)
        // 2:    0 1 2  -> wrong hit (C)
        // 3:    0 0 1  -> false alarm (D)
        // 4:    1 1 1  -> persistence, right
        // 5:    2 0 0  -> hit (B)
        // 6:    2 2 2  -> persistence
        // 7:    255    -> not compared
        let s = [0u8, 0, 0, 0, 1, 2, 2, 255];
        let t = [1u8, 1, 1, 0, 1, 0, 2, 1];
        let m = [0u8, 1, 2, 1, 1, 0, 2, 1];
        let r = compare(&s, &t, &m, 3);
        assert_eq!(
            (r.misses, r.hits, r.wrong_hits, r.false_alarms),
            (1, 2, 1, 1)
        );
        assert!((r.fom.unwrap() - 2.0 / 5.0).abs() < 1e-12);
        assert!((r.producer_accuracy.unwrap() - 2.0 / 4.0).abs() < 1e-12);
        assert!((r.user_accuracy.unwrap() - 2.0 / 4.0).abs() < 1e-12);
        assert_eq!(r.cells, 7);
        // correct cells: 1, 4, 5, 6 -> OA 4/7
        assert!((r.oa - 4.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn persistence_has_no_hits_and_a_perfect_map_has_kappa_one() {
        let s = [0u8, 1, 1, 0];
        let t = [1u8, 1, 0, 0];
        let p = compare(&s, &t, &s, 2);
        assert_eq!((p.hits, p.misses, p.false_alarms), (0, 2, 0));
        assert_eq!(p.fom, Some(0.0));
        let perfect = compare(&s, &t, &t, 2);
        assert_eq!(perfect.kappa, Some(1.0));
        assert_eq!(perfect.fom, Some(1.0));
    }
}
