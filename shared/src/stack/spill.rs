//! The drivers' values on their way in: into memory, or into a scratch file of a
//! temporary folder ([`load_spilled`](super::load_spilled)), and the list of those folders
//! to remove when the process exits early.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use super::drivers::{DriverValues, SpillFile};
use crate::error::{Error, Result};

/// The scratch folders [`load_spilled`](super::load_spilled) made in this process.
static SCRATCH: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A new scratch folder for the drivers' values (in `TMPDIR`), recorded for
/// [`remove_scratch`]; it is removed when dropped.
pub(super) fn scratch_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("flus-drivers-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    SCRATCH
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.path().to_path_buf());
    Ok(dir)
}

/// Removes every scratch folder of [`load_spilled`](super::load_spilled) still on disk:
/// for a process that is about to exit without dropping its stacks (on SIGINT or
/// SIGTERM).
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

/// Where [`read_driver`](super::drivers::read_driver) puts a driver's values: memory, or
/// a scratch file of [`load_spilled`](super::load_spilled).
pub(super) enum DriverSink {
    Memory(Vec<f32>),
    File(std::io::BufWriter<File>, PathBuf, Arc<tempfile::TempDir>),
}

impl DriverSink {
    /// The sink of the `index`-th driver of `cells` cells: memory, or the new file
    /// `driver_{index}.f32` in `spill` when given.
    pub(super) fn open(
        index: usize,
        cells: usize,
        spill: Option<&Arc<tempfile::TempDir>>,
    ) -> Result<Self> {
        Ok(match spill {
            None => DriverSink::Memory(Vec::with_capacity(cells)),
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
        })
    }

    /// Adds the values of the next strip of cells (as f32; little-endian in a file).
    pub(super) fn write(&mut self, strip: &[f64]) -> Result<()> {
        match self {
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
    }

    /// The values written, `cells` of them: in memory, or in the file (flushed).
    pub(super) fn finish(self, cells: usize) -> Result<DriverValues> {
        Ok(match self {
            DriverSink::Memory(v) => DriverValues::Memory(v),
            DriverSink::File(w, p, dir) => {
                let file = w.into_inner().map_err(|e| Error::io(&p, e.into_error()))?;
                DriverValues::File(SpillFile {
                    file: Arc::new(file),
                    path: p,
                    cells,
                    _dir: dir,
                })
            }
        })
    }
}
