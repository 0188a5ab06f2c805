//! The carbon pools table: four pools (t/ha) per land-use class, read from and written
//! to InVEST's CSV layout (`lucode,c_above,c_below,c_soil,c_dead`, extra columns allowed).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};

/// The four carbon pools of one class, in t/ha (Mg/ha).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pools {
    /// Above-ground biomass.
    pub above: f64,
    /// Below-ground biomass.
    pub below: f64,
    /// Soil organic carbon.
    pub soil: f64,
    /// Dead organic matter.
    pub dead: f64,
}

impl Pools {
    /// Total density C_k = above + below + soil + dead, in t/ha.
    pub fn density(&self) -> f64 {
        self.above + self.below + self.soil + self.dead
    }

    /// Checks that every pool is finite and non-negative; the error says which is not.
    pub fn check(&self) -> std::result::Result<(), String> {
        for (name, v) in self.named() {
            let max = crate::config::MAX_CARBON_POOL;
            if !v.is_finite() || !(0.0..=max).contains(&v) {
                return Err(format!(
                    "`{name}` is {v}, expected a density from 0 to {max} t/ha"
                ));
            }
        }
        Ok(())
    }

    /// The pools with their InVEST column names, in table order.
    pub fn named(&self) -> [(&'static str, f64); 4] {
        [
            ("c_above", self.above),
            ("c_below", self.below),
            ("c_soil", self.soil),
            ("c_dead", self.dead),
        ]
    }
}

/// One row of the pools table.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassPools {
    /// Land-use code (`lucode`) as found in the land-use rasters.
    pub code: i64,
    /// Class name (the `LULC_name` column), empty when the table has none.
    pub name: String,
    /// The four pools, t/ha.
    pub pools: Pools,
}

/// A carbon pools table: one row per land-use code, kept in ascending code order.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolsTable {
    rows: Vec<ClassPools>,
}

/// Fast lookup from a land-use code to its row index in a [`PoolsTable`].
#[derive(Clone, Debug)]
pub enum ClassIndex {
    /// Codes within a small range: a direct table from `code - min`.
    Dense {
        /// Smallest code.
        min: i64,
        /// Row index + 1 per code (0 = not in the table).
        slots: Vec<u32>,
    },
    /// Widely spread codes: a hash map.
    Sparse(HashMap<i64, usize>),
}

impl ClassIndex {
    /// Row index of `code`, or `None` when the table has no such code.
    #[inline]
    pub fn get(&self, code: i64) -> Option<usize> {
        match self {
            ClassIndex::Dense { min, slots } => {
                let off = code.checked_sub(*min)?;
                if off < 0 {
                    return None;
                }
                match slots.get(off as usize) {
                    Some(&s) if s > 0 => Some(s as usize - 1),
                    _ => None,
                }
            }
            ClassIndex::Sparse(m) => m.get(&code).copied(),
        }
    }
}

impl PoolsTable {
    /// Builds a table from rows; rejects an empty table, duplicate codes and invalid pools.
    pub fn new(mut rows: Vec<ClassPools>) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::Data(
                "the carbon pools table has no rows, expected at least one class".into(),
            ));
        }
        for r in &rows {
            r.pools
                .check()
                .map_err(|m| Error::Data(format!("pools of class {}: {m}", r.code)))?;
        }
        rows.sort_by_key(|r| r.code);
        for w in rows.windows(2) {
            if w[0].code == w[1].code {
                return Err(Error::Data(format!(
                    "class {} appears twice in the carbon pools table, expected one row per lucode",
                    w[0].code
                )));
            }
        }
        Ok(PoolsTable { rows })
    }

    /// The rows, in ascending code order.
    pub fn rows(&self) -> &[ClassPools] {
        &self.rows
    }

    /// The class codes, ascending (the class order of counts and totals).
    pub fn codes(&self) -> Vec<i64> {
        self.rows.iter().map(|r| r.code).collect()
    }

    /// The row of `code`.
    pub fn get(&self, code: i64) -> Option<&ClassPools> {
        self.rows
            .binary_search_by_key(&code, |r| r.code)
            .ok()
            .map(|i| &self.rows[i])
    }

    /// Total densities (t/ha) in row order.
    pub fn densities(&self) -> Vec<f64> {
        self.rows.iter().map(|r| r.pools.density()).collect()
    }

    /// A lookup from code to row index.
    pub fn index(&self) -> ClassIndex {
        let min = self.rows[0].code;
        let max = self.rows[self.rows.len() - 1].code;
        let span = (max as i128 - min as i128) as u128;
        if span < (1 << 20) {
            let mut slots = vec![0u32; span as usize + 1];
            for (i, r) in self.rows.iter().enumerate() {
                slots[(r.code - min) as usize] = i as u32 + 1;
            }
            ClassIndex::Dense { min, slots }
        } else {
            ClassIndex::Sparse(
                self.rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.code, i))
                    .collect(),
            )
        }
    }
}

/// The columns InVEST requires, in the order they are written.
pub const POOL_COLUMNS: [&str; 4] = ["c_above", "c_below", "c_soil", "c_dead"];

fn parse_code(s: &str) -> Option<i64> {
    if let Ok(v) = s.parse::<i64>() {
        return Some(v);
    }
    // "3.0" is accepted (spreadsheets write integers that way), "3.5" is not.
    let f = s.parse::<f64>().ok()?;
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
        Some(f as i64)
    } else {
        None
    }
}

/// Reads an InVEST carbon pools CSV.
///
/// Columns are matched case-insensitively after trimming (`C_above` = `c_above`, as
/// InVEST does); `lucode`, `c_above`, `c_below`, `c_soil`, `c_dead` are required, a
/// `lulc_name` column is kept as the class name, other columns are ignored. Every error
/// names the file, the row (line number, header = 1) and the column.
pub fn read_pools_csv(path: &Path) -> Result<PoolsTable> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::table(path, format!("unreadable header row: {e}")))?
        .clone();
    let lower: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    let find = |name: &str| column(path, &headers, &lower, name);
    let code_col = find("lucode")?;
    let pool_cols = [
        find(POOL_COLUMNS[0])?,
        find(POOL_COLUMNS[1])?,
        find(POOL_COLUMNS[2])?,
        find(POOL_COLUMNS[3])?,
    ];
    let name_col = lower.iter().position(|h| h == "lulc_name");
    let mut rows = Vec::new();
    let mut seen: BTreeMap<i64, u64> = BTreeMap::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            Error::table(path, format!("row {line}: not a valid CSV record ({e})"))
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let field = |i: usize| rec.get(i).unwrap_or("");
        let code_s = field(code_col);
        let code = parse_code(code_s).ok_or_else(|| {
            Error::table(
                path,
                format!("row {line}, column `lucode`: found {code_s:?}, expected an integer land-use code"),
            )
        })?;
        if let Some(first) = seen.insert(code, line) {
            return Err(Error::table(
                path,
                format!("row {line}, column `lucode`: code {code} already given on row {first}, expected one row per code"),
            ));
        }
        let mut v = [0f64; 4];
        for (k, &col) in pool_cols.iter().enumerate() {
            v[k] = pool_value(path, line, POOL_COLUMNS[k], field(col))?;
        }
        rows.push(ClassPools {
            code,
            name: name_col.map(|c| field(c).to_string()).unwrap_or_default(),
            pools: Pools {
                above: v[0],
                below: v[1],
                soil: v[2],
                dead: v[3],
            },
        });
    }
    if rows.is_empty() {
        return Err(Error::table(
            path,
            "no data rows, expected one row per land-use code",
        ));
    }
    PoolsTable::new(rows).map_err(|e| Error::table(path, e))
}

/// The index of column `name` (lower case) in the header `headers` (`lower`: the same in
/// lower case): missing or repeated is an error naming the header's columns.
fn column(path: &Path, headers: &csv::StringRecord, lower: &[String], name: &str) -> Result<usize> {
    let hits: Vec<usize> = lower
        .iter()
        .enumerate()
        .filter(|(_, h)| h.as_str() == name)
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [i] => Ok(*i),
        [] => Err(Error::table(
            path,
            format!(
                "missing column `{name}` (header has: {}); expected columns lucode, c_above, c_below, c_soil, c_dead",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        )),
        _ => Err(Error::table(
            path,
            format!("column `{name}` appears {} times in the header, expected once", hits.len()),
        )),
    }
}

/// The density `s` of pool column `name` on row `line`: a finite number from 0 to
/// [`crate::config::MAX_CARBON_POOL`] t/ha.
fn pool_value(path: &Path, line: u64, name: &str, s: &str) -> Result<f64> {
    let x: f64 = s.parse().map_err(|_| {
        Error::table(
            path,
            format!("row {line}, column `{name}`: found {s:?}, expected a number (t/ha)"),
        )
    })?;
    if !x.is_finite() {
        return Err(Error::table(
            path,
            format!("row {line}, column `{name}`: found {s:?}, expected a finite number (t/ha)"),
        ));
    }
    if x < 0.0 {
        return Err(Error::table(
            path,
            format!(
                "row {line}, column `{name}`: found {s}, expected a non-negative density (t/ha)"
            ),
        ));
    }
    let max = crate::config::MAX_CARBON_POOL;
    if x > max {
        return Err(Error::table(
            path,
            format!("row {line}, column `{name}`: found {s}, expected at most {max} t/ha"),
        ));
    }
    Ok(x)
}

/// `table` as InVEST pools CSV text (`lucode,LULC_name,c_above,c_below,c_soil,c_dead`;
/// the name column only when some class has a name).
pub fn pools_csv_text(table: &PoolsTable) -> String {
    let with_names = table.rows().iter().any(|r| !r.name.is_empty());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["lucode"];
    if with_names {
        header.push("LULC_name");
    }
    header.extend(POOL_COLUMNS);
    // Writing into memory cannot fail.
    let _ = w.write_record(&header);
    for r in table.rows() {
        let mut rec = vec![r.code.to_string()];
        if with_names {
            rec.push(r.name.clone());
        }
        rec.extend(r.pools.named().iter().map(|(_, v)| v.to_string()));
        let _ = w.write_record(&rec);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Writes `table` as an InVEST pools CSV (see [`pools_csv_text`]) to a temporary name
/// renamed to `path`.
pub fn write_pools_csv(path: &Path, table: &PoolsTable) -> Result<()> {
    write_atomic(path, pools_csv_text(table).as_bytes())
}

/// Writes `bytes` to a temporary file beside `path` and renames it to `path`
/// ([`crate::files::write_atomic`]: never over an input of this command).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_invest_sample_layout_with_mixed_case_and_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        // InVEST's own test table (tests/test_carbon.py, make_pools_csv).
        let p = write(
            dir.path(),
            "pools.csv",
            "C_above,C_below,C_soil,C_dead,lucode,LULC_Name\n\
             15,10,60,1,1,\"lulc code 1\"\n5,3,20,0,2,\"lulc code 2\"\n2,1,5,0,3,\"lulc code 3\"\n",
        );
        let t = read_pools_csv(&p).unwrap();
        assert_eq!(t.codes(), vec![1, 2, 3]);
        assert_eq!(t.densities(), vec![86.0, 28.0, 8.0]);
        assert_eq!(t.get(2).unwrap().name, "lulc code 2");
        let idx = t.index();
        assert_eq!(idx.get(3), Some(2));
        assert_eq!(idx.get(4), None);
        assert_eq!(idx.get(-7), None);
    }

    #[test]
    fn written_table_reads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "in.csv",
            "lucode,lulc_name,c_above,c_below,c_soil,c_dead\n4,\"crop, dry\",40.5,26.8,186.3,5.2\n1,forest,82.2,16.4,273,7.6\n",
        );
        let t = read_pools_csv(&p).unwrap();
        let out = dir.path().join("out.csv");
        write_pools_csv(&out, &t).unwrap();
        assert_eq!(read_pools_csv(&out).unwrap(), t);
        assert_eq!(t.get(4).unwrap().name, "crop, dry");
    }

    #[test]
    fn missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "nosoil.csv",
            "lucode,c_above,c_below,c_dead\n1,1,2,3\n",
        );
        let e = read_pools_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("nosoil.csv") && e.contains("missing column `c_soil`"),
            "{e}"
        );
    }

    #[test]
    fn negative_pool_names_file_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "neg.csv",
            "lucode,c_above,c_below,c_soil,c_dead\n1,1,2,3,4\n2,1,2,-3,4\n",
        );
        let e = read_pools_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("neg.csv")
                && e.contains("row 3")
                && e.contains("`c_soil`")
                && e.contains("-3"),
            "{e}"
        );
    }

    #[test]
    fn non_numeric_and_duplicate_codes_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "text.csv",
            "lucode,c_above,c_below,c_soil,c_dead\n1,1,lots,3,4\n",
        );
        let e = read_pools_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("row 2") && e.contains("`c_below`") && e.contains("\"lots\""),
            "{e}"
        );
        let p = write(
            dir.path(),
            "dup.csv",
            "lucode,c_above,c_below,c_soil,c_dead\n1,1,2,3,4\n1,1,2,3,4\n",
        );
        let e = read_pools_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("row 3") && e.contains("code 1") && e.contains("row 2"),
            "{e}"
        );
        let p = write(
            dir.path(),
            "frac.csv",
            "lucode,c_above,c_below,c_soil,c_dead\n1.5,1,2,3,4\n",
        );
        let e = read_pools_csv(&p).unwrap_err().to_string();
        assert!(e.contains("`lucode`") && e.contains("1.5"), "{e}");
        let p = write(
            dir.path(),
            "empty.csv",
            "lucode,c_above,c_below,c_soil,c_dead\n",
        );
        assert!(read_pools_csv(&p)
            .unwrap_err()
            .to_string()
            .contains("no data rows"));
    }
}
