//! Helpers of the bad-input tests: a copy of the Dongguan example study to break, edits
//! of its config, and the promises every case checks (no input changed, no output that
//! looks complete).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::repo_root;

/// Copies `src` into `dst` recursively.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// A copy of the Dongguan study whose outputs go to `out/` inside the copy.
pub fn dongguan() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("examples/dongguan"), dir.path());
    edit(dir.path(), |t| {
        t.replace("output = \"../../out/dongguan\"", "output = \"out\"")
    });
    dir
}

/// Rewrites the study config with `f`; panics when `f` changed nothing (a stale edit
/// would make the case test nothing).
pub fn edit(dir: &Path, f: impl Fn(String) -> String) {
    let p = dir.join("study.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let new = f(text.clone());
    assert_ne!(new, text, "the config edit changed nothing");
    std::fs::write(p, new).unwrap();
}

/// Files under `dir`, recursively (links are not followed).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                v.extend(files_under(&e.path()));
            } else if t.is_file() {
                v.push(e.path());
            }
        }
    }
    v
}

/// SHA-256 of every file under `dir` (the inputs of a case), to compare after it ran.
pub fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let h = flus_shared::files::sha256_hex(&std::fs::read(&p).unwrap());
            (p, h)
        })
        .collect()
}

/// Panics unless every file of `before` still holds the same bytes.
pub fn assert_unchanged(before: &BTreeMap<PathBuf, String>) {
    for (p, h) in before {
        let now = std::fs::read(p)
            .map(|b| flus_shared::files::sha256_hex(&b))
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        assert_eq!(&now, h, "input {} was changed", p.display());
    }
}

/// No final GeoTIFF, no temporary file left behind, no run.json saying `completed`.
pub fn assert_no_complete_output(out: &Path) {
    for p in files_under(out) {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !name.ends_with(".tif"),
            "a failed command left a GeoTIFF that looks complete: {}",
            p.display()
        );
        assert!(
            !name.contains("partial"),
            "a failed command left a temporary file: {}",
            p.display()
        );
        if name == "run.json" {
            let j: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            assert_eq!(j["completed"], false, "{}", p.display());
        }
    }
}
