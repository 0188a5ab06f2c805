//! The worker's data root: the only folder it reads files from. A requested path must be
//! relative; it is refused when it climbs out of the root lexically (`..` past the root)
//! or when its canonical form (symlinks resolved) is not under the canonical root.

use std::path::{Component, Path, PathBuf};

use tonic::Status;

/// A canonicalized data root.
#[derive(Clone, Debug)]
pub struct DataRoot {
    root: PathBuf,
    allow_urls: bool,
}

/// GDAL's network file systems: a layer named by one of these is read from the URL
/// with HTTP range requests (only the tile's window), when the worker allows URLs.
/// GDAL's local virtual systems (`/vsimem/`, `/vsizip/`, `/vsitar/`, `/vsisubfile/`, ...)
/// could read files outside the data root and are not among them.
pub const URL_PREFIXES: [&str; 7] = [
    "/vsicurl/",
    "/vsis3/",
    "/vsigs/",
    "/vsiaz/",
    "/vsiadls/",
    "/vsioss/",
    "/vsiswift/",
];

impl DataRoot {
    /// The root `dir` (must exist; it is canonicalized once here).
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        let root = dir
            .canonicalize()
            .map_err(|e| anyhow::anyhow!("--data-root {}: {e}", dir.display()))?;
        anyhow::ensure!(
            root.is_dir(),
            "--data-root {}: not a folder",
            root.display()
        );
        Ok(Self {
            root,
            allow_urls: false,
        })
    }

    /// The same root, also reading layers named by a URL of GDAL's network file systems
    /// ([`URL_PREFIXES`]; `flus-worker --allow-urls`).
    pub fn with_urls(mut self, allow: bool) -> Self {
        self.allow_urls = allow;
        self
    }

    /// The canonical file `rel` names under the root, or PERMISSION_DENIED (absolute path,
    /// `..` out of the root, a symlink out of it) / NOT_FOUND, naming `rel`.
    #[allow(clippy::result_large_err)]
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, Status> {
        let denied = |why: &str| {
            Status::permission_denied(format!(
                "path {rel:?} refused: {why}; this worker reads only files under its data root"
            ))
        };
        if rel.is_empty() {
            return Err(Status::invalid_argument("empty file path"));
        }
        if URL_PREFIXES.iter().any(|u| rel.starts_with(u)) {
            return if self.allow_urls {
                Ok(PathBuf::from(rel))
            } else {
                Err(Status::permission_denied(format!(
                    "path {rel:?} refused: a URL, and this worker reads URLs only when started with --allow-urls"
                )))
            };
        }
        let p = Path::new(rel);
        let mut depth = 0i64;
        for c in p.components() {
            match c {
                Component::Prefix(_) | Component::RootDir => {
                    return Err(denied(
                        "it is absolute, expected a path relative to the data root",
                    ))
                }
                Component::ParentDir => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(denied("it leads out of the data root (`..`)"));
                    }
                }
                Component::CurDir => {}
                Component::Normal(_) => depth += 1,
            }
        }
        let joined = self.root.join(p);
        let canonical = joined
            .canonicalize()
            .map_err(|e| Status::not_found(format!("path {rel:?} under the data root: {e}")))?;
        if !canonical.starts_with(&self.root) {
            return Err(denied(
                "it resolves (through a symlink) to a file outside the data root",
            ));
        }
        Ok(canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_only_when_allowed_and_local_virtual_paths_never() {
        let dir = tempfile::tempdir().unwrap();
        let url = "/vsicurl/http://127.0.0.1:8080/dem.tif";
        let closed = DataRoot::new(dir.path()).unwrap();
        let e = closed.resolve(url).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().contains("--allow-urls"), "{}", e.message());
        let open = DataRoot::new(dir.path()).unwrap().with_urls(true);
        assert_eq!(open.resolve(url).unwrap(), PathBuf::from(url));
        assert_eq!(
            open.resolve("/vsis3/bucket/dem.tif").unwrap(),
            PathBuf::from("/vsis3/bucket/dem.tif")
        );
        // GDAL's local virtual file systems are absolute paths: refused like any other
        for p in [
            "/vsimem/x.tif",
            "/vsizip//etc/x.zip/a.tif",
            "/vsisubfile/0_10,/etc/x",
        ] {
            let e = open.resolve(p).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{p}");
        }
    }

    #[test]
    fn paths_inside_are_resolved_and_escapes_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.tif"), b"x").unwrap();
        std::fs::write(dir.path().join("outside.tif"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.tif"), root.join("link.tif")).unwrap();
        let r = DataRoot::new(&root).unwrap();
        let canon = root.canonicalize().unwrap();
        assert_eq!(r.resolve("sub/a.tif").unwrap(), canon.join("sub/a.tif"));
        assert_eq!(
            r.resolve("sub/../sub/a.tif").unwrap(),
            canon.join("sub/a.tif")
        );
        for bad in ["../outside.tif", "sub/../../outside.tif", "link.tif"] {
            let e = r.resolve(bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{bad}");
            assert!(e.message().contains(bad), "{}", e.message());
        }
        let abs = dir.path().join("outside.tif");
        let e = r.resolve(abs.to_str().unwrap()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            r.resolve("nope.tif").unwrap_err().code(),
            tonic::Code::NotFound
        );
    }
}
