//! The hold points of the binaries built with the tests (`flus_shared::hooks`, cargo
//! feature `test-hooks`): a test arms a named point, the process stops there and logs
//! `test hook: held at NAME`, the test acts and releases it. Fault tests act at an exact
//! iteration this way instead of racing the run.

use std::path::Path;
use std::time::{Duration, Instant};

use flus_shared::hooks::HOLD_DIR_ENV;

/// A folder of hold points for the processes started with [`Holds::env`].
pub struct Holds {
    dir: tempfile::TempDir,
}

impl Default for Holds {
    fn default() -> Self {
        Self::new()
    }
}

impl Holds {
    /// An empty hold folder: nothing is armed.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("hold folder"),
        }
    }

    /// The environment variable that points a process at this folder.
    pub fn env(&self) -> (&'static str, &str) {
        (HOLD_DIR_ENV, self.dir.path().to_str().expect("UTF-8 path"))
    }

    /// Arms hold point `name`: the next process of this folder that reaches it stops.
    pub fn arm(&self, name: &str) {
        std::fs::write(self.dir.path().join(name), b"").expect("arm a hold point");
    }

    /// Releases hold point `name` (a process held there goes on).
    pub fn release(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.path().join(name));
    }

    /// Whether a process has been held at `name`.
    pub fn reached(&self, name: &str) -> bool {
        self.dir.path().join(format!("{name}.held")).exists()
    }

    /// Waits until a process is held at `name` (for a process whose log the test does
    /// not read, e.g. a worker); panics after `timeout` naming the point.
    pub fn wait_held(&self, name: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.reached(name) {
            assert!(
                start.elapsed() < timeout,
                "no process reached hold point {name} within {timeout:?} ({}); were the \
                 binaries built with the tests (cargo test --workspace, feature test-hooks)?",
                Path::new(self.dir.path()).display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Whether the stderr `line` says that the process is held at `name` (and not at a
/// longer name that starts with it).
pub fn held_at(line: &str, name: &str) -> bool {
    line.trim_end()
        .ends_with(&format!("test hook: held at {name}"))
}
