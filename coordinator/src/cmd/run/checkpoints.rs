//! Checkpoints of `flus run`'s CA runs: where they go, stored on a background thread
//! through a temporary file, read back for `--resume`, cleared when a run ends.

use std::path::{Path, PathBuf};

use anyhow::Context;
use flus_shared::ca::engine;
use flus_shared::files;

/// Where checkpoints of a CA run go.
pub(super) fn checkpoint_path(out: &Path, label: &str) -> PathBuf {
    out.join("checkpoints").join(format!("{label}.ckpt"))
}

/// Stores checkpoint `c` at `path` through a temporary file renamed when complete.
fn store_checkpoint(path: &Path, c: &engine::Checkpoint) -> flus_shared::Result<()> {
    files::write_atomic_with(
        path,
        |w| c.write(w),
        // test builds: a fault test can kill the coordinator between write and rename
        || {
            flus_shared::hooks::hold(|| {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                format!("checkpoint-{stem}-{}", c.t)
            })
        },
    )?;
    tracing::info!(path = %path.display(), "checkpoint of iteration {} stored", c.t);
    Ok(())
}

/// Stores checkpoints on a background thread, one at a time and in order: the next
/// waits for the previous one to be renamed into place.
pub(super) struct CheckpointWriter {
    path: PathBuf,
    pending: Option<std::thread::JoinHandle<flus_shared::Result<()>>>,
}

impl CheckpointWriter {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            pending: None,
        }
    }

    /// Waits for the previous checkpoint, then starts storing `c`.
    pub(super) fn submit(&mut self, c: engine::Checkpoint) -> flus_shared::Result<()> {
        self.finish()?;
        let path = self.path.clone();
        self.pending = Some(std::thread::spawn(move || store_checkpoint(&path, &c)));
        Ok(())
    }

    /// Waits for the checkpoint being stored, if any.
    pub(super) fn finish(&mut self) -> flus_shared::Result<()> {
        match self.pending.take() {
            None => Ok(()),
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(flus_shared::Error::Data(format!(
                    "{}: the checkpoint writer stopped",
                    self.path.display()
                )))
            }),
        }
    }
}

/// Removes the checkpoint of a finished run (other runs of the session may be storing
/// theirs in the same folder meanwhile: see [`tidy_checkpoints`]).
pub(super) fn clear_checkpoints(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Once no run is under way: removes the temporary files that a killed coordinator left
/// in the checkpoints folder of `out`, and the folder when nothing else is in it.
pub(super) fn tidy_checkpoints(out: &Path) {
    let dir = checkpoint_path(out, "x");
    let Some(dir) = dir.parent() else { return };
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".partial-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Reads the checkpoint at `path`, if there is one (its identity unchecked).
pub(super) fn load_checkpoint(path: &Path) -> anyhow::Result<Option<engine::Checkpoint>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(engine::Checkpoint::read(bytes, path)?))
}
