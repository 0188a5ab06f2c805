//! The network: one hidden layer of sigmoid units and a softmax output of K units,
//! with the driver normalisation it was trained with. Forward pass, cross-entropy loss
//! and its gradient (back-propagation), all in f64.

use serde::{Deserialize, Serialize};

use super::normalise::Normalisation;
use crate::error::{Error, Result};
use crate::rng::{stream, CounterRng};

/// A trained (or hand-built) network with its normalisation and layer names.
///
/// Serializable (serde), so the coordinator can broadcast it to the workers.
/// Parameters are one flat vector: `w1` (hidden x drivers, row h holds the weights into
/// hidden unit h), `b1` (hidden), `w2` (classes x hidden), `b2` (classes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    driver_names: Vec<String>,
    class_names: Vec<String>,
    normalisation: Normalisation,
    hidden: usize,
    params: Vec<f64>,
}

/// Work space for one forward pass (reused across cells to avoid allocations).
#[derive(Clone, Debug)]
pub(crate) struct Scratch {
    pub x: Vec<f64>,
    pub h: Vec<f64>,
    pub z: Vec<f64>,
}

#[inline]
fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Number of parameters of a drivers-hidden-classes network.
pub(crate) fn param_count(d: usize, h: usize, k: usize) -> usize {
    h * d + h + k * h + k
}

impl Network {
    /// A network from explicit weights: `w1[h][i]` into hidden unit `h` from driver `i`,
    /// `b1[h]`, `w2[k][h]` into class `k` from hidden unit `h`, `b2[k]`.
    ///
    /// Errors when the sizes do not agree with each other, with the names or with the
    /// normalisation, or when a weight is not finite.
    pub fn from_weights(
        driver_names: Vec<String>,
        class_names: Vec<String>,
        normalisation: Normalisation,
        w1: &[Vec<f64>],
        b1: &[f64],
        w2: &[Vec<f64>],
        b2: &[f64],
    ) -> Result<Self> {
        let (d, h, k) = (driver_names.len(), b1.len(), class_names.len());
        let shape_err = |what: &str| {
            Error::Data(format!(
                "ANN weights: {what} does not fit {d} driver(s), {h} hidden unit(s), {k} class(es)"
            ))
        };
        if d == 0 || h == 0 || k < 2 {
            return Err(shape_err(
                "a network needs >= 1 driver, >= 1 hidden unit, >= 2 classes; this",
            ));
        }
        if normalisation.len() != d || normalisation.max.len() != d {
            return Err(shape_err("the normalisation"));
        }
        if w1.len() != h || w1.iter().any(|r| r.len() != d) {
            return Err(shape_err("w1"));
        }
        if w2.len() != k || w2.iter().any(|r| r.len() != h) || b2.len() != k {
            return Err(shape_err("w2 or b2"));
        }
        let mut params = Vec::with_capacity(param_count(d, h, k));
        for r in w1 {
            params.extend_from_slice(r);
        }
        params.extend_from_slice(b1);
        for r in w2 {
            params.extend_from_slice(r);
        }
        params.extend_from_slice(b2);
        if params.iter().any(|p| !p.is_finite()) {
            return Err(Error::Data("ANN weights: a weight is not finite".into()));
        }
        Ok(Self {
            driver_names,
            class_names,
            normalisation,
            hidden: h,
            params,
        })
    }

    /// A network with Glorot-uniform random weights (zero biases) drawn from
    /// `CounterRng(seed)` on stream `ANN_INIT` (iteration = layer, cell = weight index).
    pub(crate) fn initial(
        driver_names: Vec<String>,
        class_names: Vec<String>,
        normalisation: Normalisation,
        hidden: usize,
        seed: u64,
    ) -> Self {
        let (d, k) = (driver_names.len(), class_names.len());
        let rng = CounterRng::new(seed);
        let mut params = vec![0.0; param_count(d, hidden, k)];
        let draw = |layer: u32, i: usize, limit: f64| {
            let u = CounterRng::unit(rng.block(stream::ANN_INIT, layer, i as u64, 0)[0]);
            (2.0 * u - 1.0) * limit
        };
        let a1 = (6.0 / (d + hidden) as f64).sqrt();
        for (i, p) in params[..hidden * d].iter_mut().enumerate() {
            *p = draw(0, i, a1);
        }
        let a2 = (6.0 / (hidden + k) as f64).sqrt();
        let o = hidden * d + hidden;
        for (i, p) in params[o..o + k * hidden].iter_mut().enumerate() {
            *p = draw(1, i, a2);
        }
        Self {
            driver_names,
            class_names,
            normalisation,
            hidden,
            params,
        }
    }

    /// Number of drivers (inputs).
    pub fn n_drivers(&self) -> usize {
        self.driver_names.len()
    }

    /// Number of hidden units.
    pub fn n_hidden(&self) -> usize {
        self.hidden
    }

    /// Number of classes K (outputs).
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Names of the drivers, in input order.
    pub fn driver_names(&self) -> &[String] {
        &self.driver_names
    }

    /// Names of the classes, in output order (class index 0..K-1).
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The min-max normalisation applied to raw driver values.
    pub fn normalisation(&self) -> &Normalisation {
        &self.normalisation
    }

    /// All parameters, flat (`w1`, `b1`, `w2`, `b2`; see the type's documentation).
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    pub(crate) fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    pub(crate) fn scratch(&self) -> Scratch {
        Scratch {
            x: vec![0.0; self.n_drivers()],
            h: vec![0.0; self.hidden],
            z: vec![0.0; self.n_classes()],
        }
    }

    /// Class probabilities of one cell from its raw (not normalised) driver values,
    /// written to `out` (K values that sum to 1).
    ///
    /// # Panics
    /// When `raw_driver_values` does not hold one value per driver or `out` one slot per
    /// class (a programming error, not a data error).
    pub fn predict(&self, raw_driver_values: &[f32], out: &mut [f32]) {
        let mut s = self.scratch();
        self.predict_with(raw_driver_values, &mut s, out);
    }

    /// [`Network::predict`] with a reusable work space.
    #[inline]
    pub(crate) fn predict_with(&self, raw: &[f32], s: &mut Scratch, out: &mut [f32]) {
        assert_eq!(raw.len(), self.n_drivers(), "one raw value per driver");
        assert_eq!(out.len(), self.n_classes(), "one output slot per class");
        for (i, (x, &v)) in s.x.iter_mut().zip(raw).enumerate() {
            *x = self.normalisation.apply(i, v);
        }
        let Scratch { x, h, z } = s;
        self.forward(x, h, z);
        for (o, &p) in out.iter_mut().zip(z.iter()) {
            *o = p as f32;
        }
    }

    /// Forward pass on normalised inputs `x`: hidden activations into `h`, class
    /// probabilities (softmax) into `p`. Returns the log-sum-exp of the output
    /// pre-activations minus their maximum, and that maximum, for the loss.
    #[inline]
    pub(crate) fn forward(&self, x: &[f64], h: &mut [f64], p: &mut [f64]) -> (f64, f64) {
        let (d, nh, k) = (self.n_drivers(), self.hidden, self.n_classes());
        let (w1, rest) = self.params.split_at(nh * d);
        let (b1, rest) = rest.split_at(nh);
        let (w2, b2) = rest.split_at(k * nh);
        for j in 0..nh {
            let row = &w1[j * d..(j + 1) * d];
            let mut z = b1[j];
            for (w, xi) in row.iter().zip(x) {
                z += w * xi;
            }
            h[j] = sigmoid(z);
        }
        let mut zmax = f64::NEG_INFINITY;
        for c in 0..k {
            let row = &w2[c * nh..(c + 1) * nh];
            let mut z = b2[c];
            for (w, hj) in row.iter().zip(h.iter()) {
                z += w * hj;
            }
            p[c] = z;
            zmax = zmax.max(z);
        }
        let mut sum = 0.0;
        for pc in p.iter_mut() {
            *pc = (*pc - zmax).exp();
            sum += *pc;
        }
        for pc in p.iter_mut() {
            *pc /= sum;
        }
        (sum.ln(), zmax)
    }

    /// Mean cross-entropy of the samples `xs` (normalised, one row of `n_drivers` per
    /// sample) with true classes `ys`; and, when `grad` is given, adds its gradient with
    /// respect to every parameter (same layout as [`Network::params`]) into `grad`.
    ///
    /// The samples are visited in the given order, so the sums are reproducible.
    pub(crate) fn loss_and_gradient(
        &self,
        xs: &[f64],
        ys: &[u8],
        s: &mut Scratch,
        mut grad: Option<&mut [f64]>,
    ) -> f64 {
        let (d, nh, k) = (self.n_drivers(), self.hidden, self.n_classes());
        let n = ys.len();
        if n == 0 {
            return 0.0;
        }
        let inv_n = 1.0 / n as f64;
        let mut loss = 0.0;
        let mut dz = vec![0.0; k];
        for (x, &y) in xs.chunks_exact(d).zip(ys) {
            let Scratch { h, z, .. } = s;
            let (lse, zmax) = self.forward(x, h, z);
            // -ln p_y = ln sum_c exp(z_c) - z_y, computed stably from the shifted sums.
            // -ln p_y = ln sum_c exp(z_c - zmax) - (z_y - zmax), with z_y recomputed
            // exactly as in the forward pass (no underflow of p_y to 0).
            let yi = y as usize;
            let o2 = nh * d + nh;
            let mut zy = self.params[o2 + k * nh + yi];
            for (w, hj) in self.params[o2 + yi * nh..o2 + (yi + 1) * nh]
                .iter()
                .zip(h.iter())
            {
                zy += w * hj;
            }
            loss += lse - (zy - zmax);
            let Some(g) = grad.as_deref_mut() else {
                continue;
            };
            for c in 0..k {
                dz[c] = (z[c] - if c == y as usize { 1.0 } else { 0.0 }) * inv_n;
            }
            let w2 = &self.params[nh * d + nh..nh * d + nh + k * nh];
            let (g1, g2) = g.split_at_mut(nh * d + nh);
            let (gw1, gb1) = g1.split_at_mut(nh * d);
            let (gw2, gb2) = g2.split_at_mut(k * nh);
            for c in 0..k {
                gb2[c] += dz[c];
                for j in 0..nh {
                    gw2[c * nh + j] += dz[c] * h[j];
                }
            }
            for j in 0..nh {
                let mut back = 0.0;
                for c in 0..k {
                    back += w2[c * nh + j] * dz[c];
                }
                let dzj = back * h[j] * (1.0 - h[j]);
                gb1[j] += dzj;
                for (gw, xi) in gw1[j * d..(j + 1) * d].iter_mut().zip(x) {
                    *gw += dzj * xi;
                }
            }
        }
        loss * inv_n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    /// The 2-2-2 network of the hand computation below.
    fn hand_network() -> Network {
        Network::from_weights(
            names("d", 2),
            names("c", 2),
            Normalisation {
                min: vec![0.0, 0.0],
                max: vec![2.0, 4.0],
            },
            &[vec![1.0, -2.0], vec![0.5, 1.0]],
            &[0.25, -0.5],
            &[vec![2.0, -1.0], vec![-1.0, 3.0]],
            &[0.1, -0.1],
        )
        .unwrap()
    }

    #[test]
    fn forward_pass_of_a_2_2_2_network_matches_the_hand_computation() {
        // Raw (1, 1) normalises to (1/2, 1/4).
        // Hidden: z = 1*0.5 - 2*0.25 + 0.25 = 0.25 -> sigmoid(0.25) = 0.5621765008857981;
        //         z = 0.5*0.5 + 1*0.25 - 0.5 = 0 -> sigmoid(0) = 0.5.
        // Output: z0 = 2*0.5621765008857981 - 1*0.5 + 0.1 = 0.7243530017715962,
        //         z1 = -1*0.5621765008857981 + 3*0.5 - 0.1 = 0.8378234991142019.
        // Softmax: p0 = 1 / (1 + exp(z1 - z0)) = 1 / (1 + exp(0.1134704973426057))
        //             = 0.4716627739315277, p1 = 0.5283372260684722.
        let net = hand_network();
        let mut out = [0f32; 2];
        net.predict(&[1.0, 1.0], &mut out);
        assert!(
            (out[0] as f64 - 0.471_662_773_931_527_7).abs() < 1e-7,
            "{out:?}"
        );
        assert!(
            (out[1] as f64 - 0.528_337_226_068_472_2).abs() < 1e-7,
            "{out:?}"
        );
        let (mut h, mut p) = ([0.0; 2], [0.0; 2]);
        net.forward(&[0.5, 0.25], &mut h, &mut p);
        assert!((h[0] - 0.562_176_500_885_798_1).abs() < 1e-15);
        assert_eq!(h[1], 0.5);
        assert!((p[0] - 0.471_662_773_931_527_7).abs() < 1e-14);
    }

    #[test]
    fn softmax_outputs_sum_to_one_even_for_huge_activations() {
        let net = Network::initial(
            names("d", 3),
            names("c", 5),
            Normalisation {
                min: vec![0.0; 3],
                max: vec![1.0; 3],
            },
            7,
            3,
        );
        let mut out = [0f32; 5];
        for raw in [[0.0f32, 0.0, 0.0], [0.3, 0.9, 0.1], [1e6, -1e6, 5e5]] {
            net.predict(&raw, &mut out);
            let sum: f64 = out.iter().map(|&v| v as f64).sum();
            assert!((sum - 1.0).abs() < 1e-6, "{raw:?}: {out:?}");
            assert!(out.iter().all(|&v| (0.0..=1.0).contains(&v)));
        }
        // Huge output pre-activations (1000 apart) do not overflow.
        let big = Network::from_weights(
            names("d", 1),
            names("c", 2),
            Normalisation {
                min: vec![0.0],
                max: vec![1.0],
            },
            &[vec![0.0]],
            &[0.0],
            &[vec![0.0], vec![0.0]],
            &[1000.0, 0.0],
        )
        .unwrap();
        let mut o2 = [0f32; 2];
        big.predict(&[0.5], &mut o2);
        assert_eq!(o2, [1.0, 0.0]);
        // -ln p1 = 1000 exactly, not infinity.
        let mut s = big.scratch();
        let loss = big.loss_and_gradient(&[0.5], &[1], &mut s, None);
        assert!((loss - 1000.0).abs() < 1e-9, "{loss}");
    }

    #[test]
    fn gradient_matches_central_finite_differences() {
        let mut net = Network::initial(
            names("d", 3),
            names("c", 4),
            Normalisation {
                min: vec![0.0; 3],
                max: vec![1.0; 3],
            },
            5,
            11,
        );
        // Non-zero biases too, so every parameter is exercised.
        let n = net.params().len();
        for (i, p) in net.params_mut().iter_mut().enumerate() {
            *p += 0.05 * ((i * 7 % 11) as f64 - 5.0) / 5.0;
        }
        let xs = [
            0.1, 0.9, 0.4, //
            0.7, 0.2, 0.5, //
            0.3, 0.3, 1.0, //
            0.95, 0.05, 0.6,
        ];
        let ys = [0u8, 3, 1, 2];
        let mut s = net.scratch();
        let mut grad = vec![0.0; n];
        net.loss_and_gradient(&xs, &ys, &mut s, Some(&mut grad));
        let eps = 1e-6;
        for (i, &analytic) in grad.iter().enumerate() {
            let mut plus = net.clone();
            plus.params_mut()[i] += eps;
            let mut minus = net.clone();
            minus.params_mut()[i] -= eps;
            let lp = plus.loss_and_gradient(&xs, &ys, &mut s, None);
            let lm = minus.loss_and_gradient(&xs, &ys, &mut s, None);
            let numeric = (lp - lm) / (2.0 * eps);
            assert!(
                (numeric - analytic).abs() < 1e-7 * (1.0 + numeric.abs()),
                "parameter {i}: analytic {analytic} numeric {numeric}"
            );
        }
    }

    #[test]
    fn network_round_trips_through_json() {
        let net = hand_network();
        let json = serde_json::to_string(&net).unwrap();
        let back: Network = serde_json::from_str(&json).unwrap();
        assert_eq!(back, net);
    }

    #[test]
    fn from_weights_rejects_mismatched_shapes() {
        let e = Network::from_weights(
            names("d", 2),
            names("c", 2),
            Normalisation {
                min: vec![0.0; 2],
                max: vec![1.0; 2],
            },
            &[vec![1.0], vec![0.5, 1.0]],
            &[0.0, 0.0],
            &[vec![1.0, 1.0], vec![1.0, 1.0]],
            &[0.0, 0.0],
        )
        .unwrap_err();
        assert!(e.to_string().contains("w1"), "{e}");
    }
}
