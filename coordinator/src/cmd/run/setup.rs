//! The workers of `flus run`: started on loopback or connected from `--workers`, the
//! tiling of the grid over them, the layers they read themselves (`--shared-data`) and
//! their peak memory at the end of a run.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use flus_shared::ca::Tiling;
use flus_shared::config::Study;
use flus_shared::stack;

use super::super::common;
use super::Args;
use crate::cluster::fanout::{self, rpc, Calls};
use crate::cluster::local::{LocalWorkers, Spawned};
use crate::cluster::{pool, wire};
use crate::run_json::{MemoryJson, WorkerMemoryJson};

/// The study's static layers as files relative to the workers' data root `root`, with the
/// nodata each is read with (the rules of `flus_shared::stack::load`).
pub(super) fn shared_files(
    study: &Study,
    st: &stack::Stack,
    root: &Path,
) -> anyhow::Result<Vec<wire::LayerFile>> {
    use flus_shared::config::NodataSetting;
    use wire::{layer_file, SharedLayer};
    if let Some(w) = st.warped.first() {
        anyhow::bail!(
            "--shared-data: {} is not on the land-use grid (it was warped); workers read layers as they are: align it first (`flus prepare`, or `flus make-study`)",
            w.display()
        );
    }
    let root = root
        .canonicalize()
        .with_context(|| format!("data root {}", root.display()))?;
    let rel = |p: &Path| -> anyhow::Result<String> {
        let path = study.resolve(p);
        // a URL (GDAL's /vsicurl/, /vsis3/, ...) goes to the workers as it is: each reads
        // its tiles' windows from it
        if flus_shared::raster::is_virtual(&path) {
            return path
                .to_str()
                .map(str::to_string)
                .with_context(|| format!("{}: not a UTF-8 path", path.display()));
        }
        let c = path
            .canonicalize()
            .with_context(|| format!("{}", path.display()))?;
        let r = c.strip_prefix(&root).map_err(|_| {
            anyhow::anyhow!(
                "--shared-data: {} is not under the workers' data root {}",
                c.display(),
                root.display()
            )
        })?;
        r.to_str()
            .map(|s| s.replace('\\', "/"))
            .with_context(|| format!("{}: not a UTF-8 path", r.display()))
    };
    let nodata = |p: &Path, setting: Option<&NodataSetting>| -> anyhow::Result<Option<f64>> {
        Ok(match setting {
            Some(NodataSetting::Value(v)) => Some(*v),
            Some(NodataSetting::Keyword(w)) if w == "none" => None,
            _ => flus_shared::raster::info(&study.resolve(p))?.nodata,
        })
    };
    let cfg = &study.config;
    let mut out = Vec::new();
    for d in &cfg.drivers {
        out.push(layer_file(
            SharedLayer::Driver,
            rel(&d.path)?,
            d.band as u32,
            nodata(&d.path, d.nodata.as_ref())?,
        ));
    }
    for r in &cfg.restrictions {
        out.push(layer_file(
            SharedLayer::Restricted,
            rel(&r.path)?,
            r.band as u32,
            nodata(&r.path, r.nodata.as_ref())?,
        ));
    }
    if let Some(z) = &cfg.zones {
        out.push(layer_file(
            SharedLayer::Zones,
            rel(&z.path)?,
            1,
            nodata(&z.path, None)?,
        ));
    }
    Ok(out)
}

/// Peak resident memory of the coordinator and of every worker, total and per grid cell.
pub(super) fn memory_report(
    rt: &tokio::runtime::Runtime,
    conns: &[pool::WorkerConn],
    cells: u64,
) -> MemoryJson {
    let per = |b: u64| b as f64 / cells.max(1) as f64;
    let coord = flus_shared::memory::peak_rss_bytes().unwrap_or(0);
    let calls = conns
        .iter()
        .enumerate()
        .map(|(w, c)| Calls {
            w,
            what: "Stats".into(),
            rpcs: vec![rpc(&c.client, |mut c| async move {
                c.stats(flus_proto::v1::StatsRequest {}).await
            })],
        })
        .collect();
    let stats = fanout::best_effort(rt.handle(), Duration::from_secs(10), calls);
    let workers: Vec<WorkerMemoryJson> = conns
        .iter()
        .zip(stats)
        .map(|(c, s)| WorkerMemoryJson {
            addr: c.addr.clone(),
            peak_rss_bytes: s.as_ref().map(|s| s.peak_rss_bytes),
            peak_rss_bytes_per_cell: s.map(|s| per(s.peak_rss_bytes)),
        })
        .collect();
    let total = workers
        .iter()
        .map(|w| w.peak_rss_bytes)
        .sum::<Option<u64>>()
        .map(|w| w + coord);
    MemoryJson {
        grid_cells: cells,
        coordinator_peak_rss_bytes: coord,
        coordinator_peak_rss_bytes_per_cell: per(coord),
        workers,
        all_processes_peak_rss_bytes: total,
        all_processes_peak_rss_bytes_per_cell: total.map(per),
    }
}

/// Tiles of a run: `base` (workers x tiles per worker), or the smallest multiple of it
/// whose tiles hold at most `max_cells` cells each on average.
pub fn tile_count(base: usize, cells: usize, max_cells: usize) -> usize {
    let base = base.max(1);
    let need = cells.div_ceil(max_cells.max(1));
    base * need.div_ceil(base).max(1)
}

/// A near-square tiling with about `n` tiles.
pub fn tiling_for(n: usize, width: usize, height: usize) -> Tiling {
    let n = n.max(1);
    let mut rows = ((n as f64 * height as f64 / width as f64).sqrt().round() as usize).clamp(1, n);
    while !n.is_multiple_of(rows) && rows > 1 {
        rows -= 1;
    }
    Tiling {
        rows: rows.min(height),
        cols: (n / rows).clamp(1, width),
    }
}

pub(super) fn token_for(args: &Args) -> anyhow::Result<String> {
    common::cluster_token(args.token_file.as_deref())
}

/// The workers of a run and the runtime that talks to them: local ones started on
/// loopback (stopped when this is dropped) or those of `--workers`, connected.
pub(super) struct Workers {
    /// Local worker processes, kept alive for the run.
    pub(super) _local: Option<LocalWorkers>,
    /// Their addresses.
    pub(super) addrs: Vec<String>,
    /// The runtime of the gRPC calls.
    pub(super) rt: tokio::runtime::Runtime,
    /// One connection per worker.
    pub(super) conns: Vec<pool::WorkerConn>,
    /// Deadline of every call.
    pub(super) deadline: Duration,
}

impl Workers {
    /// Starts the processes of the local workers (one per core unless
    /// `--local-workers`, sharing the cores or `--worker-threads` each) without waiting
    /// for them; None with `--workers`. They die with the calling thread: call it from
    /// the run's own.
    pub(super) fn spawn_local(
        args: &Args,
        data_root: Option<&Path>,
    ) -> anyhow::Result<Option<Spawned>> {
        if !args.workers.is_empty() {
            return Ok(None);
        }
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let n = args.local_workers.unwrap_or(threads).max(1);
        let per = args.worker_threads.unwrap_or(threads / n).max(1);
        Ok(Some(LocalWorkers::spawn(n, per, data_root)?))
    }

    /// Connects to every worker: the local ones of [`Workers::spawn_local`] once they
    /// are up, else those of `--workers`.
    pub(super) fn connect(args: &Args, local: Option<Spawned>) -> anyhow::Result<Self> {
        let (_local, addrs, token) = match local {
            Some(spawned) => {
                let lw = spawned.ready()?;
                let (a, t) = (lw.addrs.clone(), lw.token.clone());
                (Some(lw), a, t)
            }
            None => (None, args.workers.clone(), token_for(args)?),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let deadline = Duration::from_secs_f64(args.deadline);
        // local workers speak plaintext on loopback; TLS is for --workers
        let tls = if args.workers.is_empty() {
            pool::Tls::default()
        } else {
            args.tls.tls()
        };
        let conns: Vec<pool::WorkerConn> = rt.block_on(async {
            let mut v = Vec::new();
            for a in &addrs {
                v.push(pool::connect(a, &token, deadline, &tls).await?);
            }
            anyhow::Ok(v)
        })?;
        Ok(Self {
            _local,
            addrs,
            rt,
            conns,
            deadline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilings_have_about_the_asked_number_of_tiles() {
        assert_eq!(tiling_for(1, 100, 100), Tiling { rows: 1, cols: 1 });
        assert_eq!(tiling_for(4, 100, 100), Tiling { rows: 2, cols: 2 });
        let t = tiling_for(8, 1004, 1559);
        assert_eq!(t.rows * t.cols, 8);
        assert!(t.rows >= t.cols);
    }

    #[test]
    fn large_grids_get_a_multiple_of_the_base_tiles_below_the_largest_tile() {
        // Ben Cat (1,565,236 cells) on 2 workers x 4 tiles: 8 tiles of ~196 k cells
        assert_eq!(tile_count(8, 1_565_236, 4_000_000), 8);
        // 130,003,200 cells: 130.0 M / 4 M = 32.5 -> 33 tiles needed -> 5 x 8 = 40
        assert_eq!(tile_count(8, 130_003_200, 4_000_000), 40);
        // exactly 8 tiles of 4 M
        assert_eq!(tile_count(8, 32_000_000, 4_000_000), 8);
        assert_eq!(tile_count(8, 32_000_001, 4_000_000), 16);
        // no limit below one cell
        assert_eq!(tile_count(3, 10, 0), 12);
    }
}
