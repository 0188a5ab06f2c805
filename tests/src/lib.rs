//! Helpers for the end-to-end tests of flus-cluster: where the built binaries are, a
//! child-process guard that kills on drop, starting a worker on port 0 and reading the
//! address it prints, and running `flus` with a timeout; a small window of the Ben Cat
//! study ([`crop`]), a TCP proxy that can cut or blackhole a link ([`proxy`]) and the
//! hold points of the test builds ([`hold`]).

pub mod corpus;
pub mod crop;
pub mod hold;
pub mod http;
pub mod proxy;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A north-up `side` x `side` grid of 100 m cells in UTM zone 48N (EPSG:32648), the
/// grid of the hand-worked studies of the tests.
pub fn utm_grid(side: usize) -> flus_shared::grid::Grid {
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(32648).expect("EPSG:32648");
    flus_shared::grid::Grid {
        width: side,
        height: side,
        geotransform: [680_000.0, 100.0, 0.0, 1_240_000.0, 0.0, -100.0],
        crs_wkt: srs.to_wkt().expect("WKT"),
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Path of a workspace binary (`flus`, `flus-worker`) built beside this test, or in
/// the folder `FLUS_E2E_BIN_DIR` names (to test other builds, e.g. installed ones).
///
/// Panics with a clear message when it has not been built (`cargo build --workspace`).
pub fn bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("FLUS_E2E_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/test-xxxx -> target/<profile>/<name>
            exe.parent()
                .and_then(|d| d.parent())
                .expect("target dir")
                .to_path_buf()
        }
    };
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not found: build the workspace first (cargo build --workspace)",
        p.display()
    );
    p
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test never
/// leaves processes behind.
pub struct ChildGuard {
    /// The child.
    pub child: Child,
}

impl ChildGuard {
    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs the child and waits until it is gone (its sockets closed).
    pub fn kill_and_reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cluster token of workers started by [`start_worker`] (unless `extra` gives a
/// `--token-file`).
pub const TEST_TOKEN: &str = "flus-e2e-test-token-0123456789";

/// A running worker and the address it bound.
pub struct Worker {
    /// Kills the worker on drop.
    pub guard: ChildGuard,
    /// host:port it listens on.
    pub addr: String,
}

/// Starts `flus-worker --listen 127.0.0.1:0 EXTRA...` and reads the bound address from
/// its first stdout line (waits at most 30 s).
pub fn start_worker(extra: &[&str]) -> Worker {
    start_worker_at("127.0.0.1:0", extra)
}

/// Starts `flus-worker --listen LISTEN EXTRA...` (e.g. the address of a worker that was
/// killed, to restart it in place) and reads the bound address it prints.
pub fn start_worker_at(listen: &str, extra: &[&str]) -> Worker {
    start_worker_env(listen, extra, &[])
}

/// [`start_worker_at`] with extra environment variables `env` (e.g. a test hook).
pub fn start_worker_env(listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Worker {
    let mut cmd = Command::new(bin("flus-worker"));
    cmd.args(["--listen", listen])
        .args(extra)
        .env("FLUS_TOKEN", TEST_TOKEN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start flus-worker");
    let stdout = child.stdout.take().expect("stdout");
    let guard = ChildGuard { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut r = BufReader::new(stdout);
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // keep draining so the worker never blocks on a full pipe
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("worker printed no address within 30 s");
    let addr = line.trim().to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "unexpected first line {addr:?}"
    );
    Worker { guard, addr }
}

/// Output of a finished command.
#[derive(Debug)]
pub struct Output {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Output {
    /// stdout parsed as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `flus ARGS` in `cwd` (or the repository root), killing it after `timeout`.
pub fn flus(args: &[&str], cwd: Option<&Path>, timeout: Duration) -> Output {
    let mut cmd = Command::new(bin("flus"));
    cmd.args(args)
        .current_dir(cwd.map(Path::to_path_buf).unwrap_or_else(repo_root))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_with_timeout(cmd, timeout)
}

/// `flus run STUDY --out OUT --no-validation --scenario SCENARIO --local-workers 1
/// --json`: one scenario of a study on one local worker (ten minutes at most).
pub fn run_one_scenario(study: &Path, scenario: &str, out: &Path) -> Output {
    flus(
        &[
            "run",
            study.to_str().expect("UTF-8 path"),
            "--out",
            out.to_str().expect("UTF-8 path"),
            "--no-validation",
            "--scenario",
            scenario,
            "--local-workers",
            "1",
            "--json",
        ],
        None,
        Duration::from_secs(600),
    )
}

/// The single-process driver's run of `scenario` of `study` (2x3 tiles, 1 thread) into
/// `out`: the reference every cluster run must equal. Returns the class map's SHA-256
/// and the CA iterations; panics unless the run meets its demand.
pub fn reference_run(study: &str, scenario: &str, out: &Path, timeout: Duration) -> (String, u64) {
    let o = flus(
        &[
            "simulate",
            study,
            "--scenario",
            scenario,
            "--tiles",
            "2x3",
            "--threads",
            "1",
            "--json",
            "--out",
            out.to_str().expect("UTF-8 path"),
        ],
        None,
        timeout,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let j = o.json();
    assert_eq!(j["demand_met"], true, "the reference run meets its demand");
    (
        j["map_sha256"].as_str().expect("map_sha256").to_string(),
        j["iterations"].as_u64().expect("iterations"),
    )
}

/// Runs a command to completion, killing it after `timeout` (then panics).
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let mut child = cmd.spawn().expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let guard = ChildGuard { child };
    let to = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut guard = guard;
    let status = loop {
        if let Some(st) = guard.child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > timeout {
            drop(guard);
            panic!("command timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: to.join().unwrap_or_default(),
        stderr: te.join().unwrap_or_default(),
    }
}

/// Runs `flus ARGS` with `env`, calling `on_line` with every stderr line while it runs
/// (so a test can act at a given iteration); kills it after `timeout`.
pub fn flus_watch(
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
    mut on_line: impl FnMut(&str, u32),
) -> Output {
    let mut cmd = Command::new(bin("flus"));
    cmd.args(args)
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn flus");
    let pid = child.id();
    let mut out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    let mut guard = ChildGuard { child };
    let to = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut stderr = String::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                on_line(&line, pid);
                stderr.push_str(&line);
                stderr.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if start.elapsed() > timeout {
            drop(guard);
            panic!("flus {args:?} timed out after {timeout:?}; stderr so far:\n{stderr}");
        }
    }
    let status = loop {
        if let Some(st) = guard.child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > timeout {
            drop(guard);
            panic!("flus {args:?} timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: to.join().unwrap_or_default(),
        stderr,
    }
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a pid of a child this test started.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}
