//! The driver-analysis section of the report: the factor table (the paper's Table 10,
//! each class's GWR R² on each single driver) with the permutation test beside it.

use flus_shared::analysis::AnalysisJson;

use super::html::{self, esc, LegendEntry};
use super::Csv;

/// Significance level of the factor table's marks.
pub const ALPHA: f64 = 0.05;

/// One class x driver cell of `gwr_factor_r2.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorCell {
    /// The class.
    pub class: String,
    /// The driver.
    pub factor: String,
    /// Columns r2, r2_intercept_only, r2_null_p95, p_value as written (may be empty).
    pub values: [String; 4],
}

impl FactorCell {
    /// The factor does not beat the permutation null at [`ALPHA`] (p-value above it).
    pub fn not_significant(&self) -> bool {
        self.values[3]
            .parse::<f64>()
            .is_ok_and(|p| p.is_finite() && p > ALPHA)
    }
}

/// The cells of `gwr_factor_r2.csv` (columns class, factor, bandwidth, r2,
/// r2_intercept_only, r2_null_p95, p_value), in file order.
pub fn factor_cells(csv: &Csv) -> Vec<FactorCell> {
    let Some((header, rows)) = csv else {
        return Vec::new();
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(c), Some(f)) = (col("class"), col("factor")) else {
        // a run folder of an earlier flus: a class per row, a driver per column, R2 only
        return rows
            .iter()
            .flat_map(|r| {
                header
                    .iter()
                    .enumerate()
                    .skip(1)
                    .map(move |(j, factor)| FactorCell {
                        class: r.first().cloned().unwrap_or_default(),
                        factor: factor.clone(),
                        values: [
                            r.get(j).cloned().unwrap_or_default(),
                            String::new(),
                            String::new(),
                            String::new(),
                        ],
                    })
            })
            .collect();
    };
    let idx = ["r2", "r2_intercept_only", "r2_null_p95", "p_value"].map(col);
    rows.iter()
        .filter_map(|r| {
            Some(FactorCell {
                class: r.get(c)?.clone(),
                factor: r.get(f)?.clone(),
                values: idx.map(|i| i.and_then(|i| r.get(i)).cloned().unwrap_or_default()),
            })
        })
        .collect()
}

/// The distinct values of `key` over `cells`, in order of first appearance.
fn distinct(cells: &[FactorCell], key: impl Fn(&FactorCell) -> &String) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in cells {
        if !out.contains(key(c)) {
            out.push(key(c).clone());
        }
    }
    out
}

/// The section: the heat table of R² (classes x drivers) with the drivers that do not
/// beat the null marked, then the test's figures per cell; `gwr` is run.json's `gwr`
/// (None: a run without it).
pub fn factor_section(
    csv: &Csv,
    legend: &[LegendEntry],
    gwr: Option<&AnalysisJson>,
) -> Option<String> {
    let cells = factor_cells(csv);
    if cells.is_empty() {
        return None;
    }
    let classes = distinct(&cells, |c| &c.class);
    let factors = distinct(&cells, |c| &c.factor);
    let find = |cl: &str, f: &str| cells.iter().find(|c| c.class == cl && c.factor == f);
    let mut header = vec!["class".to_string()];
    header.extend(factors.iter().cloned());
    let rows: Vec<Vec<String>> = classes
        .iter()
        .map(|cl| {
            let mut row = vec![cl.clone()];
            row.extend(
                factors
                    .iter()
                    .map(|f| find(cl, f).map_or(String::new(), |c| c.values[0].clone())),
            );
            row
        })
        .collect();
    let table = html::heat_table_marked(&header, &rows, super::swatch(legend), |r, c| {
        c > 0 && find(&classes[r], &factors[c - 1]).is_some_and(FactorCell::not_significant)
    });
    let m = gwr.and_then(|g| g.permutations);
    let test = match m {
        Some(m) if m > 0 => format!(
            "Each R² is tested against {m} seeded permutations of the driver across the sample points, fitted at the driver's own bandwidth: p = (1 + number of permutation R² ≥ R²) / ({m} + 1). <b>†</b> struck-through values do not beat the null (p > {ALPHA}): a driver of pure noise reaches a similar R² because the local intercept carries the fit (compare the intercept-only R² below)."
        ),
        _ => "No permutation test was run (<code>[gwr] permutations = 0</code>).".into(),
    };
    let detail_header: Vec<String> = [
        "class",
        "driver",
        "R²",
        "intercept-only R²",
        "null R², 95th percentile",
        "p-value",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let detail_rows: Vec<Vec<String>> = cells
        .iter()
        .map(|c| {
            let mut r = vec![c.class.clone(), c.factor.clone()];
            r.extend(c.values.iter().cloned());
            r
        })
        .collect();
    let detail = html::table(&detail_header, &detail_rows, Some(4), esc, |_| "");
    Some(format!(
        "<section id=\"gwr\"><h2>Driver analysis (GWR factor R²)</h2><p class=\"lead\">R² of a geographically weighted regression of each class's suitability on one driver (the GWR's R² over all {} sample points, the paper's Table 10); darker = the driver explains more. {test}</p>{table}<details><summary>Permutation test per class and driver</summary>{detail}</details></section>",
        gwr.map_or("?".to_string(), |g| g.points.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_with_a_p_value_above_alpha_are_marked() {
        let header: Vec<String> = flus_shared::analysis::FACTOR_TABLE_COLUMNS
            .map(String::from)
            .to_vec();
        let row = |c: &str, f: &str, r2: &str, p: &str| {
            [c, f, "50", r2, "0.6", "0.7", p]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        let csv: Csv = Some((
            header,
            vec![
                row("forest", "dem", "0.9000", "0.0100"),
                row("forest", "noise", "0.6500", "0.4200"),
            ],
        ));
        // the wide table of earlier runs: class rows, driver columns
        let wide: Csv = Some((
            vec!["class".into(), "dem".into(), "slope".into()],
            vec![vec!["forest".into(), "0.5".into(), "0.25".into()]],
        ));
        let w = factor_cells(&wide);
        assert_eq!(w.len(), 2);
        assert_eq!(
            (w[1].factor.as_str(), w[1].values[0].as_str()),
            ("slope", "0.25")
        );
        assert!(!w[1].not_significant());
        let cells = factor_cells(&csv);
        assert_eq!(cells.len(), 2);
        assert!(!cells[0].not_significant());
        assert!(cells[1].not_significant());
        let gwr: AnalysisJson =
            serde_json::from_str(r#"{"points": 1000, "classes": {}, "permutations": 99}"#).unwrap();
        let s = factor_section(&csv, &[], Some(&gwr)).unwrap();
        // 0.900 plain, 0.650 marked
        assert!(s.contains(">0.900</td>"), "{s}");
        assert!(
            s.contains(">0.650†</td>") && s.contains("class=\"num ns\""),
            "{s}"
        );
        assert!(s.contains("99 seeded permutations"), "{s}");
        assert!(s.contains("all 1000 sample points"), "{s}");
        // a run without the analysis's figures: no test named, points unknown
        let s = factor_section(&csv, &[], None).unwrap();
        assert!(
            s.contains("No permutation test") && s.contains("all ? sample"),
            "{s}"
        );
    }
}
