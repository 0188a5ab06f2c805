//! Output files written atomically: to a temporary name in the same folder, renamed
//! when complete, so a crash never leaves a file that looks finished.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `contents` to `path` through a temporary file renamed on success.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomic_then(path, contents, || ())
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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
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
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    before_rename();
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
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
    fn an_unwritable_folder_is_named() {
        let e = write_atomic(Path::new("/proc/flus-cannot/x.csv"), b"x").unwrap_err();
        assert!(e.to_string().contains("/proc/flus-cannot"), "{e}");
    }
}
