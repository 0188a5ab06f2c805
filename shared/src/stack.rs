//! The study's raster stack: every layer of a study read onto the reference grid (the
//! first land-use map's), checked or warped, with class codes mapped to indices and the
//! valid mask (the intersection of all layers' nodata masks).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use crate::config::{LayerConfig, NodataSetting, Study};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::layers::{self, Layers};
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
    pub values: DriverValues,
}

/// Where a driver's values are: in memory, or in a scratch file read a run of cells at a
/// time ([`load_spilled`]).
#[derive(Clone, Debug)]
pub enum DriverValues {
    /// Every cell's value, row-major.
    Memory(Vec<f32>),
    /// In a scratch file.
    File(SpillFile),
}

impl DriverValues {
    /// The values when they are in memory.
    pub fn in_memory(&self) -> Option<&[f32]> {
        match self {
            Self::Memory(v) => Some(v),
            Self::File(_) => None,
        }
    }
}

/// A driver's values in a scratch file: f32, little-endian, row-major. The file lives in
/// a temporary folder removed when the last [`Stack`] that shares it is dropped.
#[derive(Clone, Debug)]
pub struct SpillFile {
    file: Arc<File>,
    path: PathBuf,
    cells: usize,
    _dir: Arc<tempfile::TempDir>,
}

impl SpillFile {
    /// The values of cells `first .. first + out.len()`; `layer` names it in errors.
    fn read(&self, layer: usize, first: usize, out: &mut [f32]) -> Result<()> {
        if first + out.len() > self.cells {
            return Err(layers::out_of_range(layer, first, out.len(), self.cells));
        }
        let mut bytes = vec![0u8; out.len() * 4];
        self.file
            .read_exact_at(&mut bytes, first as u64 * 4)
            .map_err(|e| Error::io(&self.path, e))?;
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }
}

impl Layers for Vec<Driver> {
    fn count(&self) -> usize {
        self.len()
    }

    fn cells(&self, layer: usize) -> usize {
        match self.get(layer).map(|d| &d.values) {
            Some(DriverValues::Memory(v)) => v.len(),
            Some(DriverValues::File(f)) => f.cells,
            None => 0,
        }
    }

    fn read(&self, layer: usize, first: usize, out: &mut [f32]) -> Result<()> {
        match self.get(layer).map(|d| &d.values) {
            Some(DriverValues::Memory(v)) => layers::read_slice(v, layer, first, out),
            Some(DriverValues::File(f)) => f.read(layer, first, out),
            None => Err(layers::out_of_range(layer, first, out.len(), 0)),
        }
    }
}

/// Where [`read_driver`] puts a driver's values: memory, or a scratch file of [`load_spilled`].
enum DriverSink {
    Memory(Vec<f32>),
    File(std::io::BufWriter<File>, PathBuf, Arc<tempfile::TempDir>),
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
    /// Names of the zone codes from the zone raster (category names or attribute
    /// table; [`crate::zones::raster_zone_names`]); empty when it has none.
    pub zone_names: BTreeMap<i64, String>,
    /// Layers that were warped onto the grid (`align = true`).
    pub warped: Vec<PathBuf>,
}

impl Stack {
    /// The cell areas of the grid (per row on a geographic grid, see [`crate::area`]).
    pub fn cell_areas(&self) -> Result<crate::area::CellAreas> {
        crate::area::CellAreas::of_grid(&self.grid, &self.reference.display().to_string())
    }

    /// Number of valid cells.
    pub fn valid_cells(&self) -> u64 {
        self.mask.par_iter().filter(|&&v| v).count() as u64
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

/// Fewest valid cells a study may have (the smallest GWR sample the config accepts).
pub const MIN_VALID_CELLS: usize = 10;

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

/// Reads every layer of `study` onto the grid of its first land-use map.
pub fn load(study: &Study) -> Result<Stack> {
    load_into(study, None)
}

/// [`load`] with the drivers' values in scratch files of a new temporary folder (in
/// `TMPDIR`), not in memory: what the coordinator of a run does, which reads them a run
/// of cells at a time (through [`Layers`]) to train the network, cut tiles and write the
/// suitability raster.
pub fn load_spilled(study: &Study) -> Result<Stack> {
    let dir = tempfile::Builder::new()
        .prefix("flus-drivers-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    SCRATCH
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.path().to_path_buf());
    load_into(study, Some(Arc::new(dir)))
}

/// The scratch folders [`load_spilled`] made in this process.
static SCRATCH: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every scratch folder of [`load_spilled`] still on disk: for a process that
/// is about to exit without dropping its stacks (on SIGINT or SIGTERM).
pub fn remove_scratch() {
    let dirs = std::mem::take(&mut *SCRATCH.lock().unwrap_or_else(|e| e.into_inner()));
    for d in dirs {
        if d.exists() {
            if let Err(e) = std::fs::remove_dir_all(&d) {
                tracing::warn!("cannot remove the scratch folder {}: {e}", d.display());
            }
        }
    }
}

/// Reads every layer of `study` onto the grid of its first land-use map: the land-use
/// maps and the drivers (the drivers' values into scratch files of `spill` when given),
/// then the restrictions and the zones, each clearing the cells where it has no data;
/// last, the checks on the valid cells left.
fn load_into(study: &Study, spill: Option<Arc<tempfile::TempDir>>) -> Result<Stack> {
    let (reference, grid) = reference_grid(study)?;
    let mut warped = Vec::new();
    let MapsAndDrivers {
        maps,
        drivers,
        mut mask,
    } = read_maps_and_drivers(study, &reference, &grid, spill.as_ref(), &mut warped)?;
    let restricted = read_restrictions(study, &reference, &grid, &mut mask, &mut warped)?;
    let ZoneLayer {
        codes: zones,
        names: zone_names,
    } = read_zones(study, &reference, &grid, &mut mask, &mut warped)?;
    let maps = mask_maps(maps, &mask);
    check_valid_cells(study, &reference, &grid, &mask)?;
    Ok(Stack {
        grid,
        reference,
        mask,
        maps,
        drivers,
        restricted,
        zones,
        zone_names,
        warped,
    })
}

/// The reference of the study's grid: the path of its first land-use map (an error when
/// there is none) and that map's grid.
fn reference_grid(study: &Study) -> Result<(PathBuf, Grid)> {
    let first = study.config.landuse.first().ok_or_else(|| Error::Config {
        file: study.file.clone(),
        key: "landuse".into(),
        message: "no land-use map given".into(),
    })?;
    let reference = study.resolve(&first.path);
    let grid = raster::info(&reference)?.grid;
    Ok((reference, grid))
}

/// What [`read_maps_and_drivers`] read.
struct MapsAndDrivers {
    /// The land-use maps by year, as class indices (not yet masked).
    maps: BTreeMap<i32, Vec<u8>>,
    /// The drivers in config order.
    drivers: Vec<Driver>,
    /// The cells where every map and driver has data.
    mask: Vec<bool>,
}

/// Reads the land-use maps (as class indices) and the drivers, several at a time, onto
/// `grid`; returns the maps by year, the drivers in config order and the mask of the
/// cells where all of them have data. The files they warped are added to `warped`, the
/// maps' first; errors are reported in the config's order, the maps' first.
fn read_maps_and_drivers(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    spill: Option<&Arc<tempfile::TempDir>>,
    warped: &mut Vec<PathBuf>,
) -> Result<MapsAndDrivers> {
    let cfg = &study.config;
    let code_index: BTreeMap<i64, u8> = cfg
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.code, i as u8))
        .collect();
    // the land-use maps and the drivers are read several at a time (each layer from its
    // own dataset); a layer only clears cells of the shared mask, so the order in which
    // they finish does not matter; errors are reported in the config's order
    let shared_mask: Vec<AtomicBool> = (0..grid.cells()).map(|_| AtomicBool::new(true)).collect();
    let ctx = LayerContext {
        study,
        reference,
        grid,
        mask: &shared_mask,
    };
    let (maps_read, drivers_read) = rayon::join(
        || {
            cfg.landuse
                .par_iter()
                .map(|m| read_landuse(&ctx, m, &code_index))
                .collect::<Vec<_>>()
        },
        || {
            cfg.drivers
                .par_iter()
                .enumerate()
                .map(|(index, d)| read_driver(&ctx, index, d, spill))
                .collect::<Vec<_>>()
        },
    );
    let mut raw_maps = BTreeMap::new();
    for r in maps_read {
        let (year, idx, w) = r?;
        raw_maps.insert(year, idx);
        warped.extend(w);
    }
    let mut drivers = Vec::new();
    for r in drivers_read {
        let (d, w) = r?;
        drivers.push(d);
        warped.extend(w);
    }
    let mask: Vec<bool> = shared_mask
        .into_iter()
        .map(AtomicBool::into_inner)
        .collect();
    Ok(MapsAndDrivers {
        maps: raw_maps,
        drivers,
        mask,
    })
}

/// Reads the restriction layers onto `grid`, one after the other, clearing in `mask` the
/// cells where one has no data; returns the restricted cells (a layer is 0 there).
fn read_restrictions(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    mask: &mut [bool],
    warped: &mut Vec<PathBuf>,
) -> Result<Vec<bool>> {
    let mut restricted = vec![false; grid.cells()];
    for r in &study.config.restrictions {
        let path = study.resolve(&r.path);
        read_layer(
            study,
            reference,
            grid,
            &path,
            r,
            Resample::Nearest,
            warped,
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
    Ok(restricted)
}

/// What [`read_zones`] read.
struct ZoneLayer {
    /// The zone code per cell, when zones are configured.
    codes: Option<Vec<i32>>,
    /// The names of the zone codes (empty when the raster has none).
    names: BTreeMap<i64, String>,
}

/// Reads the zone raster, when zones are configured, onto `grid`, clearing in `mask` the
/// cells where it has no data; returns the zone code per cell and the names of the zone
/// codes. Polygon zones (a `zones.field`) are an error: they must be rasterised first.
fn read_zones(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    mask: &mut [bool],
    warped: &mut Vec<PathBuf>,
) -> Result<ZoneLayer> {
    let Some(z) = &study.config.zones else {
        return Ok(ZoneLayer {
            codes: None,
            names: BTreeMap::new(),
        });
    };
    let path = study.resolve(&z.path);
    let zone_names = crate::zones::raster_zone_names(&path)?;
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
    let mut codes: Vec<i32> = Vec::with_capacity(grid.cells());
    read_on_grid(
        study,
        reference,
        grid,
        &path,
        1,
        None,
        Resample::Nearest,
        warped,
        |first, values, has_data, _| {
            for (j, &data) in has_data.iter().enumerate() {
                mask[first + j] &= data;
            }
            codes.extend(values.iter().map(|&v| v as i32));
            Ok(())
        },
    )?;
    Ok(ZoneLayer {
        codes: Some(codes),
        names: zone_names,
    })
}

/// The land-use maps with [`NO_CLASS`] in every cell that is not valid in `mask`.
fn mask_maps(raw_maps: BTreeMap<i32, Vec<u8>>, mask: &[bool]) -> BTreeMap<i32, Vec<u8>> {
    raw_maps
        .into_iter()
        .map(|(y, mut m)| {
            m.par_iter_mut()
                .zip(mask.par_iter())
                .filter(|(_, &valid)| !valid)
                .for_each(|(c, _)| *c = NO_CLASS);
            (y, m)
        })
        .collect()
}

/// Checks the valid cells of `mask`: at least one, a CRS in units that give right areas
/// (metres or degrees), and at least [`MIN_VALID_CELLS`].
fn check_valid_cells(study: &Study, reference: &Path, grid: &Grid, mask: &[bool]) -> Result<()> {
    let valid = mask.par_iter().filter(|&&v| v).count();
    if valid == 0 {
        return Err(Error::Data(format!(
            "{}: no valid cell: the nodata masks of the layers do not overlap anywhere",
            study.file.display()
        )));
    }
    // a CRS in feet (or any unit but metres and degrees) would give wrong areas
    crate::area::crs_kind(&grid.crs_wkt, &reference.display().to_string())?;
    if valid < MIN_VALID_CELLS {
        return Err(Error::Data(format!(
            "{}: only {valid} valid cell(s) (cells where every layer has data); expected at \
             least {MIN_VALID_CELLS}: a change, a sample or a metric on fewer means nothing",
            study.file.display()
        )));
    }
    Ok(())
}

/// What every layer reader shares: the study, the reference grid and the mask of valid
/// cells, which a reader may only clear.
struct LayerContext<'a> {
    study: &'a Study,
    reference: &'a Path,
    grid: &'a Grid,
    mask: &'a [AtomicBool],
}

impl LayerContext<'_> {
    /// Marks cell `i` as not valid (a layer has no data there).
    fn clear(&self, i: usize) {
        self.mask[i].store(false, Ordering::Relaxed);
    }
}

/// The class index of each land-use code: a table over the codes' range when that is
/// small (a lookup per cell of a 100-million-cell map), else the map itself.
struct CodeTable<'a> {
    /// The smallest code.
    lo: i64,
    /// Class index of code `lo + i`, [`NO_CLASS`] for a code of no class; empty when
    /// the codes span more than [`CodeTable::MAX_SPAN`].
    table: Vec<u8>,
    /// Code -> class index.
    map: &'a BTreeMap<i64, u8>,
}

impl<'a> CodeTable<'a> {
    /// Widest range of codes held in a table.
    const MAX_SPAN: i64 = 1 << 16;

    /// The table of `map` (or none when its codes span more than [`Self::MAX_SPAN`]).
    fn new(map: &'a BTreeMap<i64, u8>) -> Self {
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
    fn get(&self, code: i64) -> Option<u8> {
        if self.table.is_empty() {
            return self.map.get(&code).copied();
        }
        let at = usize::try_from(code.checked_sub(self.lo)?).ok()?;
        self.table.get(at).copied().filter(|&c| c != NO_CLASS)
    }
}

/// Reads land-use map `m` as class indices ([`NO_CLASS`] where it has no data, which it
/// clears in the mask): its year, the indices and the files warped to the grid.
fn read_landuse(
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

/// Reads driver `d` (the `index`-th) into memory or into a scratch file of `spill`,
/// clearing the mask where it has no data: the driver and the files warped to the grid.
fn read_driver(
    ctx: &LayerContext<'_>,
    index: usize,
    d: &LayerConfig,
    spill: Option<&Arc<tempfile::TempDir>>,
) -> Result<(Driver, Vec<PathBuf>)> {
    let (study, grid, n) = (ctx.study, ctx.grid, ctx.grid.cells());
    let mut warped = Vec::new();
    let path = study.resolve(&d.path);
    let mut sink = match spill {
        None => DriverSink::Memory(Vec::with_capacity(n)),
        Some(dir) => {
            let p = dir.path().join(format!("driver_{index}.f32"));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&p)
                .map_err(|e| Error::io(&p, e))?;
            DriverSink::File(
                std::io::BufWriter::with_capacity(1 << 20, f),
                p,
                dir.clone(),
            )
        }
    };
    read_layer(
        study,
        ctx.reference,
        grid,
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
                if !data {
                    ctx.clear(i);
                }
            }
            match &mut sink {
                DriverSink::Memory(values) => values.extend(strip.iter().map(|&v| v as f32)),
                DriverSink::File(w, p, _) => {
                    let mut bytes = vec![0u8; strip.len() * 4];
                    for (b, &v) in bytes.chunks_exact_mut(4).zip(strip) {
                        b.copy_from_slice(&(v as f32).to_le_bytes());
                    }
                    w.write_all(&bytes).map_err(|e| Error::io(p.as_path(), e))?;
                }
            }
            Ok(())
        },
    )?;
    let values = match sink {
        DriverSink::Memory(v) => DriverValues::Memory(v),
        DriverSink::File(w, p, dir) => {
            let file = w.into_inner().map_err(|e| Error::io(&p, e.into_error()))?;
            DriverValues::File(SpillFile {
                file: Arc::new(file),
                path: p,
                cells: n,
                _dir: dir,
            })
        }
    };
    Ok((
        Driver {
            name: d.name.clone(),
            path,
            values,
        },
        warped,
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bencat() -> Study {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/bencat/study.toml");
        Study::load(&p).unwrap()
    }

    #[test]
    fn a_code_table_gives_the_class_of_each_code_and_none_for_codes_of_no_class() {
        // codes 10, 12, -3 -> classes 0, 1, 2 (a table over -3..=12)
        let near: BTreeMap<i64, u8> = [(10, 0), (12, 1), (-3, 2)].into();
        let t = CodeTable::new(&near);
        assert_eq!(t.table.len(), 16);
        assert_eq!(
            (t.get(10), t.get(12), t.get(-3)),
            (Some(0), Some(1), Some(2))
        );
        for code in [11, -4, 13, 0, i64::MIN, i64::MAX] {
            assert_eq!(t.get(code), None, "code {code}");
        }
        // codes 70,000 apart: no table, the map answers the same
        let far: BTreeMap<i64, u8> = [(1, 0), (70_001, 1)].into();
        let t = CodeTable::new(&far);
        assert!(t.table.is_empty());
        assert_eq!(
            (t.get(1), t.get(70_001), t.get(2)),
            (Some(0), Some(1), None)
        );
    }

    #[test]
    fn spilled_drivers_read_back_the_values_held_in_memory_and_their_folder_goes_with_the_stack() {
        let study = bencat();
        let mem = load(&study).unwrap();
        let spilled = load_spilled(&study).unwrap();
        assert_eq!(spilled.mask, mem.mask);
        assert_eq!(spilled.maps, mem.maps);
        let n = mem.grid.cells();
        let dir = match &spilled.drivers[0].values {
            DriverValues::File(f) => f.path.parent().unwrap().to_path_buf(),
            DriverValues::Memory(_) => panic!("load_spilled kept a driver in memory"),
        };
        assert!(dir.is_dir());
        for (j, d) in mem.drivers.iter().enumerate() {
            let want = d.values.in_memory().unwrap();
            assert_eq!(want.len(), n);
            assert!(spilled.drivers[j].values.in_memory().is_none());
            // the whole layer through runs that do not start on a run boundary
            let mut got = vec![0f32; n];
            let cut = n / 3 + 7;
            spilled.drivers.read(j, 0, &mut got[..cut]).unwrap();
            spilled.drivers.read(j, cut, &mut got[cut..]).unwrap();
            assert!(
                got.iter()
                    .zip(want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "driver {}",
                d.name
            );
            let e = spilled.drivers.read(j, n - 1, &mut [0f32; 2]).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("layer {j}: cells {}..{}", n - 1, n + 1)),
                "{e}"
            );
        }
        drop(spilled);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
