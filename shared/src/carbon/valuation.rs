//! Valuation of a carbon change as InVEST does it: the net present value of the change
//! spread evenly over the years between the two maps.

use crate::error::{Error, Result};

/// Valuation parameters (InVEST's `price_per_metric_ton_of_c`, `discount_rate`,
/// `rate_change`, `lulc_bas_year`, `lulc_alt_year`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Valuation {
    /// Price of one tonne of carbon (currency units / t).
    pub price: f64,
    /// Annual market discount rate, %.
    pub discount_rate: f64,
    /// Annual change in the price of carbon, %.
    pub rate_change: f64,
    /// Calendar year of the baseline map.
    pub year_baseline: i32,
    /// Calendar year of the alternate map.
    pub year_alternate: i32,
}

impl Valuation {
    /// The constant that multiplies a carbon change (t) to give its NPV:
    ///
    /// `price / T * sum_{t=0}^{T-1} 1 / ((1 + r/100)^t (1 + c/100)^t)`, T = years between
    /// the maps. This is InVEST's `_calculate_valuation_constant`, which evaluates the
    /// same geometric sum in closed form `(1 - q^T) / (1 - q)` (limit T when q = 1),
    /// q = 1 / ((1 + r/100)(1 + c/100)); the sum is written out here so that q near 1
    /// loses no precision.
    pub fn constant(&self) -> Result<f64> {
        let n = i64::from(self.year_alternate) - i64::from(self.year_baseline);
        if n <= 0 {
            return Err(Error::Data(format!(
                "valuation: alternate year {} must be after baseline year {}",
                self.year_alternate, self.year_baseline
            )));
        }
        for (name, v) in [
            ("price", self.price),
            ("discount rate", self.discount_rate),
            ("rate change", self.rate_change),
        ] {
            if !v.is_finite() {
                return Err(Error::Data(format!(
                    "valuation: {name} is {v}, expected a finite number"
                )));
            }
        }
        let q = 1.0 / ((1.0 + self.discount_rate / 100.0) * (1.0 + self.rate_change / 100.0));
        if !q.is_finite() || q <= 0.0 {
            return Err(Error::Data(format!(
                "valuation: discount rate {} % and rate change {} % give a discount factor of {q}, expected a positive number (rates must be above -100 %)",
                self.discount_rate, self.rate_change
            )));
        }
        let mut sum = 0.0;
        let mut term = 1.0;
        for _ in 0..n {
            sum += term;
            term *= q;
        }
        Ok(self.price / n as f64 * sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(price: f64, r: f64, c: f64, y0: i32, y1: i32) -> Valuation {
        Valuation {
            price,
            discount_rate: r,
            rate_change: c,
            year_baseline: y0,
            year_alternate: y1,
        }
    }

    #[test]
    fn matches_invest_valuation_constant_test() {
        // InVEST test: _calculate_valuation_constant(2010, 2012, 5, 50, 50) = 40.87302.
        // By hand: T = 2, q = 1 / (1.05 * 1.5) = 0.634920..., 50 / 2 * (1 + q) = 40.873015...
        let k = v(50.0, 5.0, 50.0, 2010, 2012).constant().unwrap();
        assert_eq!(format!("{k:.5}"), "40.87302");
        assert!((k - 25.0 * (1.0 + 1.0 / 1.575)).abs() < 1e-12);
    }

    #[test]
    fn matches_invest_regression_npv_per_pixel() {
        // InVEST tests/test_carbon.py (test_carbon_future): class 1 -> class 2 on 1 m
        // cells = -58 t/ha * 1e-4 ha = -0.0058 t per pixel; price 43, discount -7.1 %,
        // rate change 2.8 %, 2016 -> 2030 gives npv_fut = -0.3422078 per pixel.
        let k = v(43.0, -7.1, 2.8, 2016, 2030).constant().unwrap();
        assert!((-0.0058 * k - -0.3422078).abs() < 1e-6, "{}", -0.0058 * k);
        // test_carbon_zero_rates: -58 * 1e-4 * 43 = -0.2494 per pixel.
        let k0 = v(43.0, 0.0, 0.0, 2016, 2030).constant().unwrap();
        assert!((-0.0058 * k0 - -0.2494).abs() < 1e-12);
    }

    #[test]
    fn rejects_years_in_the_wrong_order() {
        let e = v(1.0, 0.0, 0.0, 2020, 2020)
            .constant()
            .unwrap_err()
            .to_string();
        assert!(e.contains("2020"), "{e}");
        assert!(v(1.0, -100.0, 0.0, 2000, 2010).constant().is_err());
    }
}
