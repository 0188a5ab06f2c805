//! Hold points for the end-to-end fault tests (docs/design.md §13).
//!
//! A test that must act at an exact point of a run (between two CA iterations, between
//! writing a checkpoint and renaming it, before the suitability raster is assembled from
//! the workers, inside a GWR fit request) cannot rely on timing:
//! on a loaded machine the run outpaces or lags the test. Instead the process stops at a
//! named *hold point* until the test releases it:
//!
//! 1. the test creates the file `DIR/NAME` in a folder it passes as
//!    `FLUS_TEST_HOLD_DIR=DIR` to the process;
//! 2. when the process reaches hold point `NAME` and that file exists, it creates
//!    `DIR/NAME.held`, logs `test hook: held at NAME` (stderr) and waits;
//! 3. the test acts (kills a worker, cuts a link, kills the process...) and removes
//!    `DIR/NAME`; the process logs `test hook: released at NAME` and goes on.
//!
//! All of this exists only with the cargo feature `test-hooks` (turned on by the
//! end-to-end crate `flus-e2e` for its test builds). Without it [`hold`] is an empty
//! inline function: release binaries neither read the variable nor touch the folder.

/// The environment variable that names the hold folder.
pub const HOLD_DIR_ENV: &str = "FLUS_TEST_HOLD_DIR";

/// Holds the calling thread at the hold point named by `name()` while the test keeps
/// it armed (see the module documentation); returns at once when the point is not
/// armed, when `FLUS_TEST_HOLD_DIR` is unset, or in builds without `test-hooks` (where
/// `name` is never called).
#[cfg(feature = "test-hooks")]
pub fn hold(name: impl FnOnce() -> String) {
    let Some(dir) = std::env::var_os(HOLD_DIR_ENV) else {
        return;
    };
    let name = name();
    let armed = std::path::Path::new(&dir).join(&name);
    if !armed.exists() {
        return;
    }
    let held = std::path::Path::new(&dir).join(format!("{name}.held"));
    if let Err(e) = std::fs::write(&held, b"") {
        tracing::warn!("test hook: cannot mark {}: {e}", held.display());
    }
    tracing::info!("test hook: held at {name}");
    while armed.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    tracing::info!("test hook: released at {name}");
}

/// Without the `test-hooks` feature: nothing (see the feature's version).
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn hold(_name: impl FnOnce() -> String) {}

#[cfg(all(test, feature = "test-hooks"))]
mod tests {
    use super::*;

    #[test]
    fn an_armed_point_holds_until_its_file_is_removed_and_an_unarmed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        // the only test of this binary that sets the variable
        std::env::set_var(HOLD_DIR_ENV, dir.path());
        hold(|| "not-armed".into());
        assert!(!dir.path().join("not-armed.held").exists());
        std::fs::write(dir.path().join("p"), b"").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            hold(|| "p".into());
            tx.send(()).unwrap();
        });
        let held = dir.path().join("p.held");
        while !held.exists() {
            std::thread::yield_now();
        }
        assert!(rx.try_recv().is_err(), "still held while the file exists");
        std::fs::remove_file(dir.path().join("p")).unwrap();
        rx.recv().unwrap();
        h.join().unwrap();
    }
}

/// Runs without the feature (`cargo test -p flus-shared`): what a release build does.
#[cfg(all(test, not(feature = "test-hooks")))]
mod release_tests {
    use super::*;

    #[test]
    fn without_the_feature_an_armed_point_neither_holds_nor_reads_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var(HOLD_DIR_ENV, dir.path());
        std::fs::write(dir.path().join("p"), b"").unwrap();
        let mut named = false;
        hold(|| {
            named = true;
            "p".into()
        });
        assert!(!named, "the name is never built");
        assert!(!dir.path().join("p.held").exists());
    }
}
