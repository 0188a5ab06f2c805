//! The land-use maps: their class codes checked against the data type, mapped to class
//! indices through a code table, unknown codes reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::on_grid::{read_on_grid, LayerContext};
use super::NO_CLASS;
use crate::config::Study;
use crate::error::{Error, Result};
use crate::raster::{self, Resample};

/// The integer range a raster data type holds (GDAL names), `None` for floating point.
fn type_range(data_type: &str) -> Option<(i64, i64)> {
    Some(match data_type {
        "Byte" => (0, 255),
        "Int8" => (-128, 127),
        "UInt16" => (0, 65_535),
        "Int16" => (-32_768, 32_767),
        "UInt32" => (0, u32::MAX as i64),
        "Int32" => (i32::MIN as i64, i32::MAX as i64),
        _ => return None,
    })
}

/// Refuses a class code that the land-use map `path` cannot hold (its data type): such a
/// class could never be read from it, and its cells would be counted under other codes.
fn check_codes_fit(study: &Study, path: &Path) -> Result<()> {
    let info = raster::info(path)?;
    let Some((lo, hi)) = type_range(&info.data_type) else {
        return Ok(());
    };
    for (i, c) in study.config.classes.iter().enumerate() {
        if !(lo..=hi).contains(&c.code) {
            return Err(Error::Config {
                file: study.file.clone(),
                key: format!("classes[{i}].code"),
                message: format!(
                    "code {} cannot occur in {} (data type {}: {lo} to {hi}); expected a code \
                     of that range",
                    c.code,
                    path.display(),
                    info.data_type
                ),
            });
        }
    }
    Ok(())
}

/// The class index of each land-use code: a table over the codes' range when that is
/// small (a lookup per cell of a 100-million-cell map), else the map itself.
pub(super) struct CodeTable<'a> {
    /// The smallest code.
    lo: i64,
    /// Class index of code `lo + i`, [`NO_CLASS`] for a code of no class; empty when
    /// the codes span more than [`CodeTable::MAX_SPAN`].
    pub(super) table: Vec<u8>,
    /// Code -> class index.
    map: &'a BTreeMap<i64, u8>,
}

impl<'a> CodeTable<'a> {
    /// Widest range of codes held in a table.
    const MAX_SPAN: i64 = 1 << 16;

    /// The table of `map` (or none when its codes span more than [`Self::MAX_SPAN`]).
    pub(super) fn new(map: &'a BTreeMap<i64, u8>) -> Self {
        let (lo, hi) = match (map.keys().next(), map.keys().next_back()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => (0, -1),
        };
        let mut table = Vec::new();
        if hi >= lo && hi.checked_sub(lo).is_some_and(|span| span < Self::MAX_SPAN) {
            table = vec![NO_CLASS; (hi - lo + 1) as usize];
            for (&code, &class) in map {
                table[(code - lo) as usize] = class;
            }
        }
        Self { lo, table, map }
    }

    /// The class index of `code`, None when no class has it.
    pub(super) fn get(&self, code: i64) -> Option<u8> {
        if self.table.is_empty() {
            return self.map.get(&code).copied();
        }
        let at = usize::try_from(code.checked_sub(self.lo)?).ok()?;
        self.table.get(at).copied().filter(|&c| c != NO_CLASS)
    }
}

/// Reads land-use map `m` as class indices ([`NO_CLASS`] where it has no data, which it
/// clears in the mask): its year, the indices and the files warped to the grid.
pub(super) fn read_landuse(
    ctx: &LayerContext<'_>,
    m: &crate::config::LanduseMap,
    code_index: &BTreeMap<i64, u8>,
) -> Result<(i32, Vec<u8>, Vec<PathBuf>)> {
    let (study, grid, n) = (ctx.study, ctx.grid, ctx.grid.cells());
    let mut warped = Vec::new();
    let path = study.resolve(&m.path);
    check_codes_fit(study, &path)?;
    // map codes to indices; unknown codes with data are an error
    let mut idx = vec![NO_CLASS; n];
    let mut unknown: BTreeMap<i64, u64> = BTreeMap::new();
    let table = CodeTable::new(code_index);
    read_on_grid(
        study,
        ctx.reference,
        grid,
        &path,
        1,
        None,
        Resample::Nearest,
        &mut warped,
        |first, values, has_data, _| {
            for (j, (&v, &d)) in values.iter().zip(has_data).enumerate() {
                let i = first + j;
                if !d {
                    ctx.clear(i);
                    continue;
                }
                // an integer within i64 comes back from the cast unchanged
                let code = v as i64;
                if code as f64 != v && v.fract() != 0.0 {
                    return Err(Error::raster(
                        &path,
                        format!(
                            "value {v} at row {}, column {} is not an integer class code",
                            i / grid.width,
                            i % grid.width
                        ),
                    ));
                }
                match table.get(code) {
                    Some(c) => idx[i] = c,
                    None => *unknown.entry(code).or_default() += 1,
                }
            }
            Ok(())
        },
    )?;
    if !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|(c, n)| format!("{c} ({n} cells)"))
            .collect();
        return Err(Error::Data(format!(
            "{}: class code(s) {} not named in [[classes]] of {} (known codes: {})",
            path.display(),
            list.join(", "),
            study.file.display(),
            code_index
                .keys()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((m.year, idx, warped))
}
