//! The paper's carbon-density chain (Qin et al. 2023, Tables 4 -> 5 -> 6): from a
//! national soil carbon density per class, the below/above-ground biomass ratio and the
//! shares of total carbon held in biomass, soil and dead matter, to the four InVEST
//! pools of the study area.
//!
//! Per class: soil = national soil x K where `correct` (K the precipitation factor of
//! [`super::correction`]), else the national soil; total = soil / soil_share; biomass =
//! biomass_share x total, split into above = biomass / (1 + ratio) and below = biomass -
//! above; dead = dead_share x total.

use std::path::Path;

use super::pools::{ClassPools, Pools, PoolsTable};
use crate::error::{Error, Result};

/// The columns of a density-chain table, in the order they are documented.
pub const CHAIN_COLUMNS: [&str; 7] = [
    "lucode",
    "soil",
    "ratio",
    "biomass_share",
    "soil_share",
    "dead_share",
    "correct",
];

/// One class of a density-chain table.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainRow {
    /// Land-use code.
    pub code: i64,
    /// National soil carbon density, t/ha.
    pub soil: f64,
    /// Below-ground / above-ground biomass ratio.
    pub ratio: f64,
    /// Share of total carbon in biomass (above + below), a fraction.
    pub biomass_share: f64,
    /// Share of total carbon in the soil, a fraction.
    pub soil_share: f64,
    /// Share of total carbon in dead matter, a fraction.
    pub dead_share: f64,
    /// Whether the precipitation factor applies to this class's soil density.
    pub correct: bool,
}

impl ChainRow {
    /// Checks the row's values; the message names the column and what was expected.
    pub fn check(&self) -> std::result::Result<(), String> {
        for (name, v) in [
            ("soil", self.soil),
            ("ratio", self.ratio),
            ("biomass_share", self.biomass_share),
            ("soil_share", self.soil_share),
            ("dead_share", self.dead_share),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "`{name}` is {v}, expected a finite non-negative number"
                ));
            }
        }
        for (name, v) in [
            ("biomass_share", self.biomass_share),
            ("soil_share", self.soil_share),
            ("dead_share", self.dead_share),
        ] {
            if v > 1.0 {
                return Err(format!(
                    "`{name}` is {v}, expected a fraction in [0, 1] (26 % is 0.26)"
                ));
            }
        }
        let sum = self.biomass_share + self.soil_share + self.dead_share;
        if (sum - 1.0).abs() > 1e-3 {
            return Err(format!(
                "biomass_share + soil_share + dead_share = {sum}, expected 1 (shares of the total carbon)"
            ));
        }
        if self.soil > 0.0 && self.soil_share == 0.0 {
            return Err(format!(
                "`soil_share` is 0 with a soil density of {}, expected a positive share (total = soil / soil_share)",
                self.soil
            ));
        }
        Ok(())
    }

    /// The four pools of this class (t/ha) with precipitation factor `k`.
    pub fn pools(&self, k: f64) -> Pools {
        let soil = if self.correct {
            self.soil * k
        } else {
            self.soil
        };
        let total = if self.soil_share > 0.0 {
            soil / self.soil_share
        } else {
            0.0
        };
        let biomass = self.biomass_share * total;
        let above = biomass / (1.0 + self.ratio);
        Pools {
            above,
            below: biomass - above,
            soil,
            dead: self.dead_share * total,
        }
    }
}

/// The pools table of `rows` with precipitation factor `k` (finite, positive).
pub fn chain_pools(rows: &[ChainRow], k: f64) -> Result<PoolsTable> {
    if !k.is_finite() || k <= 0.0 {
        return Err(Error::Data(format!(
            "the precipitation factor K is {k}, expected a finite positive number"
        )));
    }
    PoolsTable::new(
        rows.iter()
            .map(|r| ClassPools {
                code: r.code,
                name: String::new(),
                pools: r.pools(k),
            })
            .collect(),
    )
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Some(true),
        "false" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Reads a density-chain table (columns [`CHAIN_COLUMNS`], matched case-insensitively,
/// extra columns ignored). Every error names the file, the row (header = 1) and the
/// column.
pub fn read_chain_csv(path: &Path) -> Result<Vec<ChainRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::table(path, format!("unreadable header row: {e}")))?
        .clone();
    let lower: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    let mut cols = [0usize; 7];
    for (slot, name) in cols.iter_mut().zip(CHAIN_COLUMNS) {
        *slot = lower.iter().position(|h| h == name).ok_or_else(|| {
            Error::table(
                path,
                format!(
                    "missing column `{name}` (header has: {}); expected columns {}",
                    headers.iter().collect::<Vec<_>>().join(", "),
                    CHAIN_COLUMNS.join(", ")
                ),
            )
        })?;
    }
    let mut rows: Vec<ChainRow> = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| Error::table(path, format!("not a valid CSV record ({e})")))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let field = |c: usize| rec.get(cols[c]).unwrap_or("");
        let bad = |c: usize, what: &str| {
            Error::table(
                path,
                format!(
                    "row {line}, column `{}`: found {:?}, expected {what}",
                    CHAIN_COLUMNS[c],
                    field(c)
                ),
            )
        };
        let code: i64 = field(0)
            .parse()
            .map_err(|_| bad(0, "an integer land-use code"))?;
        let mut v = [0f64; 5];
        for (i, x) in v.iter_mut().enumerate() {
            *x = field(i + 1).parse().map_err(|_| bad(i + 1, "a number"))?;
        }
        let correct = parse_bool(field(6)).ok_or_else(|| bad(6, "true or false"))?;
        let row = ChainRow {
            code,
            soil: v[0],
            ratio: v[1],
            biomass_share: v[2],
            soil_share: v[3],
            dead_share: v[4],
            correct,
        };
        row.check()
            .map_err(|m| Error::table(path, format!("row {line} (lucode {code}): {m}")))?;
        if rows.iter().any(|r| r.code == code) {
            return Err(Error::table(
                path,
                format!("row {line}: lucode {code} appears twice, expected one row per class"),
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Error::table(
            path,
            "no data rows, expected one row per class",
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(code: i64, soil: f64, ratio: f64, shares: (f64, f64, f64), correct: bool) -> ChainRow {
        ChainRow {
            code,
            soil,
            ratio,
            biomass_share: shares.0,
            soil_share: shares.1,
            dead_share: shares.2,
            correct,
        }
    }

    #[test]
    fn one_class_by_hand() {
        // soil 100 t/ha x K 1.5 = 150; total = 150 / 0.75 = 200; biomass 0.2 x 200 = 40,
        // above = 40 / (1 + 0.25) = 32, below 8; dead = 0.05 x 200 = 10
        let p = row(1, 100.0, 0.25, (0.2, 0.75, 0.05), true).pools(1.5);
        for (got, want) in [
            (p.soil, 150.0),
            (p.above, 32.0),
            (p.below, 8.0),
            (p.dead, 10.0),
        ] {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // not corrected: soil stays 100, total 133.33
        let p = row(1, 100.0, 0.25, (0.2, 0.75, 0.05), false).pools(1.5);
        assert_eq!(p.soil, 100.0);
        assert!((p.above - 100.0 / 0.75 * 0.2 / 1.25).abs() < 1e-12);
    }

    /// Qin et al. (2023): shares 26/72/2 % (construction land 21/79/0 %, its soil 25.3
    /// t/ha not corrected), K = 1.71896 (Zhanjiang 1999.4 mm, national 671.1 mm).
    ///
    /// The national soil densities (Table 4) and below/above ratios (Table 5) below are
    /// NOT copied from the paper (its Tables 4-5 were not available when this was
    /// written): the soils are the paper's Table 6 soils divided by K, at the precision
    /// a table prints (108.4 = 186.3 / 1.71896 = 108.38; forest 273.0 / K = 158.82),
    /// and the ratios are round values (0.66, 0.2, 1.2). What the test proves is that the
    /// chain (shares, the biomass split, the uncorrected construction class, water 0)
    /// gives every one of the 24 printed Table 6 values, which no other reading of the
    /// text does (e.g. correcting construction gives soil 43.5).
    #[test]
    fn the_paper_table_6_follows_from_its_national_densities_and_shares() {
        let s = (0.26, 0.72, 0.02);
        let rows = vec![
            row(1, 108.4, 0.66, s, true),                // cropland
            row(2, 158.82, 0.2, s, true),                // forest
            row(3, 99.9, 1.2, s, true),                  // grassland
            row(4, 25.3, 0.2, (0.21, 0.79, 0.0), false), // construction
            row(5, 0.0, 0.0, s, true),                   // water
            row(6, 21.6, 0.2, s, true),                  // unutilised
        ];
        let k = crate::carbon::correction_factor(1999.4, 671.1).unwrap();
        assert!((k - 1.71896).abs() < 5e-6);
        let t = chain_pools(&rows, k).unwrap();
        // Table 6 (t/ha: above, below, soil, dead)
        let table6 = [
            (1, [40.5, 26.8, 186.3, 5.2]),
            (2, [82.2, 16.4, 273.0, 7.6]),
            (3, [28.2, 33.8, 171.7, 4.8]),
            (4, [5.6, 1.1, 25.3, 0.0]),
            (5, [0.0, 0.0, 0.0, 0.0]),
            (6, [11.2, 2.2, 37.1, 1.0]),
        ];
        for (code, want) in table6 {
            let p = t.get(code).unwrap().pools;
            for ((name, got), w) in p.named().iter().zip(want) {
                assert_eq!(
                    (got * 10.0).round() / 10.0,
                    w,
                    "class {code} {name}: {got} does not print as {w}"
                );
            }
        }
        // correcting construction too would not give the printed 25.3
        let wrong = row(4, 25.3, 0.2, (0.21, 0.79, 0.0), true).pools(k);
        assert!((wrong.soil - 43.49).abs() < 0.01);
    }

    #[test]
    fn shares_given_in_percent_are_refused_naming_file_row_and_column() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        std::fs::write(
            &p,
            "lucode,soil,ratio,biomass_share,soil_share,dead_share,correct\n1,108.4,0.66,26,72,2,true\n",
        )
        .unwrap();
        let e = read_chain_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.csv")
                && e.contains("row 2")
                && e.contains("biomass_share")
                && e.contains("0.26"),
            "{e}"
        );
        std::fs::write(
            &p,
            "lucode,soil,ratio,biomass_share,soil_share,dead_share,correct\n1,108.4,0.66,0.26,0.72,0.02,maybe\n",
        )
        .unwrap();
        let e = read_chain_csv(&p).unwrap_err().to_string();
        assert!(e.contains("`correct`") && e.contains("maybe"), "{e}");
        std::fs::write(&p, "lucode,soil,ratio\n1,2,3\n").unwrap();
        let e = read_chain_csv(&p).unwrap_err().to_string();
        assert!(e.contains("missing column `biomass_share`"), "{e}");
    }
}
