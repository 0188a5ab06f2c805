//! Output files of a run: land-use GeoTIFFs with the study's class codes, colour table
//! and category names; per-iteration CSV of the CA.

use std::path::Path;

use crate::ca::IterationRecord;
use crate::config::{OutputFormat, Study};
use crate::error::Result;
use crate::files;
use crate::grid::Grid;
use crate::raster::{self, PaletteEntry, WriteOptions};
use crate::stack::NO_CLASS;

/// Writes a class-index map as a Byte GeoTIFF of the study's codes (nodata 0, or 255
/// when 0 is a class code), with colour table and class names.
pub fn write_landuse(path: &Path, study: &Study, grid: &Grid, map: &[u8]) -> Result<()> {
    let classes = &study.config.classes;
    let byte_codes = classes.iter().all(|c| (0..=254).contains(&c.code));
    let code = |i: usize| -> u8 {
        if byte_codes {
            classes[i].code as u8
        } else {
            i as u8 + 1
        }
    };
    if !byte_codes {
        crate::notices::warn(format!(
            "{}: class codes do not fit a byte: the map holds class index + 1",
            path.display()
        ));
    }
    let nodata: u8 = if (0..classes.len()).any(|i| code(i) == 0) {
        255
    } else {
        0
    };
    let palette = classes
        .iter()
        .enumerate()
        .map(|(i, c)| PaletteEntry {
            value: code(i),
            name: c.name.clone(),
            rgb: c.rgb(),
        })
        .collect();
    if map.len() != grid.cells() {
        return Err(crate::Error::raster(
            path,
            format!("map has {} cells, the grid {}", map.len(), grid.cells()),
        ));
    }
    let mut writer = raster::StripWriter::<u8>::create(
        path,
        grid,
        1,
        &WriteOptions {
            nodata: Some(nodata as f64),
            palette,
            band_names: vec!["land use".into()],
        },
    )?;
    // class codes a strip of rows at a time: no copy of the whole map
    let mut strip = Vec::with_capacity(raster::STRIP_ROWS * grid.width);
    for rows in map.chunks((raster::STRIP_ROWS * grid.width).max(1)) {
        strip.clear();
        strip.extend(rows.iter().map(|&v| {
            if v == NO_CLASS || v as usize >= classes.len() {
                nodata
            } else {
                code(v as usize)
            }
        }));
        writer.write_rows(0, &strip)?;
    }
    writer.finish()?;
    finish_format(study, path)
}

/// Gives the finished GeoTIFF at `path` the study's `[study] output_format`: rewritten
/// as a cloud-optimized GeoTIFF for `"cog"`, left as it is for `"gtiff"`.
pub fn finish_format(study: &Study, path: &Path) -> Result<()> {
    match study.config.study.output_format {
        OutputFormat::Gtiff => Ok(()),
        OutputFormat::Cog => crate::cog::convert_in_place(path),
    }
}

/// Writes the per-iteration records: counts, gaps and inertia per class.
pub fn write_iterations(path: &Path, study: &Study, records: &[IterationRecord]) -> Result<()> {
    let names: Vec<&str> = study
        .config
        .classes
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let mut header = vec![
        "iteration".to_string(),
        "sum_abs_gap".into(),
        "proposals".into(),
        "accepted".into(),
    ];
    for prefix in ["count", "gap", "inertia", "lock"] {
        header.extend(names.iter().map(|n| format!("{prefix}_{n}")));
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut row = vec![
                r.t.to_string(),
                r.sum_abs_gap.to_string(),
                r.proposals.to_string(),
                r.accepted.to_string(),
            ];
            row.extend(r.counts.iter().map(|v| v.to_string()));
            row.extend(r.gaps.iter().map(|v| v.to_string()));
            row.extend(r.inertia.iter().map(|v| format!("{v:.6e}")));
            row.extend(r.locks.iter().map(|v| (*v as u8).to_string()));
            row
        })
        .collect();
    files::write_csv(path, &header, &rows)
}
