//! Synthetic GWR data for the benchmarks, generated deterministically with
//! `CounterRng` (Philox; seed 2024, stream 900): n points uniform in a 100 km square,
//! nine factors uniform in (0, 1), coefficients varying smoothly over space, and
//! uniform noise in (-0.5, 0.5).

use flus_shared::gwr::GwrData;
use flus_shared::rng::CounterRng;

/// Number of factors (the model has an intercept too: p = 10).
pub const FACTORS: usize = 9;

/// The synthetic data set of `n` points.
pub fn synthetic(n: usize) -> GwrData {
    let rng = CounterRng::new(2024);
    let stream = 900;
    let mut coords = Vec::with_capacity(n);
    let mut cols: Vec<Vec<f64>> = (0..FACTORS).map(|_| Vec::with_capacity(n)).collect();
    let mut y = Vec::with_capacity(n);
    for i in 0..n as u64 {
        // draws 0..3 give 12 words: 2 coordinates, 9 factors, 1 noise.
        let mut words = Vec::with_capacity(12);
        for draw in 0..3u8 {
            words.extend(rng.block(stream, 0, i, draw));
        }
        let u = CounterRng::unit(words[0]);
        let v = CounterRng::unit(words[1]);
        coords.push([u * 100_000.0, v * 100_000.0]);
        let mut yi = 1.0 + 2.0 * (3.0 * u).sin();
        for (k, col) in cols.iter_mut().enumerate() {
            let x = CounterRng::unit(words[2 + k]);
            let beta = (k as f64 + 1.0) * 0.3 * (1.0 + (2.0 * u + (k as f64) * v).cos());
            yi += beta * x;
            col.push(x);
        }
        y.push(yi + CounterRng::unit(words[11]) - 0.5);
    }
    let factors = cols
        .into_iter()
        .enumerate()
        .map(|(k, c)| (format!("x{}", k + 1), c))
        .collect();
    GwrData::new("y", y, factors, coords).expect("synthetic data is well formed")
}
