//! Output files written atomically: to a temporary name in the same folder, renamed
//! when complete, so a crash never leaves a file that looks finished; and the guard that
//! refuses to write over a file the command reads ([`register_inputs`],
//! [`check_output`]), with the list of files this process wrote ([`written_under`]).

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// An input of this process: the path as given, its resolved path (links followed) and
/// its device and inode (when it exists).
struct Input {
    given: PathBuf,
    resolved: PathBuf,
    inode: Option<(u64, u64)>,
}

/// The files this process reads ([`register_inputs`]).
static INPUTS: Mutex<Vec<Input>> = Mutex::new(Vec::new());
/// The files this process wrote (resolved paths), in order.
static WRITTEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// `path` with its links and `..` resolved: the file when it exists, else its folder
/// resolved and the file name appended (else the path made absolute).
fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(d), Some(n)) => d.join(n),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Device and inode of the file `path` leads to (links followed).
fn inode(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Records `paths` as files this process reads: [`check_output`] then refuses to write
/// over any of them, whatever path (link, `..`, hard link) leads to it.
pub fn register_inputs<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) {
    let mut inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
    for p in paths {
        let p = p.as_ref();
        inputs.push(Input {
            given: p.to_path_buf(),
            resolved: resolve(p),
            inode: inode(p),
        });
    }
}

/// Refuses `output` when it is (or resolves to, through links) a file registered with
/// [`register_inputs`]: the error names both.
pub fn check_output(output: &Path) -> Result<()> {
    let resolved = resolve(output);
    let node = inode(output);
    let inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
    match inputs
        .iter()
        .find(|i| i.resolved == resolved || (node.is_some() && i.inode == node))
    {
        Some(i) => Err(Error::OutputIsInput {
            output: output.to_path_buf(),
            input: i.given.clone(),
        }),
        None => Ok(()),
    }
}

/// [`check_output`] of every path of `outputs`, before any is written.
pub fn check_outputs<P: AsRef<Path>>(outputs: impl IntoIterator<Item = P>) -> Result<()> {
    outputs
        .into_iter()
        .try_for_each(|p| check_output(p.as_ref()))
}

/// Records `path` as written by this process (called when an output is renamed into
/// place).
pub fn record_written(path: &Path) {
    let p = resolve(path);
    let mut w = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    if !w.contains(&p) {
        w.push(p);
    }
}

/// The files this process wrote below `dir` (that still exist), as paths relative to
/// `dir`, sorted: the outputs of this run, never the files an earlier run left there.
pub fn written_under(dir: &Path) -> Vec<PathBuf> {
    let root = resolve(dir);
    let w = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<PathBuf> = w
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| p.strip_prefix(&root).ok().map(Path::to_path_buf))
        .collect();
    v.sort();
    v
}

/// Writes `contents` to `path` through a temporary file, synced to disk, renamed on
/// success: right for a run's outputs (maps, tables, `run.json`, checkpoints), which a
/// crash or power loss must never leave empty or half-written under their final name.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomic_then(path, contents, || ())
}

/// [`write_atomic`] without the sync to disk before the rename: a crash never leaves a
/// half-written file under `path`, but a power loss may leave it empty. Right for files
/// made again from a run's outputs (the report's images, rebuilt by `flus report`),
/// where a sync per file would only cost time.
pub fn write_atomic_nosync(path: &Path, contents: &[u8]) -> Result<()> {
    write_through_temp(path, |w| w.write_all(contents), Durability::Unsynced, || ())
}

/// [`write_atomic`], calling `before_rename` when the temporary file holds all of
/// `contents` (synced), just before it is renamed to `path`: a crash up to then leaves
/// the previous file under `path` intact.
pub fn write_atomic_then(path: &Path, contents: &[u8], before_rename: impl FnOnce()) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(contents), before_rename)
}

/// [`write_atomic_then`] of what `write` writes (through a buffer), so a large file
/// need not be held whole in memory first.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    before_rename: impl FnOnce(),
) -> Result<()> {
    write_through_temp(path, write, Durability::Synced, before_rename)
}

/// Whether a file written through a temporary name is synced to disk before the rename.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Synced: the file is whole under its name even after a power loss.
    Synced,
    /// Not synced: for files that can be made again.
    Unsynced,
}

/// Writes what `write` writes (through a buffer) to a temporary file in the folder of
/// `path` (created when missing), syncs it when `durability` says so, calls
/// `before_rename` and renames it to `path`, recording `path` as written. Refuses a
/// `path` that is an input ([`check_output`]).
fn write_through_temp(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    durability: Durability,
    before_rename: impl FnOnce(),
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    check_output(path)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp);
    write(&mut w).map_err(|e| Error::io(path, e))?;
    let tmp = w
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    if durability == Durability::Synced {
        tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    }
    before_rename();
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    record_written(path);
    Ok(())
}

/// Writes a CSV table (`header`, then `rows`) atomically.
pub fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Table {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    w.write_record(header).map_err(csv_err)?;
    for r in rows {
        w.write_record(r).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Table {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Creates `dir` (and parents), naming it in the error.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// SHA-256 of `bytes` as lower-case hex (class-map hashes, output checksums).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_only_the_final_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub").join("t.csv");
        write_csv(
            &p,
            &["a".into(), "b".into()],
            &[vec!["1".into(), "x,y".into()]],
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n1,\"x,y\"\n");
        let n = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(n, 1);
    }

    #[test]
    fn an_unsynced_atomic_write_replaces_the_file_whole_and_still_refuses_an_input() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("report").join("landuse_2030.png");
        write_atomic_nosync(&p, b"first").unwrap();
        write_atomic_nosync(&p, b"\x89PNG").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"\x89PNG");
        let n = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(n, 1);
        let input = d.path().join("landuse_2006.tif");
        std::fs::write(&input, b"map").unwrap();
        register_inputs([&input]);
        let e = write_atomic_nosync(&input, b"other")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is an input"), "{e}");
        assert_eq!(std::fs::read(&input).unwrap(), b"map");
    }

    #[test]
    fn an_output_that_is_an_input_through_a_link_is_refused_naming_both() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("landuse_2006.tif");
        std::fs::write(&input, b"map").unwrap();
        register_inputs([&input]);
        let link_dir = d.path().join("out");
        std::os::unix::fs::symlink(d.path(), &link_dir).unwrap();
        for out in [input.clone(), link_dir.join("landuse_2006.tif")] {
            let e = write_atomic(&out, b"other").unwrap_err().to_string();
            assert!(
                e.contains(&out.display().to_string())
                    && e.contains(&input.display().to_string())
                    && e.contains("is an input"),
                "{e}"
            );
        }
        assert_eq!(std::fs::read(&input).unwrap(), b"map");
        let other = d.path().join("out").join("landuse_2020.tif");
        write_atomic(&other, b"x").unwrap();
        assert_eq!(
            written_under(d.path()),
            vec![PathBuf::from("landuse_2020.tif")]
        );
    }

    #[test]
    fn an_unwritable_folder_is_named() {
        let e = write_atomic(Path::new("/proc/flus-cannot/x.csv"), b"x").unwrap_err();
        assert!(e.to_string().contains("/proc/flus-cannot"), "{e}");
    }
}
