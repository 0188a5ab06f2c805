//! PLUS's driver contribution (LEAS's `Contribution<k>.csv`): how much a forest's error
//! on its training rows grows when one driver is turned into noise, as a share of the
//! growth over all drivers.
//!
//! PLUS writes, per class, the forest's root mean square error on its training rows
//! (`RMSE_original`), the same error with each driver's values noised (`RMSE_noise`),
//! and `Contribution` = (RMSE_noise_d − RMSE_original) / Σ_j (RMSE_noise_j −
//! RMSE_original); the shares of a class sum to 1 (docs/design.md §3a). Here a driver is
//! noised by permuting its values among the training rows (Breiman's permutation), with
//! draws keyed by (seed, stream `LEAS_NOISE`, forest key, driver, position), so the
//! figures are the same for any thread or worker count.

use rayon::prelude::*;

use super::ensemble::{keyed_shuffle, Forest};
use super::tree::Samples;
use crate::rng::{stream, CounterRng};

/// A forest's root mean square errors on its training rows.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseRmse {
    /// RMSE of the development probability against the 0/1 expansion label.
    pub rmse: f64,
    /// Per driver, the RMSE with that driver's values permuted among the rows.
    pub noised: Vec<f64>,
}

/// The rows of `s` in a random order for driver `f` (draws keyed on (seed, key, f,
/// position)).
fn noise_order(rng: &CounterRng, key: u32, f: usize, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    keyed_shuffle(rng, stream::LEAS_NOISE, key, (f as u64) << 40, &mut p);
    p
}

/// RMSE of `forest` on the rows of `s`, driver `noised` (if any) read from the row
/// `order[r]` instead of row r. Summed in row order.
fn rmse(forest: &Forest, s: &Samples, noised: Option<(usize, &[usize])>) -> f64 {
    let mut x = vec![0f32; s.d];
    let mut sum = 0.0;
    for r in 0..s.len() {
        s.read_row(r, noised.map(|(f, order)| (f, order[r])), &mut x);
        let e = forest.predict(&x) - f64::from(u8::from(s.y[r]));
        sum += e * e;
    }
    (sum / s.len().max(1) as f64).sqrt()
}

/// PLUS's RMSE figures of forest `key` on its training rows `s` (drivers in parallel).
pub fn noise_rmse(forest: &Forest, s: &Samples, seed: u64, key: u32) -> NoiseRmse {
    let rng = CounterRng::new(seed);
    let noised = (0..s.d)
        .into_par_iter()
        .map(|f| rmse(forest, s, Some((f, &noise_order(&rng, key, f, s.len())))))
        .collect();
    NoiseRmse {
        rmse: rmse(forest, s, None),
        noised,
    }
}

/// PLUS's contribution of each driver: its RMSE growth over the sum of all drivers'. A
/// driver whose noise does not raise the error gets 0; all are 0 when none does.
pub fn shares(rmse: f64, noised: &[f64]) -> Vec<f64> {
    let growth: Vec<f64> = noised.iter().map(|&n| (n - rmse).max(0.0)).collect();
    let total: f64 = growth.iter().sum();
    if total > 0.0 {
        growth.iter().map(|g| g / total).collect()
    } else {
        vec![0.0; noised.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_reproduce_a_contribution_file_written_by_plus() {
        // `Parameterfile/Contribution0.csv` of PLUS's repository (HPSCIL, a 17-driver
        // run): RMSE_original, RMSE_noise per driver, and PLUS's Contribution row, which
        // it prints to 6 significant digits.
        let rmse = 0.287863;
        let noised = [
            0.424826, 0.317999, 0.303306, 0.357504, 0.339365, 0.341428, 0.344499, 0.329922,
            0.421507, 0.339365, 0.306759, 0.326713, 0.316893, 0.42317, 0.31243, 0.39395, 0.366237,
        ];
        let plus = [
            0.12774, 0.0281069, 0.0144028, 0.0649512, 0.0480337, 0.0499578, 0.0528224, 0.0392264,
            0.124645, 0.0480337, 0.0176235, 0.036234, 0.0270753, 0.126196, 0.0229124, 0.0989431,
            0.0730959,
        ];
        let got = shares(rmse, &noised);
        for (i, (g, p)) in got.iter().zip(plus).enumerate() {
            assert!((g - p).abs() < 2e-6, "driver {i}: {g} against PLUS's {p}");
        }
        assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn noising_the_driver_that_decides_costs_the_error_of_a_random_label() {
        // 900 rows: x0 = i / 900 decides (positive above 2/3, a third of the rows), x1 is
        // a keyed uniform noise. The forest fits its rows (RMSE near 0); with x0
        // permuted a row's answer is another row's label, wrong with probability
        // 2 * (1/3) * (2/3) = 4/9, an RMSE of sqrt(4/9) = 0.667; noising x1 changes
        // nothing the trees use.
        let n = 900;
        let rng = CounterRng::new(5);
        let mut x = Vec::with_capacity(2 * n);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let x0 = i as f32 / n as f32;
            x.push(x0);
            x.push(CounterRng::unit(rng.block(stream::SYNTH_GWR, 3, i as u64, 0)[0]) as f32);
            y.push(x0 > 2.0 / 3.0);
        }
        let s = Samples { x: &x, d: 2, y: &y };
        let settings = crate::forest::ForestSettings {
            n_trees: 10,
            tree: crate::forest::TreeSettings {
                mtry: 2,
                max_depth: None,
                min_leaf: 1,
            },
        };
        let forest = crate::forest::fit(&s, &settings, 8, 1).unwrap();
        let one = crate::forest::in_pool(1, || noise_rmse(&forest, &s, 8, 1));
        let two = crate::forest::in_pool(2, || noise_rmse(&forest, &s, 8, 1));
        assert_eq!(one, two);
        assert!(one.rmse < 0.02, "{one:?}");
        assert!(
            (one.noised[0] - (4.0f64 / 9.0).sqrt()).abs() < 0.05,
            "{one:?}"
        );
        assert!((one.noised[1] - one.rmse).abs() < 0.02, "{one:?}");
    }

    #[test]
    fn a_driver_whose_noise_lowers_the_error_gets_nothing() {
        // growths 0.3, none, 0.1 of 0.4 in all
        let s = shares(0.2, &[0.5, 0.1, 0.3]);
        assert!((s[0] - 0.75).abs() < 1e-12 && s[1] == 0.0 && (s[2] - 0.25).abs() < 1e-12);
        assert_eq!(shares(0.2, &[0.2, 0.1]), vec![0.0, 0.0]);
    }
}
