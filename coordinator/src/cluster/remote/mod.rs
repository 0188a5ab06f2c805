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
//! its calls to all live workers at once through the fan-out layer
//! ([`crate::cluster::fanout`], module `calls`), which judges every failure by the one
//! rule; replies are combined in worker (and so tile-id) order, never in arrival order.
//!
//! Files: `calls` (the session's calls through the fan-out layer), `loading` (tiles
//! onto workers), `placement` (home workers, failover), `rejoin` (probes and
//! re-admission), `suitability` (the maxima and the raster from the workers' tiles),
//! `lane` (one run: rounds, lane resets, the CA backend), `traffic` (counters); the
//! wire forms of tiles and steps are in [`crate::cluster::wire`].

use std::collections::BTreeSet;
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flus_proto::v1::{DropTilesReply, DropTilesRequest, LayerFile};
#[cfg(doc)]
use flus_shared::ca::Backend;
use flus_shared::ca::TileRect;
use flus_shared::layers::Layers;

use super::fanout::{request, rpc, Calls, Rpc};
use super::halo::HaloIndex;
use super::pool::WorkerConn;

mod calls;
mod lane;
mod loading;
mod placement;
mod rejoin;
mod suitability;
mod traffic;

pub use lane::RunLane;
pub use placement::home_workers;
pub use suitability::write_suitability;
pub use traffic::{SessionTraffic, Traffic, WorkerTraffic};

/// The session behind its mutex (a run or a job that panicked leaves the session
/// usable: its state is only counters and placements, each consistent at every unlock).
fn lock<'g, 'a>(session: &'g Mutex<Remote<'a>>) -> MutexGuard<'g, Remote<'a>> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

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

    /// The live workers that hold tiles, with their tiles (in id order).
    fn holders(&self) -> Vec<(usize, Vec<u32>)> {
        self.alive()
            .into_iter()
            .map(|w| (w, self.tiles_of(w)))
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    /// Drops the session's tiles from every live worker.
    pub fn release(&mut self) {
        let calls = self
            .alive()
            .into_iter()
            .map(|w| Calls {
                w,
                what: "DropTiles".into(),
                rpcs: vec![self.drop_all(w)],
            })
            .collect();
        if let Err(e) = self.call(calls) {
            tracing::warn!("releasing the session's tiles: {e}");
        }
        self.stop_probes();
    }

    /// The call that drops every tile of this session from worker `w`.
    fn drop_all(&self, w: usize) -> Rpc<DropTilesReply> {
        let req = request(
            self.deadline,
            DropTilesRequest {
                run_id: self.run_id.clone(),
                tile_ids: vec![],
            },
        );
        rpc(&self.workers[w].conn.client, |mut c| async move {
            c.drop_tiles(req).await
        })
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
