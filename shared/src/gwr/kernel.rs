//! Kernel functions and bandwidth conventions, as mgwr (kernels.py) and GWR4 define them.
//!
//! With z = d / h: bisquare (1 - z^2)^2 for d < h and 0 beyond; gaussian exp(-z^2 / 2);
//! exponential exp(-z). Fixed: h is the bandwidth distance. Adaptive with k nearest
//! neighbours: h = d_k * 1.0000001, d_k the distance to the k-th nearest point counting
//! the point itself (distance 0) as the first; k = the integer part of the bandwidth.

use serde::{Deserialize, Serialize};

/// mgwr's factor on the k-th neighbour distance (kernels.py `eps`), so that the k-th
/// neighbour keeps a (tiny) non-zero bisquare weight.
pub const ADAPTIVE_EPS: f64 = 1.000_000_1;

/// A kernel function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    /// (1 - (d/h)^2)^2 inside h, 0 outside (the default).
    #[default]
    Bisquare,
    /// exp(-(d/h)^2 / 2).
    Gaussian,
    /// exp(-d/h).
    Exponential,
}

impl Kernel {
    /// The weight at scaled distance z = d / h (bisquare: z < 1 only; 0 otherwise).
    #[inline]
    pub fn weight(self, z: f64) -> f64 {
        match self {
            Kernel::Bisquare => {
                if z < 1.0 {
                    let t = 1.0 - z * z;
                    t * t
                } else {
                    0.0
                }
            }
            Kernel::Gaussian => (-0.5 * z * z).exp(),
            Kernel::Exponential => (-z).exp(),
        }
    }

    /// The scaled distance beyond which the weight is below `min_weight` (> 0), or
    /// infinity for `min_weight` = 0 (no truncation); bisquare: 1.
    pub fn support(self, min_weight: f64) -> f64 {
        match self {
            Kernel::Bisquare => 1.0,
            _ if min_weight <= 0.0 => f64::INFINITY,
            Kernel::Gaussian => (-2.0 * min_weight.ln()).sqrt(),
            Kernel::Exponential => -min_weight.ln(),
        }
    }

    /// The kernel's name as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Bisquare => "bisquare",
            Kernel::Gaussian => "gaussian",
            Kernel::Exponential => "exponential",
        }
    }
}

impl std::str::FromStr for Kernel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "bisquare" | "bi-square" => Ok(Kernel::Bisquare),
            "gaussian" => Ok(Kernel::Gaussian),
            "exponential" => Ok(Kernel::Exponential),
            other => Err(format!(
                "unknown kernel `{other}`, expected bisquare, gaussian or exponential"
            )),
        }
    }
}

/// How local weights are formed: kernel, adaptive or fixed, and truncation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weighting {
    /// The kernel function.
    pub kernel: Kernel,
    /// true: the bandwidth is a number of nearest neighbours (self included); false: a
    /// distance in coordinate units.
    pub adaptive: bool,
    /// Gaussian and exponential kernels only: weights below this are dropped (0 keeps
    /// every point, exactly as GWR4/mgwr). A positive value bounds each local fit to the
    /// points within the radius where the kernel falls to `min_weight`, which makes large
    /// data sets tractable; the effect on the estimates is of the order of `min_weight`.
    pub min_weight: f64,
}

impl Default for Weighting {
    fn default() -> Self {
        Self {
            kernel: Kernel::Bisquare,
            adaptive: true,
            min_weight: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_their_formulas_at_hand_picked_distances() {
        // bisquare at z = 0.5: (1 - 0.25)^2 = 0.5625; 0 at and beyond 1.
        assert_eq!(Kernel::Bisquare.weight(0.5), 0.5625);
        assert_eq!(Kernel::Bisquare.weight(1.0), 0.0);
        assert_eq!(Kernel::Bisquare.weight(0.0), 1.0);
        // gaussian at z = 2: exp(-2); exponential at z = 2: exp(-2).
        assert_eq!(Kernel::Gaussian.weight(2.0), (-2.0f64).exp());
        assert_eq!(Kernel::Exponential.weight(2.0), (-2.0f64).exp());
        // support: gaussian weight 1e-12 at z = sqrt(24 ln 10).
        let z = Kernel::Gaussian.support(1e-12);
        assert!((Kernel::Gaussian.weight(z) - 1e-12).abs() < 1e-24);
        assert!(Kernel::Gaussian.support(0.0).is_infinite());
    }
}
