//! Local workers: `flus-worker` processes on loopback, started by the coordinator (the
//! embedded default). Each binds port 0 and prints its address; they share a fresh
//! random token; they die with the coordinator (PR_SET_PDEATHSIG on Linux) and are
//! killed and reaped when the [`LocalWorkers`] is dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// The running local workers.
pub struct LocalWorkers {
    children: Vec<Child>,
    /// Their addresses (host:port), in start order.
    pub addrs: Vec<String>,
    /// The token they accept.
    pub token: String,
    _token_file: tempfile::NamedTempFile,
}

/// A fresh random token (32 hex characters from the OS's generator).
pub fn random_token() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no OS randomness for the token: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Where `flus-worker` is: beside the running `flus`, else on PATH.
pub fn worker_binary() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("flus-worker");
            if p.exists() {
                return p;
            }
        }
    }
    PathBuf::from("flus-worker")
}

/// Local workers whose processes are started but whose addresses are not read yet
/// ([`LocalWorkers::spawn`], then [`Spawned::ready`] on any thread).
pub struct Spawned {
    workers: LocalWorkers,
    bin: PathBuf,
    /// Where each one's first stdout line arrives.
    lines: Vec<std::sync::mpsc::Receiver<String>>,
}

impl LocalWorkers {
    /// Starts `n` workers with `threads` threads each (reading files under `data_root`
    /// when given).
    pub fn start(n: usize, threads: usize, data_root: Option<&Path>) -> anyhow::Result<Self> {
        Self::spawn(n, threads, data_root)?.ready()
    }

    /// Starts the processes of `n` workers, all at once, without waiting for them. They
    /// die with the thread that calls this (PR_SET_PDEATHSIG follows the parent
    /// thread): call it from one that outlives them.
    pub fn spawn(n: usize, threads: usize, data_root: Option<&Path>) -> anyhow::Result<Spawned> {
        let token = random_token()?;
        let mut token_file = tempfile::NamedTempFile::new().context("token file")?;
        std::io::Write::write_all(&mut token_file, token.as_bytes())?;
        let bin = worker_binary();
        let mut workers = LocalWorkers {
            children: Vec::new(),
            addrs: Vec::new(),
            token,
            _token_file: token_file,
        };
        let mut lines = Vec::new();
        for i in 0..n {
            let (child, line) = spawn_one(&bin, workers._token_file.path(), threads, data_root)
                .with_context(|| format!("starting local worker {i} ({})", bin.display()))?;
            workers.children.push(child);
            lines.push(line);
        }
        Ok(Spawned {
            workers,
            bin,
            lines,
        })
    }
}

impl Spawned {
    /// Waits for every worker's address (each loads GDAL first, all at once).
    pub fn ready(self) -> anyhow::Result<LocalWorkers> {
        let Spawned {
            mut workers,
            bin,
            lines,
        } = self;
        for (i, line) in lines.into_iter().enumerate() {
            let addr = address(line)
                .with_context(|| format!("starting local worker {i} ({})", bin.display()))?;
            workers.addrs.push(addr);
        }
        tracing::info!(workers = workers.addrs.len(), addrs = ?workers.addrs, "local workers started");
        Ok(workers)
    }
}

/// Starts one worker process; returns it and where its first stdout line (its address)
/// arrives.
fn spawn_one(
    bin: &Path,
    token_file: &Path,
    threads: usize,
    data_root: Option<&Path>,
) -> anyhow::Result<(Child, std::sync::mpsc::Receiver<String>)> {
    let mut cmd = Command::new(bin);
    cmd.args(["--listen", "127.0.0.1:0", "--threads", &threads.to_string()])
        .arg("--token-file")
        .arg(token_file);
    if let Some(root) = data_root {
        // started by this coordinator for this study: the layers the study names by URL
        // are the study author's choice
        cmd.arg("--data-root").arg(root).arg("--allow-urls");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to send SIGKILL to
        // the child when its parent dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().context("worker stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        let mut sink = String::new();
        while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    Ok((child, rx))
}

/// The address a started worker prints first (a worker that printed none is killed with
/// the others when they are dropped).
fn address(line: std::sync::mpsc::Receiver<String>) -> anyhow::Result<String> {
    match line.recv_timeout(Duration::from_secs(30)) {
        Ok(line) if !line.trim().is_empty() => Ok(line.trim().to_string()),
        _ => bail!("the worker printed no address within 30 s"),
    }
}

impl Drop for LocalWorkers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}
