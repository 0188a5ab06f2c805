//! Class rasters read on their own (without a study): integer codes per cell, and several
//! such maps on one grid mapped to class indices.

use std::collections::BTreeMap;
use std::path::Path;

use super::NO_CLASS;
use crate::error::{Error, Result};
use crate::raster;

/// A class raster read on its own: integer codes and a has-data flag per cell.
#[derive(Clone, Debug)]
pub struct CodeMap {
    /// Header.
    pub info: raster::RasterInfo,
    /// Code per cell (meaningless where `has_data` is false).
    pub codes: Vec<i64>,
    /// Cells with data.
    pub has_data: Vec<bool>,
}

/// Reads band 1 of a class raster as integer codes; a non-integer value is an error.
pub fn read_codes(path: &Path) -> Result<CodeMap> {
    let (info, values) = raster::read_band::<f64>(path, 1)?;
    let mut codes = Vec::with_capacity(values.len());
    let mut has_data = Vec::with_capacity(values.len());
    for (i, &v) in values.iter().enumerate() {
        let data = !v.is_nan() && info.nodata.is_none_or(|nd| v != nd);
        if data && v.fract() != 0.0 {
            return Err(Error::raster(
                path,
                format!(
                    "value {v} at row {}, column {} is not an integer class code",
                    i / info.grid.width,
                    i % info.grid.width
                ),
            ));
        }
        codes.push(v as i64);
        has_data.push(data);
    }
    Ok(CodeMap {
        info,
        codes,
        has_data,
    })
}

/// Maps several code maps on one grid to class indices 0..K-1 (codes sorted
/// ascending); cells without data in any map get [`NO_CLASS`] in all.
pub fn index_maps(maps: &[&CodeMap]) -> Result<(Vec<i64>, Vec<Vec<u8>>)> {
    let n = maps.first().map(|m| m.codes.len()).unwrap_or(0);
    let valid: Vec<bool> = (0..n).map(|i| maps.iter().all(|m| m.has_data[i])).collect();
    let mut codes = std::collections::BTreeSet::new();
    for m in maps {
        for i in 0..n {
            if valid[i] {
                codes.insert(m.codes[i]);
            }
        }
    }
    if codes.len() > 254 {
        return Err(Error::Data(format!(
            "{} distinct class codes; at most 254 are supported",
            codes.len()
        )));
    }
    let codes: Vec<i64> = codes.into_iter().collect();
    let index: BTreeMap<i64, u8> = codes
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i as u8))
        .collect();
    let out = maps
        .iter()
        .map(|m| {
            (0..n)
                .map(|i| {
                    if valid[i] {
                        index[&m.codes[i]]
                    } else {
                        NO_CLASS
                    }
                })
                .collect()
        })
        .collect();
    Ok((codes, out))
}
