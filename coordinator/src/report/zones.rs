//! Table 9 of the report: mean carbon density per zone and map, zones named from the
//! zone raster (`carbon_density_by_zone.csv`), with the difference row.

use super::html::{self, esc};
use super::Csv;

/// The difference row of Table 9: per map column, the densest zone minus the least
/// dense one (the spread between zones); empty where a column has no number.
pub fn difference_row(rows: &[Vec<String>], columns: std::ops::Range<usize>) -> Vec<String> {
    columns
        .map(|c| {
            let v: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.get(c).and_then(|x| x.parse::<f64>().ok()))
                .collect();
            if v.is_empty() {
                return String::new();
            }
            let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
            format!("{:.6}", hi - lo)
        })
        .collect()
}

/// The section, or None when the run wrote no Table 9 (no `[zones]`).
pub fn density_section(csv: &Csv) -> Option<String> {
    let (header, rows) = csv.as_ref()?;
    // columns: zone (code), name, then one per map
    let named = header.get(1).map(String::as_str) == Some("name");
    let first = if named { 2 } else { 1 };
    let mut out_header = vec!["zone".to_string()];
    out_header.extend(
        header[first..]
            .iter()
            .map(|h| h.trim_end_matches(" kg/m2").replace('_', " ")),
    );
    let mut out_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let code = r.first().cloned().unwrap_or_default();
            let label = match r.get(1) {
                Some(n) if named && *n != code => format!("{n} ({code})"),
                _ => code,
            };
            let mut row = vec![label];
            row.extend(r.iter().skip(first).cloned());
            row
        })
        .collect();
    let mut diff = vec!["difference (largest − smallest zone)".to_string()];
    diff.extend(difference_row(rows, first..header.len()));
    out_rows.push(diff);
    let n = out_rows.len();
    Some(format!(
        "<section id=\"zones\"><h2>Carbon density by zone (Table 9)</h2><p class=\"lead\">Mean carbon density of every zone per map (kg C per m²), zones named from the zone raster (its category names or attribute table, else their codes); the last row is the spread between zones, the densest minus the least dense.</p>{}</section>",
        html::table(&out_header, &out_rows, Some(4), esc, move |r| {
            if r.first().is_some_and(|f| f.starts_with("difference")) && n > 1 {
                "hl"
            } else {
                ""
            }
        })
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two zones at 30.5 and 20.25 kg/m2 in the base year, 10 and 12 in a scenario: the
    /// difference row is 10.25 and 2 (by hand).
    #[test]
    fn the_difference_row_is_the_spread_between_zones() {
        let header: Vec<String> = ["zone", "name", "2020 kg/m2", "urbanized_2060 kg/m2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows = vec![
            vec!["1".to_string(), "west".into(), "30.5".into(), "10".into()],
            vec!["2".to_string(), "2".into(), "20.25".into(), "12".into()],
        ];
        assert_eq!(difference_row(&rows, 2..4), vec!["10.250000", "2.000000"]);
        let s = density_section(&Some((header, rows))).unwrap();
        assert!(s.contains("west (1)"), "{s}");
        // a zone without a name shows its code once
        assert!(s.contains(">2</th>"), "{s}");
        assert!(s.contains("difference (largest − smallest zone)"), "{s}");
        assert!(s.contains("urbanized 2060"), "{s}");
    }
}
