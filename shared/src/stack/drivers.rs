//! The drivers: continuous layers read onto the grid (checked for NaN and infinite
//! values), their values in memory or in a scratch file, read back a run of cells at a
//! time through [`Layers`].

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::on_grid::{read_layer, LayerContext};
use super::spill::DriverSink;
use crate::config::LayerConfig;
use crate::error::{Error, Result};
use crate::layers::{self, Layers};
use crate::raster::Resample;

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
/// time ([`load_spilled`](super::load_spilled)).
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
/// a temporary folder removed when the last [`Stack`](super::Stack) that shares it is
/// dropped.
#[derive(Clone, Debug)]
pub struct SpillFile {
    pub(super) file: Arc<File>,
    pub(super) path: PathBuf,
    pub(super) cells: usize,
    pub(super) _dir: Arc<tempfile::TempDir>,
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

/// Reads driver `d` (the `index`-th) into memory or into a scratch file of `spill`,
/// clearing the mask where it has no data: the driver and the files warped to the grid.
pub(super) fn read_driver(
    ctx: &LayerContext<'_>,
    index: usize,
    d: &LayerConfig,
    spill: Option<&Arc<tempfile::TempDir>>,
) -> Result<(Driver, Vec<PathBuf>)> {
    let (study, grid, n) = (ctx.study, ctx.grid, ctx.grid.cells());
    let mut warped = Vec::new();
    let path = study.resolve(&d.path);
    let mut sink = DriverSink::open(index, n, spill)?;
    read_layer(
        study,
        ctx.reference,
        grid,
        &path,
        d,
        Resample::Bilinear,
        &mut warped,
        |first, strip, has_data, nodata| {
            check_strip(ctx, d, &path, first, strip, has_data, nodata)?;
            sink.write(strip)
        },
    )?;
    let values = sink.finish(n)?;
    Ok((
        Driver {
            name: d.name.clone(),
            path,
            values,
        },
        warped,
    ))
}

/// Checks a strip of driver `d` (read from `path`) starting at cell `first`: NaN is an
/// error where the layer declares another nodata value, an infinite value with data is
/// an error; clears the mask where the strip has no data.
fn check_strip(
    ctx: &LayerContext<'_>,
    d: &LayerConfig,
    path: &Path,
    first: usize,
    strip: &[f64],
    has_data: &[bool],
    nodata: Option<f64>,
) -> Result<()> {
    let grid = ctx.grid;
    // NaN counts as nodata only where the layer declares no other nodata value.
    let nan_is_bad = nodata.is_some_and(|nd| !nd.is_nan());
    for (j, (&v, &data)) in strip.iter().zip(has_data).enumerate() {
        let i = first + j;
        if nan_is_bad && v.is_nan() {
            return Err(Error::raster(
                path,
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
                path,
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
    Ok(())
}
