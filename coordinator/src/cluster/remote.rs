//! The CA over gRPC workers: a [`Backend`] whose tiles live on remote workers. Every call
//! has a deadline; a worker that fails or times out is dropped, its tiles are re-sent
//! (static layers plus the session's start map) to the surviving workers, every run sets
//! its lane on them from its own map, and the unfinished phase is re-run for them. A
//! step is a pure function of its inputs, so the result is the same bits as without the
//! failure.
//!
//! In the Commit phase the coordinator's map is still the iteration's old map: a tile
//! that already committed when its worker is lost (a second loss in the same phase, or
//! a survivor lost while receiving the first one's tiles) gets its lane set with the
//! changes committed so far on top of it, and is not stepped again; only the uncommitted tiles
//! are stepped (on the old map) and committed. So the map is the same whatever the
//! order in which losses are seen.
//!
//! A lost worker's address is health-checked in the background every few seconds; a
//! worker that answers again (restarted, or reachable again) is re-admitted at the start
//! of the next iteration of any run: its stale tiles of the session are dropped, its home
//! tiles ([`home_workers`]) are re-loaded on it and leave their interim owners.
//!
//! A [`Remote`] is a **session**: the tiles of one network (static layers, the start map,
//! then the u16 suitability the workers compute from the broadcast network) are loaded
//! once ([`Remote::open`]) and stay on the workers for every CA run that uses that
//! network. A run ([`RunLane`], module `lane`) is the [`Backend`] of one `run_loop`: it
//! owns a lane, a class window of every tile on the workers, which it sets to the map
//! it starts from (ResetClasses, the differences from the session's start map). Several
//! runs of a session proceed at once from several threads, each in its own lane; the
//! session sits behind a mutex that a run holds only to build its calls and to account
//! for their replies, never while it waits for them.
//!
//! Tiles are always (re)loaded from the session's start map, and every load of a tile
//! bumps its epoch. A run whose lane was set on an older epoch of a tile (its worker was
//! lost and the tile re-sent, or the tile moved back to a re-admitted worker, whoever
//! noticed it) sets its lane on the tile again from its own map before its next call,
//! and steps it again: no run depends on which run saw a failure, or when.
//! The suitability raster is assembled from the workers' tiles
//! ([`Remote::write_suitability`]) and the maxima they return are kept
//! ([`Remote::free_maxima`]).
//!
//! Every phase (tile loading, Suitability, Propose, ExactKeys, Commit, CarbonSums) sends
//! its calls to all live workers at once through one helper ([`Remote::call`]); replies
//! are combined in worker (and so tile-id) order, never in arrival order.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flus_proto::v1::{
    file_tile_chunk, tile_chunk, DropTilesRequest, FileTileChunk, LayerChunk, LayerFile, LayerInfo,
    LayerKind, SuitabilityRequest, SuitabilityRowsRequest, TileChunk, TileFiles, TileHeader,
    TileLoaded, TileSpec,
};
#[cfg(doc)]
use flus_shared::ca::Backend;
use flus_shared::ca::{self, TileRect};
use flus_shared::layers::Layers;

use super::halo::HaloIndex;
use super::pool::WorkerConn;
use fanout::{join, map_reply, request, rpc, Calls, Failure, InFlight, Replies, Rpc};

mod fanout;
mod lane;
mod traffic;
mod wire;

pub use lane::RunLane;
pub use traffic::{PhaseSeconds, SessionTraffic, Traffic, WorkerTraffic};

/// Bytes per LoadTile chunk (well under the message limit).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Static layers of the whole grid that tiles are cut from.
pub struct StaticLayers<'a> {
    /// The session's start map (class indices, row-major): every tile is loaded with it,
    /// and every run sets its lane from it.
    pub start: &'a [u8],
    /// Restricted cells.
    pub restricted: &'a [bool],
    /// Drivers (full grid each, read a row of a tile at a time), for ANN inference on
    /// the workers.
    pub drivers: &'a dyn Layers,
    /// Cell-major suitability (K per cell) when it is shipped instead of computed.
    pub suitability: Option<&'a [f32]>,
    /// Zone codes.
    pub zones: Option<&'a [i32]>,
}

struct WorkerSlot {
    conn: WorkerConn,
    alive: bool,
    /// The background health check of a lost worker's address.
    probe: Option<tokio::task::JoinHandle<()>>,
}

/// The reply of a tile loading call: the tile's suitability maxima (from its
/// Suitability call; None from LoadTile).
type TileMax = Option<Vec<f32>>;

/// A round of tile loading in flight: the calls, and each call's tile and data bytes.
type LoadRound = (InFlight<TileMax>, Vec<(u32, u64)>);
/// A session: the tiles of one network on the workers, shared by its runs
/// ([`RunLane`]) behind a mutex.
pub struct Remote<'a> {
    rt: tokio::runtime::Handle,
    workers: Vec<WorkerSlot>,
    rects: Vec<TileRect>,
    owner: Vec<usize>,
    /// Home worker of each tile (where it goes back when its worker rejoins).
    home: Vec<usize>,
    run_id: String,
    deadline: Duration,
    k: usize,
    r: usize,
    height: usize,
    layers: StaticLayers<'a>,
    network: Option<Vec<u8>>,
    /// Tiles by position, to find the halo rings a change falls in.
    halo: HaloIndex,
    /// Per tile, how many times it was loaded onto a worker: a run's lane set on an
    /// older epoch is set again before the run's next call on the tile.
    epoch: Vec<u64>,
    /// The lanes of the runs that exist now (a run takes the smallest free one).
    lanes: BTreeSet<u32>,
    /// The run whose work is under way (label and iteration): names the hold points of
    /// test builds and the iteration in messages.
    current: Option<(String, u32)>,
    loaded: bool,
    /// Per tile, the largest suitability per class over its free cells (from
    /// Suitability; None before).
    max_free: Vec<Option<Vec<f32>>>,
    files: Option<Vec<LayerFile>>,
    probe_every: Option<Duration>,
    rejoined_tx: mpsc::Sender<(usize, WorkerConn)>,
    rejoined_rx: mpsc::Receiver<(usize, WorkerConn)>,
    /// A refusal that stops the run ([`super::pool::is_refusal`]) seen by
    /// [`Self::wait`]: the phase turns it into an error.
    refused: Option<String>,
    /// Workers' refusals that a resume cannot cure (a wrong token, a limit).
    refusals: super::cause::Refusals,
    /// What went over the wire in the work under way: the session's own (its first
    /// load, the suitability raster), or a run's while it holds the session (swapped
    /// with the run's own counters, so each run keeps what it caused).
    pub traffic: Traffic,
    /// What the session cost over all its runs.
    pub session: SessionTraffic,
}

/// The home worker of every tile among `n` workers: tiles in row `r` and column `c` of
/// the tiling go to worker `(r + c) mod n`, a diagonal striping that gives each worker
/// tiles from every part of the grid (with `i mod n` and two tile columns, each of two
/// workers held one half of the map, and busy and quiet halves made one worker wait for
/// the other). Same count per worker within one when the tiling has n or more columns
/// or rows.
pub fn home_workers(rects: &[TileRect], n: usize) -> Vec<usize> {
    let n = n.max(1);
    let rows: BTreeSet<usize> = rects.iter().map(|r| r.y0).collect();
    let cols: BTreeSet<usize> = rects.iter().map(|r| r.x0).collect();
    let index = |set: &BTreeSet<usize>, v: usize| set.range(..v).count();
    rects
        .iter()
        .map(|r| (index(&rows, r.y0) + index(&cols, r.x0)) % n)
        .collect()
}

impl<'a> Remote<'a> {
    /// Places every tile on its home worker ([`home_workers`]).
    pub fn new(
        rt: tokio::runtime::Handle,
        workers: Vec<WorkerConn>,
        rects: Vec<TileRect>,
        height: usize,
        k: usize,
        r: usize,
        run_id: String,
        deadline: Duration,
        layers: StaticLayers<'a>,
    ) -> Self {
        let n_tiles = rects.len();
        let home = home_workers(&rects, workers.len());
        let owner = home.clone();
        let halo = HaloIndex::new(&rects, r);
        let max_free = vec![None; rects.len()];
        let (rejoined_tx, rejoined_rx) = mpsc::channel();
        let per_worker = workers
            .iter()
            .map(|c| WorkerTraffic {
                addr: c.addr.clone(),
                ..Default::default()
            })
            .collect();
        Self {
            rt,
            workers: workers
                .into_iter()
                .map(|conn| WorkerSlot {
                    conn,
                    alive: true,
                    probe: None,
                })
                .collect(),
            rects,
            owner,
            home,
            run_id,
            deadline,
            k,
            r,
            height,
            layers,
            network: None,
            halo,
            epoch: vec![0; n_tiles],
            lanes: BTreeSet::new(),
            current: None,
            loaded: false,
            max_free,
            refused: None,
            files: None,
            probe_every: None,
            rejoined_tx,
            rejoined_rx,
            refusals: Default::default(),
            traffic: Traffic {
                per_worker,
                ..Default::default()
            },
            session: SessionTraffic {
                tiles: n_tiles as u64,
                ..Default::default()
            },
        }
    }

    /// Health-checks lost workers' addresses every `every` (None: never) and re-admits
    /// those that answer again.
    pub fn set_rejoin_probe(&mut self, every: Option<Duration>) {
        self.probe_every = every.filter(|d| !d.is_zero());
    }

    /// Starts `calls` on the runtime, every worker's at once (each RPC within the
    /// deadline, a worker's RPCs one after another).
    fn start<T: Send + 'static>(&self, calls: Vec<Calls<T>>) -> InFlight<T> {
        fanout::start(&self.rt, self.deadline, calls)
    }

    /// Waits for calls started by [`Self::start`] (holding the session: for the
    /// session's own work) and accounts for them ([`Self::account`]).
    fn wait<T>(&mut self, calls: InFlight<T>) -> Replies<T> {
        let joined = join(&self.rt, calls);
        self.account(joined)
    }

    /// Each worker's replies of calls that ended, in the order the calls were given
    /// (never in arrival order), or `Err` for a worker that failed or missed the
    /// deadline (logged with its reason and address).
    fn account<T>(&mut self, joined: fanout::Joined<T>) -> Replies<T> {
        let deadline = self.deadline;
        joined
            .into_iter()
            .map(|(w, what, out, failure)| {
                let s = &mut self.traffic.per_worker[w];
                s.calls += out.len() as u64;
                s.calls_since_rejoin += out.len() as u64;
                let addr = &self.workers[w].conn.addr;
                match failure {
                    None => (w, Ok(out)),
                    Some(Failure::Deadline) => {
                        tracing::warn!(worker = %addr, "{what}: no answer within the deadline of {deadline:?}");
                        (w, Err(()))
                    }
                    Some(Failure::Status(e)) if super::pool::is_refusal(&e) => {
                        // any worker would answer so: the run stops with the message
                        self.refusals.note(addr, &what, &e);
                        self.refused.get_or_insert_with(|| {
                            format!(
                                "{what} refused by worker {addr}: {:?}: {}",
                                e.code(),
                                e.message()
                            )
                        });
                        (w, Err(()))
                    }
                    Some(Failure::Status(e)) => {
                        tracing::warn!(worker = %addr, "{what} failed: {:?}: {}", e.code(), e.message());
                        self.refusals.note(addr, &what, &e);
                        (w, Err(()))
                    }
                }
            })
            .collect()
    }

    /// Runs `calls` (several workers at once) and waits for all of them: the one helper
    /// every phase goes through. Replies come back in the order of `calls`; a refusal
    /// ([`super::pool::is_refusal`]) is an error, other failures are `Err(())` for the
    /// caller to drop the worker.
    fn call<T: Send + 'static>(&mut self, calls: Vec<Calls<T>>) -> flus_shared::Result<Replies<T>> {
        let started = self.start(calls);
        let out = self.wait(started);
        self.check_refused()?;
        Ok(out)
    }

    /// The error of a refusal seen by [`Self::wait`], if any.
    fn check_refused(&mut self) -> flus_shared::Result<()> {
        match self.refused.take() {
            Some(m) => Err(flus_shared::Error::Data(self.refusals.explain(m))),
            None => Ok(()),
        }
    }

    /// One RPC to worker `w` through [`Self::call`]; `Ok(Err(()))` when it failed.
    fn call_one<T: Send + 'static>(
        &mut self,
        w: usize,
        what: &str,
        rpc: Rpc<T>,
    ) -> flus_shared::Result<Result<T, ()>> {
        let mut r = self.call(vec![Calls {
            w,
            what: what.to_string(),
            rpcs: vec![rpc],
        }])?;
        Ok(match r.pop() {
            Some((_, Ok(mut v))) => v.pop().ok_or(()),
            _ => Err(()),
        })
    }

    /// The workers whose calls failed in `results`.
    fn failed<T>(results: &[(usize, Result<T, ()>)]) -> Vec<usize> {
        results
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|&(w, _)| w)
            .collect()
    }

    fn alive(&self) -> Vec<usize> {
        (0..self.workers.len())
            .filter(|&w| self.workers[w].alive)
            .collect()
    }

    fn tiles_of(&self, w: usize) -> Vec<u32> {
        (0..self.rects.len())
            .filter(|&t| self.owner[t] == w)
            .map(|t| t as u32)
            .collect()
    }

    /// Workers read the static layers themselves from these files (paths relative to
    /// their data root) instead of receiving them; only the class window is streamed.
    pub fn set_files(&mut self, files: Vec<LayerFile>) {
        self.files = Some(files);
    }

    /// Sets the ANN network the workers compute their suitability with (JSON of
    /// `flus_shared::ann::Network`); without one, the suitability layer is shipped.
    pub fn set_network(&mut self, network: Vec<u8>) {
        self.network = Some(network);
    }

    /// Opens the session: loads every tile onto its worker with the session's start map,
    /// and with a network computes the tiles' suitability there. Runs need it done.
    pub fn open(&mut self) -> flus_shared::Result<()> {
        let started = Instant::now();
        let before = self.traffic.tile_bytes;
        let all: Vec<u32> = (0..self.rects.len() as u32).collect();
        self.place(all)?;
        self.loaded = true;
        self.session.first_load_bytes = self.traffic.tile_bytes - before;
        self.session.load_seconds = started.elapsed().as_secs_f64();
        // the first load is the session's, not its first run's
        self.traffic.tile_bytes = before;
        self.traffic.seconds.load = 0.0;
        Ok(())
    }

    /// The largest suitability per class over the free cells of the grid (valid and
    /// not restricted), from the maxima the workers returned with their tiles'
    /// suitability; None when some tile has none (no network, or not loaded yet).
    pub fn free_maxima(&self) -> Option<Vec<f32>> {
        let mut out: Option<Vec<f32>> = None;
        for m in &self.max_free {
            let m = m.as_ref()?;
            match &mut out {
                None => out = Some(m.clone()),
                Some(o) => o.iter_mut().zip(m).for_each(|(a, &b)| *a = a.max(b)),
            }
        }
        out
    }

    /// Whether global cell `cell` lies in the window (core and halo) of tile `t`.
    fn in_window(&self, t: usize, cell: u64) -> bool {
        let rc = &self.rects[t];
        let (x, y) = (
            (cell % rc.grid_width as u64) as usize,
            (cell / rc.grid_width as u64) as usize,
        );
        x + self.r >= rc.x0
            && x < rc.x0 + rc.width + self.r
            && y + self.r >= rc.y0
            && y < rc.y0 + rc.height + self.r
    }

    /// Writes the K-band suitability raster of the session to `path` (Float32, band
    /// names `class_names`) from the workers' tiles: a strip of rows at a time, each
    /// tile's rows of the strip fetched from its worker (SuitabilityRows), the values the
    /// CA steps on ([`ca::suitability_from_fixed`] of the u16). A worker lost meanwhile
    /// gives its tiles to the others and the strip is fetched again.
    pub fn write_suitability(
        &mut self,
        path: &std::path::Path,
        grid: &flus_shared::grid::Grid,
        class_names: &[String],
    ) -> flus_shared::Result<()> {
        use flus_shared::raster;
        let started = Instant::now();
        let k = self.k;
        if class_names.len() != k || grid.width != self.rects[0].grid_width {
            return Err(flus_shared::Error::raster(
                path,
                format!(
                    "{} class names for a session of {k} classes on a grid {} cells wide,                      expected {k} names and the session's grid ({} cells wide)",
                    class_names.len(),
                    grid.width,
                    self.rects[0].grid_width
                ),
            ));
        }
        // test builds: a fault test can kill a worker before the first rows are fetched
        flus_shared::hooks::hold(|| "suitability-assembly".into());
        let options = raster::WriteOptions {
            nodata: None,
            palette: Vec::new(),
            band_names: class_names.to_vec(),
        };
        let mut writer = raster::StripWriter::<f32>::create(path, grid, k, &options)?;
        let (w, h) = (grid.width, grid.height);
        let mut bands = vec![Vec::new(); k];
        for y0 in (0..h).step_by(raster::STRIP_ROWS) {
            let y1 = (y0 + raster::STRIP_ROWS).min(h);
            // the tiles that cross the strip, with their rows of it
            let parts: Vec<(u32, u32, u32)> = (0..self.rects.len())
                .filter_map(|t| {
                    let rc = &self.rects[t];
                    let a = y0.max(rc.y0);
                    let b = y1.min(rc.y0 + rc.height);
                    (a < b).then(|| (t as u32, (a - rc.y0) as u32, (b - a) as u32))
                })
                .collect();
            let replies = loop {
                let make = |me: &Self, wk: usize, tiles: Vec<u32>| {
                    let rpcs = parts
                        .iter()
                        .filter(|p| tiles.contains(&p.0))
                        .map(|&(tile_id, row0, rows)| {
                            let req = request(
                                me.deadline,
                                SuitabilityRowsRequest {
                                    run_id: me.run_id.clone(),
                                    tile_id,
                                    row0,
                                    rows,
                                },
                            );
                            rpc(&me.workers[wk].conn.client, |mut c| async move {
                                c.suitability_rows(req).await
                            })
                        })
                        .collect();
                    Calls {
                        w: wk,
                        what: "SuitabilityRows".into(),
                        rpcs,
                    }
                };
                if let Some(r) = self.each_holder(|s| &mut s.load, make)? {
                    break r;
                }
            };
            for b in bands.iter_mut() {
                b.clear();
                b.resize((y1 - y0) * w, 0f32);
            }
            for rep in replies {
                self.session.suitability_bytes += rep.values.len() as u64;
                let rc = self.rects.get(rep.tile_id as usize).ok_or_else(|| {
                    flus_shared::Error::Data(format!(
                        "SuitabilityRows: a reply for tile {} of {}",
                        rep.tile_id,
                        self.rects.len()
                    ))
                })?;
                let cells = rep.rows as usize * rc.width;
                if rep.values.len() != cells * k * 2 {
                    return Err(flus_shared::Error::Data(format!(
                        "SuitabilityRows of tile {}: {} bytes for {} rows of {} cells x {k} classes",
                        rep.tile_id,
                        rep.values.len(),
                        rep.rows,
                        rc.width
                    )));
                }
                for (i, v) in rep.values.chunks_exact(2).enumerate() {
                    let (cell, c) = (i / k, i % k);
                    let (y, x) = (
                        rc.y0 + rep.row0 as usize + cell / rc.width,
                        rc.x0 + cell % rc.width,
                    );
                    bands[c][(y - y0) * w + x] =
                        ca::suitability_from_fixed(u16::from_le_bytes([v[0], v[1]])) as f32;
                }
            }
            for (c, band) in bands.iter().enumerate() {
                writer.write_rows(c, band)?;
            }
        }
        writer.finish()?;
        self.session.suitability_seconds += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// Loads `tiles` onto their owners. Workers that fail meanwhile are dropped, and
    /// their tiles join the ones to load.
    fn place(&mut self, mut tiles: Vec<u32>) -> flus_shared::Result<()> {
        let started = Instant::now();
        let res = loop {
            match self.load_tiles(&tiles) {
                Err(e) => break Err(e),
                Ok(failed) if failed.is_empty() => break Ok(()),
                Ok(failed) => {
                    for &w in &failed {
                        for t in self.tiles_of(w) {
                            if !tiles.contains(&t) {
                                self.traffic.tiles_moved += 1;
                                tiles.push(t);
                            }
                        }
                    }
                    if let Err(e) = self.lose_all(&failed) {
                        break Err(e);
                    }
                }
            }
        };
        self.traffic.seconds.load += started.elapsed().as_secs_f64();
        res
    }

    /// [`Self::lose`] for each of `failed`.
    fn lose_all(&mut self, failed: &[usize]) -> flus_shared::Result<()> {
        for &w in failed {
            self.lose(w)?;
        }
        Ok(())
    }

    /// Marks worker `w` dead and gives its tiles to the others (round-robin over the
    /// survivors in index order).
    fn lose(&mut self, w: usize) -> flus_shared::Result<()> {
        if self.workers[w].alive {
            tracing::warn!(worker = %self.workers[w].conn.addr, "worker lost; moving its tiles");
            self.workers[w].alive = false;
            self.traffic.workers_lost += 1;
            self.traffic.per_worker[w].lost += 1;
            self.session.workers_lost += 1;
            self.probe(w);
        }
        let alive = self.alive();
        if alive.is_empty() {
            let iteration = self.current.as_ref().map(|c| c.1);
            return Err(flus_shared::Error::Data(self.refusals.explain(format!(
                "all workers lost ({} of {}){}: the run stops; resume it with `flus run --resume` once workers are back",
                self.workers.len(),
                self.workers.len(),
                iteration.map(|t| format!(" at iteration {t}")).unwrap_or_default(),
            ))));
        }
        let mut i = 0;
        for t in 0..self.rects.len() {
            if !self.workers[self.owner[t]].alive {
                self.owner[t] = alive[i % alive.len()];
                i += 1;
            }
        }
        Ok(())
    }

    /// Starts the background health check of lost worker `w`'s address: every
    /// `probe_every`, a fresh connection with the health and protocol check; the first
    /// that succeeds is handed to [`Self::readmit`].
    fn probe(&mut self, w: usize) {
        let Some(every) = self.probe_every else {
            return;
        };
        let conn = self.workers[w].conn.clone();
        let tx = self.rejoined_tx.clone();
        let handle = self.rt.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Ok(Ok(c)) = tokio::time::timeout(every, conn.reconnect(every)).await {
                    tracing::info!(worker = %c.addr, "lost worker answers its health check again");
                    let _ = tx.send((w, c));
                    return;
                }
            }
        });
        if let Some(old) = self.workers[w].probe.replace(handle) {
            old.abort();
        }
    }

    /// Re-admits the lost workers that answered their health check again: drops their
    /// stale tiles of this session, moves their home tiles back onto them and drops
    /// those tiles from their interim owners (the runs set their lanes on them again).
    fn readmit(&mut self) -> flus_shared::Result<()> {
        let back: Vec<(usize, WorkerConn)> = self.rejoined_rx.try_iter().collect();
        for (w, conn) in back {
            self.workers[w].probe = None;
            if self.workers[w].alive {
                continue;
            }
            self.workers[w].conn = conn;
            let req = request(
                self.deadline,
                DropTilesRequest {
                    run_id: self.run_id.clone(),
                    tile_ids: vec![],
                },
            );
            let client = &self.workers[w].conn.client;
            let drop = rpc(client, |mut c| async move { c.drop_tiles(req).await });
            if self.call_one(w, "DropTiles", drop)?.is_err() {
                self.probe(w);
                continue;
            }
            self.workers[w].alive = true;
            self.traffic.workers_rejoined += 1;
            let stats = &mut self.traffic.per_worker[w];
            stats.rejoined += 1;
            stats.calls_since_rejoin = 0;
            let home: Vec<u32> = (0..self.rects.len())
                .filter(|&t| self.home[t] == w && self.owner[t] != w)
                .map(|t| t as u32)
                .collect();
            let interim: Vec<(u32, usize)> =
                home.iter().map(|&t| (t, self.owner[t as usize])).collect();
            for &t in &home {
                self.owner[t as usize] = w;
            }
            tracing::info!(
                worker = %self.workers[w].conn.addr,
                tiles = home.len(),
                "worker re-admitted; its tiles move back"
            );
            self.traffic.tiles_returned += home.len() as u64;
            self.place(home)?;
            // the interim owners drop the copies that now live elsewhere
            let owners: std::collections::BTreeSet<usize> =
                interim.iter().map(|&(_, o)| o).collect();
            for o in owners {
                let ids: Vec<u32> = interim
                    .iter()
                    .filter(|&&(t, old)| old == o && self.owner[t as usize] != o)
                    .map(|&(t, _)| t)
                    .collect();
                if ids.is_empty() || !self.workers[o].alive {
                    continue;
                }
                let req = request(
                    self.deadline,
                    DropTilesRequest {
                        run_id: self.run_id.clone(),
                        tile_ids: ids,
                    },
                );
                let client = &self.workers[o].conn.client;
                let drop = rpc(client, |mut c| async move { c.drop_tiles(req).await });
                if self.call_one(o, "DropTiles", drop)?.is_err() {
                    self.recover(&[o])?;
                }
            }
        }
        Ok(())
    }

    fn spec(&self, t: usize) -> TileSpec {
        let rc = &self.rects[t];
        TileSpec {
            tile_id: t as u32,
            x0: rc.x0 as u32,
            y0: rc.y0 as u32,
            width: rc.width as u32,
            height: rc.height as u32,
            halo: self.r as u32,
            grid_width: rc.grid_width as u32,
            grid_height: self.height as u32,
            classes: self.k as u32,
        }
    }

    /// Builds the LoadTile messages of tile `t`: its class window (with halo, INVALID off
    /// the grid) is the session's start map, which every lane is set from.
    fn tile_messages(&self, t: usize) -> flus_shared::Result<Vec<TileChunk>> {
        let rc = self.rects[t];
        let (w, r) = (rc.grid_width, self.r);
        let mut layers: Vec<(LayerKind, String, Vec<u8>)> = Vec::new();
        let win = ca::tile_window(self.layers.start, self.height, &rc, r)?;
        layers.push((LayerKind::Classes, "classes".into(), win));
        if self.files.is_some() {
            return Ok(Self::chunked(&self.run_id, self.spec(t), layers));
        }
        let core = |f: &mut dyn FnMut(usize, &mut Vec<u8>)| {
            let mut out = Vec::new();
            for y in rc.y0..rc.y0 + rc.height {
                for x in rc.x0..rc.x0 + rc.width {
                    f(y * w + x, &mut out);
                }
            }
            out
        };
        layers.push((
            LayerKind::Restricted,
            "restricted".into(),
            core(&mut |i, o| o.push(self.layers.restricted[i] as u8)),
        ));
        if let Some(s) = self.layers.suitability {
            let k = self.k;
            layers.push((
                LayerKind::Suitability,
                "suitability".into(),
                core(&mut |i, o| {
                    s[i * k..(i + 1) * k]
                        .iter()
                        .for_each(|v| o.extend_from_slice(&v.to_le_bytes()))
                }),
            ));
        } else {
            let mut row = vec![0f32; rc.width];
            for n in 0..self.layers.drivers.count() {
                let mut bytes = Vec::with_capacity(rc.width * rc.height * 4);
                for y in rc.y0..rc.y0 + rc.height {
                    self.layers.drivers.read(n, y * w + rc.x0, &mut row)?;
                    bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
                }
                layers.push((LayerKind::Driver, format!("driver{n}"), bytes));
            }
        }
        if let Some(z) = self.layers.zones {
            layers.push((
                LayerKind::Zones,
                "zones".into(),
                core(&mut |i, o| o.extend_from_slice(&z[i].to_le_bytes())),
            ));
        }
        Ok(Self::chunked(&self.run_id, self.spec(t), layers))
    }

    /// The LoadTile messages of `layers`: header, then chunks of at most
    /// [`CHUNK_BYTES`].
    fn chunked(
        run_id: &str,
        spec: TileSpec,
        layers: Vec<(LayerKind, String, Vec<u8>)>,
    ) -> Vec<TileChunk> {
        let mut msgs = vec![TileChunk {
            part: Some(tile_chunk::Part::Header(TileHeader {
                run_id: run_id.to_string(),
                spec: Some(spec),
                layers: layers
                    .iter()
                    .map(|(kind, name, b)| LayerInfo {
                        name: name.clone(),
                        kind: *kind as i32,
                        bytes: b.len() as u64,
                    })
                    .collect(),
            })),
        }];
        for (li, (_, _, bytes)) in layers.into_iter().enumerate() {
            for (ci, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
                msgs.push(TileChunk {
                    part: Some(tile_chunk::Part::Chunk(LayerChunk {
                        layer: li as u32,
                        offset: (ci * CHUNK_BYTES) as u64,
                        data: chunk.to_vec(),
                    })),
                });
            }
        }
        msgs
    }

    /// The LoadTile (or LoadTileFiles) RPC of tile `t` to worker `w`, and its data
    /// bytes.
    fn load_rpc(&self, w: usize, t: u32) -> flus_shared::Result<(Rpc<TileLoaded>, u64)> {
        let msgs = self.tile_messages(t as usize)?;
        let bytes: u64 = msgs
            .iter()
            .map(|m| match &m.part {
                Some(tile_chunk::Part::Chunk(c)) => c.data.len() as u64,
                _ => 0,
            })
            .sum();
        let client = &self.workers[w].conn.client;
        let call = match &self.files {
            None => {
                let req = request(self.deadline, tokio_stream::iter(msgs));
                rpc(client, |mut c| async move { c.load_tile(req).await })
            }
            Some(layers) => {
                // the header, the files of the static layers, then the class chunks
                let mut v: Vec<FileTileChunk> = Vec::with_capacity(msgs.len() + 1);
                for (i, m) in msgs.into_iter().enumerate() {
                    let part = match m.part {
                        Some(tile_chunk::Part::Header(h)) => file_tile_chunk::Part::Header(h),
                        Some(tile_chunk::Part::Chunk(c)) => file_tile_chunk::Part::Chunk(c),
                        None => continue,
                    };
                    v.push(FileTileChunk { part: Some(part) });
                    if i == 0 {
                        v.push(FileTileChunk {
                            part: Some(file_tile_chunk::Part::Files(TileFiles {
                                layers: layers.clone(),
                            })),
                        });
                    }
                }
                let req = request(self.deadline, tokio_stream::iter(v));
                rpc(client, |mut c| async move { c.load_tile_files(req).await })
            }
        };
        Ok((call, bytes))
    }

    /// Loads `tiles` on their owners (and computes their suitability when a network is
    /// set), every worker at once: round i sends each worker its i-th tile, followed by
    /// the Suitability of that tile alone (the worker then drops the tile's drivers, so
    /// a worker never holds the drivers of all its tiles at once), and the messages of
    /// round i + 1 are built while round i is on the wire. Returns the workers that
    /// failed (none when every tile is loaded).
    fn load_tiles(&mut self, tiles: &[u32]) -> flus_shared::Result<Vec<usize>> {
        let per: Vec<(usize, Vec<u32>)> = self
            .alive()
            .into_iter()
            .map(|w| {
                let mine: Vec<u32> = tiles
                    .iter()
                    .copied()
                    .filter(|&t| self.owner[t as usize] == w)
                    .collect();
                (w, mine)
            })
            .filter(|(_, mine)| !mine.is_empty())
            .collect();
        let rounds = per.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        let mut failed = BTreeSet::new();
        let mut flight: Option<LoadRound> = None;
        for i in 0..=rounds {
            let mut next = None;
            if i < rounds && failed.is_empty() {
                let (mut calls, mut bytes) = (Vec::new(), Vec::new());
                for (w, mine) in &per {
                    if let Some(&t) = mine.get(i) {
                        // every run's lane on the tile is set again before its next call
                        self.epoch[t as usize] += 1;
                        let (call, b) = self.load_rpc(*w, t)?;
                        let what = if self.files.is_some() {
                            format!("LoadTileFiles {t}")
                        } else {
                            format!("LoadTile {t}")
                        };
                        let mut rpcs = vec![map_reply(call, |_| None)];
                        let mut what = what;
                        if let Some(net) = &self.network {
                            what.push_str(" + Suitability");
                            let req = request(
                                self.deadline,
                                SuitabilityRequest {
                                    run_id: self.run_id.clone(),
                                    tile_ids: vec![t],
                                    network: net.clone(),
                                },
                            );
                            let client = &self.workers[*w].conn.client;
                            rpcs.push(map_reply(
                                rpc(client, |mut c| async move { c.suitability(req).await }),
                                |r| r.tiles.into_iter().next().map(|t| t.max),
                            ));
                        }
                        calls.push(Calls { w: *w, what, rpcs });
                        bytes.push((t, b));
                    }
                }
                next = Some((self.start(calls), bytes));
            }
            if let Some((calls, bytes)) = flight.take() {
                let replies = self.wait(calls);
                self.check_refused()?;
                for ((w, r), (t, b)) in replies.into_iter().zip(bytes) {
                    match r {
                        Ok(replies) => {
                            self.traffic.tile_bytes += b;
                            self.session.tile_bytes += b;
                            if let Some(max) = replies.into_iter().flatten().next() {
                                self.max_free[t as usize] = Some(max);
                            }
                        }
                        Err(()) => {
                            failed.insert(w);
                        }
                    }
                }
            }
            flight = next;
        }
        Ok(failed.into_iter().collect())
    }

    /// Drops the workers `failed` and re-sends their tiles to the survivors; the runs
    /// set their lanes on the moved tiles again and step them again.
    fn recover(&mut self, failed: &[usize]) -> flus_shared::Result<()> {
        let mut moved: Vec<u32> = failed.iter().flat_map(|&w| self.tiles_of(w)).collect();
        moved.sort_unstable();
        moved.dedup();
        self.lose_all(failed)?;
        // test builds: a fault test can stop another worker before the tiles are re-sent
        if let Some((label, t)) = &self.current {
            flus_shared::hooks::hold(|| format!("{label}-tiles-moved-{t}"));
        }
        self.traffic.tiles_moved += moved.len() as u64;
        let started = Instant::now();
        let n = moved.len();
        // a survivor that fails while receiving them gives up its own tiles too
        self.place(moved)?;
        tracing::info!(
            tiles = n,
            secs = started.elapsed().as_secs_f64(),
            "tiles re-sent"
        );
        Ok(())
    }

    /// The live workers that hold tiles, with their tiles (in id order).
    fn holders(&self) -> Vec<(usize, Vec<u32>)> {
        self.alive()
            .into_iter()
            .map(|w| (w, self.tiles_of(w)))
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    /// One call per live tile holder, built by `make` from (the worker, its tiles), to
    /// all of them at once, the wait added to the phase's seconds (`slot`). The replies
    /// in worker order; `None` when a worker failed: its tiles then went to the others
    /// and the caller runs the phase again (after re-stepping moved tiles if it needs).
    fn each_holder<T: Send + 'static>(
        &mut self,
        slot: fn(&mut PhaseSeconds) -> &mut f64,
        make: impl Fn(&Self, usize, Vec<u32>) -> Calls<T>,
    ) -> flus_shared::Result<Option<Vec<T>>> {
        let started = Instant::now();
        let calls = self
            .holders()
            .into_iter()
            .map(|(w, tiles)| make(self, w, tiles))
            .collect();
        let results = self.call(calls)?;
        *slot(&mut self.traffic.seconds) += started.elapsed().as_secs_f64();
        let failed = Self::failed(&results);
        if failed.is_empty() {
            return Ok(Some(
                results
                    .into_iter()
                    .filter_map(|(_, r)| r.ok())
                    .flatten()
                    .collect(),
            ));
        }
        self.recover(&failed)?;
        Ok(None)
    }

    /// Drops the session's tiles from every live worker.
    pub fn release(&mut self) {
        let calls = self
            .alive()
            .into_iter()
            .map(|w| {
                let req = request(
                    self.deadline,
                    DropTilesRequest {
                        run_id: self.run_id.clone(),
                        tile_ids: vec![],
                    },
                );
                let client = &self.workers[w].conn.client;
                Calls {
                    w,
                    what: "DropTiles".into(),
                    rpcs: vec![rpc(client, |mut c| async move { c.drop_tiles(req).await })],
                }
            })
            .collect();
        if let Err(e) = self.call(calls) {
            tracing::warn!("releasing the session's tiles: {e}");
        }
        self.stop_probes();
    }

    fn stop_probes(&mut self) {
        for s in &mut self.workers {
            if let Some(p) = s.probe.take() {
                p.abort();
            }
        }
    }
}

impl Drop for Remote<'_> {
    fn drop(&mut self) {
        self.stop_probes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` x `cols` tiles of 10 x 10 cells.
    fn rects(rows: usize, cols: usize) -> Vec<TileRect> {
        flus_shared::ca::Tiling { rows, cols }
            .rects(cols * 10, rows * 10)
            .unwrap()
    }

    #[test]
    fn two_workers_on_a_four_by_two_tiling_get_a_checkerboard() {
        // row-major tiles of 4 rows x 2 columns: (r + c) mod 2
        assert_eq!(
            home_workers(&rects(4, 2), 2),
            vec![0, 1, 1, 0, 0, 1, 1, 0],
            "each worker holds one tile of every row and both columns"
        );
    }

    #[test]
    fn home_tiles_are_spread_evenly_and_one_worker_holds_all() {
        // 3 workers, 4 x 3 tiling: (r + c) mod 3 takes each value 4 times.
        let h = home_workers(&rects(4, 3), 3);
        for w in 0..3 {
            assert_eq!(h.iter().filter(|&&x| x == w).count(), 4);
        }
        assert!(home_workers(&rects(2, 4), 1).iter().all(|&w| w == 0));
        // a single tile column: rows alternate
        assert_eq!(home_workers(&rects(4, 1), 2), vec![0, 1, 0, 1]);
    }
}
