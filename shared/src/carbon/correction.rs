//! The density correction of Qin et al. (2023), eq. 10-11: national carbon densities
//! are scaled to a region by the ratio of the soil-carbon / precipitation relation
//! C_PS = 3.3968 P + 3996.1 (P annual precipitation, mm) at the local and the national
//! precipitation.
//!
//! The relation is one for *soil* carbon (Alam et al. 2013, used by the paper), so by
//! default only `c_soil` is corrected ([`CorrectionTarget::Soil`]); the paper's wording
//! "corrected density = national density * K" can be applied to every pool with
//! [`CorrectionTarget::AllPools`].

use super::pools::{ClassPools, Pools, PoolsTable};
use crate::error::{Error, Result};

/// Slope of C_PS on precipitation (eq. 10).
pub const C_PS_SLOPE: f64 = 3.3968;
/// Intercept of C_PS (eq. 10).
pub const C_PS_INTERCEPT: f64 = 3996.1;

/// Soil carbon density predicted from annual precipitation `p_mm` (eq. 10).
pub fn soil_carbon_from_precipitation(p_mm: f64) -> f64 {
    C_PS_SLOPE * p_mm + C_PS_INTERCEPT
}

/// Correction factor K = C_PS(local) / C_PS(national) (eq. 11).
pub fn correction_factor(precip_local_mm: f64, precip_national_mm: f64) -> Result<f64> {
    for (name, p) in [("local", precip_local_mm), ("national", precip_national_mm)] {
        if !p.is_finite() || p < 0.0 {
            return Err(Error::Data(format!(
                "{name} annual precipitation is {p} mm, expected a finite non-negative number"
            )));
        }
    }
    Ok(soil_carbon_from_precipitation(precip_local_mm)
        / soil_carbon_from_precipitation(precip_national_mm))
}

/// Which pools the correction factor multiplies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CorrectionTarget {
    /// Only `c_soil` (the relation is a soil-carbon relation). Default.
    #[default]
    Soil,
    /// All four pools.
    AllPools,
}

/// Returns `table` with its densities multiplied by K (see [`correction_factor`]) in the
/// pools chosen by `target`, and K.
pub fn correct_densities(
    table: &PoolsTable,
    precip_local_mm: f64,
    precip_national_mm: f64,
    target: CorrectionTarget,
) -> Result<(PoolsTable, f64)> {
    let k = correction_factor(precip_local_mm, precip_national_mm)?;
    let rows = table
        .rows()
        .iter()
        .map(|r| {
            let p = r.pools;
            let pools = match target {
                CorrectionTarget::Soil => Pools {
                    soil: p.soil * k,
                    ..p
                },
                CorrectionTarget::AllPools => Pools {
                    above: p.above * k,
                    below: p.below * k,
                    soil: p.soil * k,
                    dead: p.dead * k,
                },
            };
            ClassPools {
                code: r.code,
                name: r.name.clone(),
                pools,
            }
        })
        .collect();
    Ok((PoolsTable::new(rows)?, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PoolsTable {
        PoolsTable::new(vec![
            ClassPools {
                code: 1,
                name: "cropland".into(),
                pools: Pools {
                    above: 40.5,
                    below: 26.8,
                    soil: 186.3,
                    dead: 5.2,
                },
            },
            ClassPools {
                code: 5,
                name: "water".into(),
                pools: Pools {
                    above: 0.0,
                    below: 0.0,
                    soil: 0.0,
                    dead: 0.0,
                },
            },
        ])
        .unwrap()
    }

    #[test]
    fn zhanjiang_factor_matches_hand_computation() {
        // Paper figures: Zhanjiang P = 1999.4 mm, national mean P = 671.1 mm (2018).
        // C_PS(local)    = 3.3968 * 1999.4 + 3996.1 = 6791.56192 + 3996.1 = 10787.66192
        // C_PS(national) = 3.3968 * 671.1  + 3996.1 = 2279.59248 + 3996.1 = 6275.69248
        // K = 10787.66192 / 6275.69248 = 1.718959613...
        let k = correction_factor(1999.4, 671.1).unwrap();
        assert!((k - 10787.66192 / 6275.69248).abs() < 1e-12);
        assert!((k - 1.7189596).abs() < 1e-7);
        let (t, k2) = correct_densities(&table(), 1999.4, 671.1, CorrectionTarget::Soil).unwrap();
        assert_eq!(k, k2);
        let crop = t.get(1).unwrap().pools;
        // 186.3 * 1.7189596135 = 320.242176...
        assert!((crop.soil - 320.2421760).abs() < 1e-6, "{}", crop.soil);
        assert_eq!((crop.above, crop.below, crop.dead), (40.5, 26.8, 5.2));
        let (all, _) =
            correct_densities(&table(), 1999.4, 671.1, CorrectionTarget::AllPools).unwrap();
        let crop = all.get(1).unwrap().pools;
        // 40.5 * 1.7189596135 = 69.6178643...
        assert!((crop.above - 69.6178644).abs() < 1e-6, "{}", crop.above);
        assert_eq!(all.get(5).unwrap().pools.density(), 0.0);
    }

    #[test]
    fn negative_precipitation_is_rejected() {
        let e = correction_factor(-1.0, 600.0).unwrap_err().to_string();
        assert!(e.contains("local") && e.contains("-1"), "{e}");
    }
}
