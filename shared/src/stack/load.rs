//! Loading a study's stack: the reference grid, the land-use maps and the drivers read
//! several at a time, then the restrictions and the zones, each clearing the cells where
//! it has no data, and last the checks on the valid cells left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rayon::prelude::*;

use super::drivers::{read_driver, Driver};
use super::landuse::read_landuse;
use super::on_grid::LayerContext;
use super::restrictions::read_restrictions;
use super::spill::scratch_dir;
use super::valid::{check_valid_cells, mask_maps};
use super::zones::{read_zones, ZoneLayer};
use super::Stack;
use crate::config::Study;
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster;

/// Reads every layer of `study` onto the grid of its first land-use map.
pub fn load(study: &Study) -> Result<Stack> {
    load_into(study, None)
}

/// [`load`] with the drivers' values in scratch files of a new temporary folder (in
/// `TMPDIR`), not in memory: what the coordinator of a run does, which reads them a run
/// of cells at a time (through [`Layers`](crate::layers::Layers)) to train the network,
/// cut tiles and write the suitability raster.
pub fn load_spilled(study: &Study) -> Result<Stack> {
    load_into(study, Some(Arc::new(scratch_dir()?)))
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
