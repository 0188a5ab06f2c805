//! The study's raster stack: every layer of a study read onto the reference grid (the
//! first land-use map's), checked or warped, with class codes mapped to indices and the
//! valid mask (the intersection of all layers' nodata masks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{LayerConfig, NodataSetting, Study};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster::{self, Resample};

/// Class index of cells that are not valid.
pub const NO_CLASS: u8 = 255;

/// A continuous layer on the study grid.
#[derive(Clone, Debug)]
pub struct Driver {
    /// Name from the config.
    pub name: String,
    /// Source file.
    pub path: PathBuf,
    /// Values, row-major (meaningless where the mask is false).
    pub values: Vec<f32>,
}

/// Every layer of a study on one grid.
#[derive(Clone, Debug)]
pub struct Stack {
    /// The reference grid.
    pub grid: Grid,
    /// The file that defines it.
    pub reference: PathBuf,
    /// Valid cells: every layer has data.
    pub mask: Vec<bool>,
    /// Land-use maps by year, as class indices ([`NO_CLASS`] where not valid).
    pub maps: BTreeMap<i32, Vec<u8>>,
    /// Drivers in config order.
    pub drivers: Vec<Driver>,
    /// Cells that never change (a restriction layer is 0 there).
    pub restricted: Vec<bool>,
    /// Zone code per cell, when zones are configured.
    pub zones: Option<Vec<i32>>,
    /// Layers that were warped onto the grid (`align = true`).
    pub warped: Vec<PathBuf>,
}

impl Stack {
    /// Number of valid cells.
    pub fn valid_cells(&self) -> u64 {
        self.mask.iter().filter(|&&v| v).count() as u64
    }

    /// Cells per class of the map of `year` (over valid cells).
    pub fn counts(&self, year: i32, k: usize) -> Vec<u64> {
        let mut c = vec![0u64; k];
        if let Some(m) = self.maps.get(&year) {
            for &v in m {
                if (v as usize) < k {
                    c[v as usize] += 1;
                }
            }
        }
        c
    }
}

/// Reads band `band` of `path` onto `grid`: as is when it is on the grid (a strip of rows
/// at a time), warped when `align` is set (whole), otherwise an error naming both files.
/// `f(first cell, values, has data, nodata in force)` sees every cell once, in order;
/// a layer without any data cell is an error (after `f` saw it).
fn read_on_grid(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    path: &Path,
    band: usize,
    nodata: Option<&NodataSetting>,
    resample: Resample,
    warped: &mut Vec<PathBuf>,
    mut f: impl FnMut(usize, &[f64], &[bool], Option<f64>) -> Result<()>,
) -> Result<()> {
    let info = raster::info(path)?;
    let same = raster::check_same_grid(
        reference,
        grid,
        path,
        &info.grid,
        study.config.study.grid_tolerance,
    );
    let in_force = |declared: Option<f64>| match nodata {
        None => declared,
        Some(NodataSetting::Value(v)) => Some(*v),
        Some(NodataSetting::Keyword(w)) if w == "none" => None,
        Some(NodataSetting::Keyword(_)) => declared,
    };
    let mut has_data = Vec::new();
    let mut any = false;
    let mut feed = |first: usize, values: &[f64], nodata: Option<f64>| -> Result<()> {
        has_data.clear();
        has_data.extend(
            values
                .iter()
                .map(|&v| !v.is_nan() && nodata.is_none_or(|nd| v != nd)),
        );
        any |= has_data.iter().any(|&d| d);
        f(first, values, &has_data, nodata)
    };
    let nodata = match same {
        Ok(()) => {
            let nd = in_force(info.nodata);
            raster::read_band_strips::<f64>(path, band, |row, v| feed(row * grid.width, v, nd))?;
            nd
        }
        Err(Error::GridMismatch { difference, .. }) if study.config.study.align => {
            tracing::info!(file = %path.display(), %difference, "warping onto the land-use grid");
            warped.push(path.to_path_buf());
            let (v, nd) = raster::warp_to_grid(path, grid, resample)?;
            let nd = in_force(if nd.is_nan() { None } else { Some(nd) });
            feed(0, &v, nd)?;
            nd
        }
        Err(e) => return Err(e),
    };
    if !any {
        return Err(Error::raster(
            path,
            format!(
                "every cell is nodata ({}); expected a layer with data",
                nodata.map_or("NaN".to_string(), |nd| nd.to_string())
            ),
        ));
    }
    Ok(())
}

/// Reads every layer of `study` onto the grid of its first land-use map.
pub fn load(study: &Study) -> Result<Stack> {
    let cfg = &study.config;
    let first = cfg.landuse.first().ok_or_else(|| Error::Config {
        file: study.file.clone(),
        key: "landuse".into(),
        message: "no land-use map given".into(),
    })?;
    let reference = study.resolve(&first.path);
    let grid = raster::info(&reference)?.grid;
    let n = grid.cells();
    let mut mask = vec![true; n];
    let mut warped = Vec::new();
    let code_index: BTreeMap<i64, u8> = cfg
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.code, i as u8))
        .collect();

    let mut raw_maps = BTreeMap::new();
    for m in &cfg.landuse {
        let path = study.resolve(&m.path);
        // map codes to indices; unknown codes with data are an error
        let mut idx = vec![NO_CLASS; n];
        let mut unknown: BTreeMap<i64, u64> = BTreeMap::new();
        read_on_grid(
            study,
            &reference,
            &grid,
            &path,
            1,
            None,
            Resample::Nearest,
            &mut warped,
            |first, values, has_data, _| {
                for (j, (&v, &d)) in values.iter().zip(has_data).enumerate() {
                    let i = first + j;
                    if !d {
                        mask[i] = false;
                        continue;
                    }
                    if v.fract() != 0.0 {
                        return Err(Error::raster(
                            &path,
                            format!(
                                "value {v} at row {}, column {} is not an integer class code",
                                i / grid.width,
                                i % grid.width
                            ),
                        ));
                    }
                    let code = v as i64;
                    match code_index.get(&code) {
                        Some(&c) => idx[i] = c,
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
        raw_maps.insert(m.year, idx);
    }

    let mut drivers = Vec::new();
    for d in &cfg.drivers {
        let path = study.resolve(&d.path);
        let mut values: Vec<f32> = Vec::with_capacity(n);
        read_layer(
            study,
            &reference,
            &grid,
            &path,
            d,
            Resample::Bilinear,
            &mut warped,
            |first, strip, has_data, nodata| {
                // NaN counts as nodata only where the layer declares no other nodata value.
                let nan_is_bad = nodata.is_some_and(|nd| !nd.is_nan());
                for (j, (&v, &data)) in strip.iter().zip(has_data).enumerate() {
                    let i = first + j;
                    if nan_is_bad && v.is_nan() {
                        return Err(Error::raster(
                            &path,
                            format!(
                                "driver {:?} has NaN at row {}, column {}; expected finite numbers or its nodata value {}",
                                d.name,
                                i / grid.width,
                                i % grid.width,
                                nodata.unwrap_or(f64::NAN)
                            ),
                        ));
                    }
                    if data && v.is_infinite() {
                        return Err(Error::raster(
                            &path,
                            format!(
                                "driver {:?} has an infinite value at row {}, column {}; expected finite numbers or nodata",
                                d.name,
                                i / grid.width,
                                i % grid.width
                            ),
                        ));
                    }
                    mask[i] &= data;
                }
                values.extend(strip.iter().map(|&v| v as f32));
                Ok(())
            },
        )?;
        drivers.push(Driver {
            name: d.name.clone(),
            path,
            values,
        });
    }

    let mut restricted = vec![false; n];
    for r in &cfg.restrictions {
        let path = study.resolve(&r.path);
        read_layer(
            study,
            &reference,
            &grid,
            &path,
            r,
            Resample::Nearest,
            &mut warped,
            |first, values, has_data, _| {
                for (j, (&v, &data)) in values.iter().zip(has_data).enumerate() {
                    mask[first + j] &= data;
                    if data && v == 0.0 {
                        restricted[first + j] = true;
                    }
                }
                Ok(())
            },
        )?;
    }

    let zones = match &cfg.zones {
        None => None,
        Some(z) => {
            let path = study.resolve(&z.path);
            if z.field.is_some() {
                return Err(Error::Config {
                    file: study.file.clone(),
                    key: "zones.field".into(),
                    message: format!(
                        "{}: polygon zones must be rasterised first (`flus prepare`); give a zone raster",
                        path.display()
                    ),
                });
            }
            let mut codes: Vec<i32> = Vec::with_capacity(n);
            read_on_grid(
                study,
                &reference,
                &grid,
                &path,
                1,
                None,
                Resample::Nearest,
                &mut warped,
                |first, values, has_data, _| {
                    for (j, &data) in has_data.iter().enumerate() {
                        mask[first + j] &= data;
                    }
                    codes.extend(values.iter().map(|&v| v as i32));
                    Ok(())
                },
            )?;
            Some(codes)
        }
    };

    let maps = raw_maps
        .into_iter()
        .map(|(y, mut m)| {
            for i in 0..n {
                if !mask[i] {
                    m[i] = NO_CLASS;
                }
            }
            (y, m)
        })
        .collect();
    let valid = mask.iter().filter(|&&v| v).count();
    if valid == 0 {
        return Err(Error::Data(format!(
            "{}: no valid cell: the nodata masks of the layers do not overlap anywhere",
            study.file.display()
        )));
    }
    Ok(Stack {
        grid,
        reference,
        mask,
        maps,
        drivers,
        restricted,
        zones,
        warped,
    })
}

fn read_layer(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    path: &Path,
    cfg: &LayerConfig,
    resample: Resample,
    warped: &mut Vec<PathBuf>,
    f: impl FnMut(usize, &[f64], &[bool], Option<f64>) -> Result<()>,
) -> Result<()> {
    read_on_grid(
        study,
        reference,
        grid,
        path,
        cfg.band,
        cfg.nodata.as_ref(),
        resample,
        warped,
        f,
    )
}

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
