//! Driver analysis of a study (DESIGN 2.7, paper Table 10): GWR of each class's
//! suitability on the drivers at a seeded sample of valid cells, and the R2 of a GWR of
//! each class's suitability on each single driver.

use std::path::Path;

use crate::config::{KernelName, Study};
use crate::error::Result;
use crate::files;
use crate::gwr::{
    self, BandwidthChoice, GwrData, GwrModel, GwrSettings, Kernel, SearchSettings, Weighting,
};
use crate::rng::{stream, CounterRng};
use crate::stack::Stack;

/// A seeded sample of `n` valid cells (the smallest Philox keys; ascending cell order).
pub fn sample_cells(mask: &[bool], n: usize, seed: u64) -> Vec<usize> {
    let rng = CounterRng::new(seed);
    let mut keyed: Vec<(u32, usize)> = mask
        .iter()
        .enumerate()
        .filter(|(_, &v)| v)
        .map(|(i, _)| (rng.block(stream::GWR_SAMPLE, 0, i as u64, 0)[0], i))
        .collect();
    if keyed.len() > n {
        keyed.select_nth_unstable(n);
        keyed.truncate(n);
    }
    let mut cells: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    cells.sort_unstable();
    cells
}

fn settings(study: &Study) -> GwrSettings {
    let g = &study.config.gwr;
    GwrSettings {
        weighting: Weighting {
            kernel: match g.kernel {
                KernelName::Bisquare => Kernel::Bisquare,
                KernelName::Gaussian => Kernel::Gaussian,
                KernelName::Exponential => Kernel::Exponential,
            },
            adaptive: !g.fixed,
            ..Weighting::default()
        },
        bandwidth: match g.bandwidth {
            Some(b) => BandwidthChoice::Given(b),
            None => BandwidthChoice::Search(SearchSettings::default()),
        },
        ..GwrSettings::default()
    }
}

/// Runs the driver analysis on the suitability (cell-major, K per cell) and writes
/// `gwr_summary.csv`, `gwr_points_<class>.csv` and `gwr_factor_r2.csv` (Table 10) into
/// `dir`. Returns a JSON summary; a class whose GWR fails is reported, not fatal.
pub fn run(
    study: &Study,
    stack: &Stack,
    suitability: &[f32],
    dir: &Path,
) -> Result<serde_json::Value> {
    let k = study.k();
    let cells = sample_cells(
        &stack.mask,
        study.config.gwr.sample_points,
        study.config.study.seed,
    );
    let coords: Vec<[f64; 2]> = cells
        .iter()
        .map(|&i| {
            let (x, y) = stack
                .grid
                .cell_centre(i % stack.grid.width, i / stack.grid.width);
            [x, y]
        })
        .collect();
    let factors: Vec<(String, Vec<f64>)> = stack
        .drivers
        .iter()
        .map(|d| {
            (
                d.name.clone(),
                cells.iter().map(|&i| d.values[i] as f64).collect(),
            )
        })
        .collect();
    let s = settings(study);
    let standardize = study.config.gwr.standardize;
    let mut summary_rows = Vec::new();
    let mut table10 = Vec::new();
    let mut classes_json = serde_json::Map::new();
    for (c, class) in study.config.classes.iter().enumerate() {
        let y: Vec<f64> = cells
            .iter()
            .map(|&i| suitability[i * k + c] as f64)
            .collect();
        let y_name = format!("suitability_{}", class.name);
        let fitted =
            GwrData::new(&y_name, y.clone(), factors.clone(), coords.clone()).map(|mut d| {
                if standardize {
                    d.standardize_factors();
                }
                d
            });
        let result = match fitted {
            Ok(d) => gwr::fit(&GwrModel::new(d), &s),
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(r) => {
                let d = &r.diagnostics;
                let mut row = vec![
                    class.name.clone(),
                    d.n.to_string(),
                    format!("{}", d.bandwidth),
                    format!("{:.4}", d.aicc),
                    format!("{:.6}", d.r2),
                    format!("{:.6}", d.adj_r2),
                    format!("{:.6}", r.ols.r2),
                ];
                row.extend(r.coefficients.iter().map(|c| format!("{:.6}", c.mean)));
                summary_rows.push(row);
                let mut header = vec!["x".to_string(), "y".into()];
                header.extend(r.names.iter().map(|n| format!("b_{n}")));
                header.extend(r.names.iter().map(|n| format!("t_{n}")));
                header.push("local_r2".into());
                let rows: Vec<Vec<String>> = r
                    .fits
                    .iter()
                    .zip(&r.stats)
                    .map(|(f, st)| {
                        let mut row = vec![
                            format!("{:.3}", coords[f.index][0]),
                            format!("{:.3}", coords[f.index][1]),
                        ];
                        row.extend(f.params.iter().map(|v| format!("{v:.6}")));
                        row.extend(st.t.iter().map(|v| format!("{v:.4}")));
                        row.push(format!("{:.6}", st.local_r2));
                        row
                    })
                    .collect();
                files::write_csv(
                    &dir.join(format!("gwr_points_{}.csv", class.name)),
                    &header,
                    &rows,
                )?;
                classes_json.insert(
                    class.name.clone(),
                    serde_json::json!({ "bandwidth": d.bandwidth, "aicc": d.aicc, "r2": d.r2, "adj_r2": d.adj_r2, "ols_r2": r.ols.r2 }),
                );
            }
            Err(e) => {
                tracing::warn!(class = %class.name, "GWR failed: {e}");
                classes_json.insert(
                    class.name.clone(),
                    serde_json::json!({ "error": e.to_string() }),
                );
            }
        }
        let single = gwr::single_factor_r2(&y_name, &y, &factors, &coords, &s);
        match single {
            Ok(v) => table10.push((
                class.name.clone(),
                v.iter().map(|f| f.r2).collect::<Vec<f64>>(),
            )),
            Err(e) => {
                tracing::warn!(class = %class.name, "single-factor GWR failed: {e}");
                table10.push((class.name.clone(), vec![f64::NAN; factors.len()]));
            }
        }
    }
    let mut header: Vec<String> = [
        "class",
        "points",
        "bandwidth",
        "aicc",
        "r2",
        "adj_r2",
        "ols_r2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.push("mean_b_intercept".into());
    header.extend(factors.iter().map(|(n, _)| format!("mean_b_{n}")));
    files::write_csv(&dir.join("gwr_summary.csv"), &header, &summary_rows)?;
    let mut header = vec!["class".to_string()];
    header.extend(factors.iter().map(|(n, _)| n.clone()));
    let rows: Vec<Vec<String>> = table10
        .iter()
        .map(|(c, r2)| {
            let mut row = vec![c.clone()];
            row.extend(r2.iter().map(|v| {
                if v.is_nan() {
                    String::new()
                } else {
                    format!("{v:.4}")
                }
            }));
            row
        })
        .collect();
    files::write_csv(&dir.join("gwr_factor_r2.csv"), &header, &rows)?;
    Ok(serde_json::json!({
        "points": cells.len(),
        "classes": classes_json,
        "factor_r2": table10.iter().map(|(c, v)| serde_json::json!({"class": c, "r2": v.iter().map(|x| if x.is_nan() { None } else { Some(*x) }).collect::<Vec<_>>()})).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_seeded_sized_and_only_valid_cells() {
        let mask: Vec<bool> = (0..1000).map(|i| i % 3 != 0).collect();
        let a = sample_cells(&mask, 50, 7);
        assert_eq!(a.len(), 50);
        assert!(a.iter().all(|&i| mask[i]));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, sample_cells(&mask, 50, 7));
        assert_ne!(a, sample_cells(&mask, 50, 8));
        assert_eq!(sample_cells(&mask, 5000, 7).len(), 666);
    }
}
