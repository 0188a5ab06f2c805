//! The CA over gRPC workers: a [`Backend`] whose tiles live on remote workers. Every call
//! has a deadline; a worker that fails or times out is dropped, its tiles are re-sent
//! (static layers plus the class window from the coordinator's map) to the surviving
//! workers, and the unfinished phase is re-run for them. A step is a pure function of
//! its inputs, so the result is the same bits as without the failure.
//!
//! In the Commit phase the coordinator's map is still the iteration's old map: a tile
//! that already committed when its worker is lost (a second loss in the same phase, or
//! a survivor lost while receiving the first one's tiles) is re-sent with the changes
//! committed so far on top of it, and is not stepped again; only the uncommitted tiles
//! are stepped (on the old map) and committed. So the map is the same whatever the
//! order in which losses are seen.
//!
//! A lost worker's address is health-checked in the background every few seconds; a
//! worker that answers again (restarted, or reachable again) is re-admitted at the start
//! of the next iteration: its stale tiles of the run are dropped, its home tiles
//! ([`home_workers`]) are re-loaded on it from the coordinator's map and leave their
//! interim owners.
//!
//! A backend is a **session**: the tiles of one network (class window, static layers,
//! then the u16 suitability the workers compute from the broadcast network) are loaded
//! once ([`Remote::open`]) and stay on the workers for every CA run that uses that
//! network; a run ([`Remote::begin_run`]) only resets the class windows to the session's
//! start map (ResetClasses, with the differences of a checkpoint's map when resuming).
//! The suitability raster is assembled from the workers' tiles
//! ([`Remote::write_suitability`]) and the maxima they return are kept
//! ([`Remote::free_maxima`]).
//!
//! Every phase (tile loading, Suitability, Propose, ExactKeys, Commit, CarbonSums) sends
//! its calls to all live workers at once through one helper ([`Remote::call`]); replies
//! are combined in worker (and so tile-id) order, never in arrival order.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flus_proto::v1::{
    file_tile_chunk, tile_chunk, CarbonRequest, CellChanges, CommitRequest, DropTilesRequest,
    ExactKeysRequest, FileTileChunk, LayerChunk, LayerFile, LayerInfo, LayerKind, ProposeRequest,
    ResetRequest, StepParams as PStep, SuitabilityRequest, SuitabilityRowsRequest, Threshold,
    TileChunk, TileFiles, TileHeader, TileLoaded, TileSpec,
};
use flus_shared::ca::{
    self, Backend, CaParams, KeyRequest, MapView, Proposal, StepSummary, Thresholds, TileRect,
    BUCKETS,
};
use flus_shared::layers::Layers;

use super::halo::HaloIndex;
use super::pool::WorkerConn;

/// Bytes per LoadTile chunk (well under the message limit).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Static layers of the whole grid that tiles are cut from.
pub struct StaticLayers<'a> {
    /// The session's start map (class indices, row-major): every run starts from it,
    /// and a tile loaded in the middle of a run carries it beside the run's current map.
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

/// Calls and failures of one worker.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct WorkerTraffic {
    /// Its address.
    pub addr: String,
    /// Calls that it answered.
    pub calls: u64,
    /// Times it was dropped.
    pub lost: u64,
    /// Times it was re-admitted after being dropped.
    pub rejoined: u64,
    /// Calls it answered since it was last re-admitted.
    pub calls_since_rejoin: u64,
    /// Seconds it reported spending on its tiles' steps (Propose): beside the phase's
    /// wait, it shows how evenly the work was spread.
    pub step_seconds: f64,
}

/// Counters of what went over the wire.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Traffic {
    /// Tile data bytes sent by LoadTile.
    pub tile_bytes: u64,
    /// Bytes of halo changes sent with Propose.
    pub halo_bytes: u64,
    /// Bytes of histograms, exact keys and changes received.
    pub reply_bytes: u64,
    /// Tiles re-sent after a failure.
    pub tiles_moved: u64,
    /// Workers dropped.
    pub workers_lost: u64,
    /// Lost workers re-admitted.
    pub workers_rejoined: u64,
    /// Tiles moved back to re-admitted workers.
    pub tiles_returned: u64,
    /// Per worker, in the order given.
    pub per_worker: Vec<WorkerTraffic>,
    /// Wall seconds spent waiting for each phase's calls (from the first request to the
    /// last reply, failovers included): the rest of a run is the coordinator's own work.
    pub seconds: PhaseSeconds,
}

/// What a session (the tiles of one network) cost, over all its runs.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SessionTraffic {
    /// Tiles of the session.
    pub tiles: u64,
    /// Tile data bytes sent by LoadTile over the session: the first load, plus the
    /// tiles re-sent after failures and rejoins.
    pub tile_bytes: u64,
    /// Tile data bytes of the first load alone (each tile once).
    pub first_load_bytes: u64,
    /// Wall seconds of the first load (LoadTile and Suitability of every tile).
    pub load_seconds: f64,
    /// Bytes of ResetClasses requests (changes of resumed runs' maps).
    pub reset_bytes: u64,
    /// Suitability bytes fetched back to assemble the suitability raster.
    pub suitability_bytes: u64,
    /// Wall seconds of the suitability raster's assembly.
    pub suitability_seconds: f64,
    /// CA runs of the session.
    pub runs: u64,
    /// Workers dropped during the session (in its runs or between them).
    pub workers_lost: u64,
}

/// Wall seconds per phase of the remote CA.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PhaseSeconds {
    /// Tile loading and Suitability (first load, failover and rejoin).
    pub load: f64,
    /// Propose (step of the tiles).
    pub propose: f64,
    /// ExactKeys requests of the bucket walk.
    pub exact: f64,
    /// Commit.
    pub commit: f64,
    /// CarbonSums.
    pub carbon: f64,
    /// The whole CA run, from the first tile loaded to the carbon sums: what it takes
    /// beyond the phases above is the coordinator's own work.
    pub total: f64,
}

/// One RPC to a worker, boxed so that calls of different kinds share one helper.
type Rpc<T> = Pin<Box<dyn Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send>>;

/// `rpc` with its reply turned by `f`, so calls of different kinds can follow one
/// another in one [`Calls`].
fn map_reply<T: Send + 'static, U: 'static>(rpc: Rpc<T>, f: fn(T) -> U) -> Rpc<U> {
    Box::pin(async move { rpc.await.map(|r| r.map(f)) })
}

/// The calls of one phase to worker `w`, run one after another (each within the
/// deadline); the first that fails ends them.
struct Calls<T> {
    w: usize,
    what: String,
    rpcs: Vec<Rpc<T>>,
}

/// Why a worker's calls ended early.
enum Failure {
    Deadline,
    Status(tonic::Status),
}

/// The reply of a tile loading call: the tile's suitability maxima (from its
/// Suitability call; None from LoadTile).
type TileMax = Option<Vec<f32>>;

/// A round of tile loading in flight: the calls, and each call's tile and data bytes.
type LoadRound = (InFlight<TileMax>, Vec<(u32, u64)>);

/// Each worker's replies of a phase, in the order of its calls; `Err` for a worker
/// that failed.
type Replies<T> = Vec<(usize, Result<Vec<T>, ()>)>;

/// Calls started on the runtime, not yet waited for: `(worker, what, task)`.
type InFlight<T> = Vec<(
    usize,
    String,
    tokio::task::JoinHandle<(Vec<T>, Option<Failure>)>,
)>;

/// Boxes the RPC that `f` makes with a clone of `client`.
fn rpc<C, T, F, Fut>(client: &C, f: F) -> Rpc<T>
where
    C: Clone + Send + 'static,
    F: FnOnce(C) -> Fut + Send + 'static,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
{
    let c = client.clone();
    Box::pin(async move { f(c).await })
}

/// The remote backend of one CA run.
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
    last: Option<(CaParams, ca::StepParams)>,
    pending: Vec<(u64, u8)>,
    /// Tiles by position, to find the halo rings a change falls in.
    halo: HaloIndex,
    /// Per tile, the positions in `pending` of the changes in its halo ring.
    pending_halo: Vec<Vec<u32>>,
    stepped: Vec<bool>,
    counted: Vec<bool>,
    /// Per tile, whether it committed in the current iteration (its own core changes are
    /// applied on its worker).
    committed: Vec<bool>,
    /// The changes committed so far in the current Commit phase. The coordinator's map
    /// gets them only when the phase ends, so a tile that committed and is then re-sent
    /// in the same phase (its worker lost after committing) carries them on top of the
    /// map ([`Self::tile_messages`]); without them it would lose its own changes.
    commit_changes: Vec<(u64, u8)>,
    loaded: bool,
    /// A run is under way: tiles loaded now carry the session's start map too.
    in_run: bool,
    /// The label of the run under way (names its hold points in test builds).
    run_label: Option<String>,
    /// The run has not stepped yet: its first Propose resets the class windows.
    fresh_run: bool,
    /// A run has changed the class windows since they were loaded.
    ran: bool,
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
    /// What went over the wire in the current (or last) run.
    pub traffic: Traffic,
    /// What the session cost over all its runs.
    pub session: SessionTraffic,
}

/// A tonic request that carries the deadline (the worker sees it as grpc-timeout).
fn request<M>(deadline: Duration, msg: M) -> tonic::Request<M> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(deadline);
    r
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
        let pending_halo = vec![Vec::new(); rects.len()];
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
            last: None,
            pending: Vec::new(),
            halo,
            pending_halo,
            stepped: Vec::new(),
            counted: Vec::new(),
            committed: Vec::new(),
            commit_changes: Vec::new(),
            loaded: false,
            in_run: false,
            run_label: None,
            fresh_run: false,
            ran: false,
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
        let deadline = self.deadline;
        calls
            .into_iter()
            .map(|c| {
                let rpcs = c.rpcs;
                // the timers are made inside the runtime
                let job = self.rt.spawn(async move {
                    let _busy = super::busy::enter();
                    let mut out = Vec::with_capacity(rpcs.len());
                    for rpc in rpcs {
                        let started = Instant::now();
                        match tokio::time::timeout(deadline, rpc).await {
                            Ok(Ok(r)) => out.push(r.into_inner()),
                            // tonic enforces the deadline too (grpc-timeout): name it the same way
                            Ok(Err(_)) | Err(_) if started.elapsed() >= deadline => {
                                return (out, Some(Failure::Deadline))
                            }
                            Ok(Err(e)) => return (out, Some(Failure::Status(e))),
                            Err(_) => return (out, Some(Failure::Deadline)),
                        }
                    }
                    (out, None)
                });
                (c.w, c.what, job)
            })
            .collect()
    }

    /// Waits for calls started by [`Self::start`]; returns each worker's replies in the
    /// order the calls were given (never in arrival order), or `Err` for a worker that
    /// failed or missed the deadline (logged with its reason and address).
    fn wait<T>(&mut self, calls: InFlight<T>) -> Vec<(usize, Result<Vec<T>, ()>)> {
        let deadline = self.deadline;
        let rt = self.rt.clone();
        calls
            .into_iter()
            .map(|(w, what, job)| {
                let (out, failure) = rt.block_on(job).unwrap_or_else(|e| {
                    let msg = format!("call task ended: {e}");
                    (Vec::new(), Some(Failure::Status(tonic::Status::internal(msg))))
                });
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

    /// Opens the session: loads every tile onto its worker, the class windows from
    /// `map` (the session's start map, padded), and with a network computes the tiles'
    /// suitability there. Done by the first Propose when not called before.
    pub fn open(&mut self, map: &MapView) -> flus_shared::Result<()> {
        let started = Instant::now();
        let before = self.traffic.tile_bytes;
        let all: Vec<u32> = (0..self.rects.len() as u32).collect();
        self.place(all, map)?;
        self.loaded = true;
        self.session.first_load_bytes = self.traffic.tile_bytes - before;
        self.session.load_seconds = started.elapsed().as_secs_f64();
        // the first load is the session's, not its first run's
        self.traffic.tile_bytes = before;
        self.traffic.seconds.load = 0.0;
        Ok(())
    }

    /// The session's start map (the map every run's reset starts from; in transition
    /// mode the workers skip the cells that differ from it).
    pub fn start_map(&self) -> &[u8] {
        self.layers.start
    }

    /// Starts CA run `label` of the session: its traffic counters start from zero, and
    /// its first Propose resets the tiles' class windows to the map it starts from (the
    /// session's start map, or a checkpoint's).
    pub fn begin_run(&mut self, label: &str) {
        self.traffic = Traffic {
            per_worker: self
                .workers
                .iter()
                .map(|w| WorkerTraffic {
                    addr: w.conn.addr.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        self.last = None;
        self.pending.clear();
        self.pending_halo = vec![Vec::new(); self.rects.len()];
        self.in_run = true;
        self.run_label = Some(label.to_string());
        self.fresh_run = true;
        self.session.runs += 1;
    }

    /// Ends the run begun by [`Self::begin_run`]; its traffic stays in `traffic`.
    pub fn end_run(&mut self) {
        self.in_run = false;
        self.run_label = None;
        self.fresh_run = false;
    }

    /// Test builds: holds at `{label}-{what}-{iteration}` of the run under way (see
    /// `flus_shared::hooks`), so that a fault test acts at an exact point of a phase.
    fn hold(&self, what: &str) {
        if let (Some(label), Some((_, step))) = (&self.run_label, &self.last) {
            flus_shared::hooks::hold(|| format!("{label}-{what}-{}", step.iteration));
        }
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

    /// Resets every tile's class window to `map` (padded), the map the run starts from:
    /// the workers restore the session's start map and apply the differences, sent to
    /// each worker for its tiles' windows only.
    fn reset(&mut self, map: &MapView) -> flus_shared::Result<()> {
        let (r, start) = (self.r, self.layers.start);
        let width = self.rects.first().map(|rc| rc.grid_width).unwrap_or(0);
        let mut diff: Vec<(u64, u8)> = Vec::new();
        for y in 0..self.height {
            let row = &map.padded[(y + r) * map.stride + r..][..width];
            let base = &start[y * width..(y + 1) * width];
            if row != base {
                diff.extend(
                    row.iter()
                        .zip(base)
                        .enumerate()
                        .filter(|(_, (a, b))| a != b)
                        .map(|(x, (&a, _))| ((y * width + x) as u64, a)),
                );
            }
        }
        if diff.is_empty() && !self.ran {
            return Ok(());
        }
        loop {
            let make = |me: &Self, w: usize, tiles: Vec<u32>| {
                let mine: Vec<(u64, u8)> = diff
                    .iter()
                    .copied()
                    .filter(|&(c, _)| tiles.iter().any(|&t| me.in_window(t as usize, c)))
                    .collect();
                let (cells, classes): (Vec<u64>, Vec<u8>) = mine.into_iter().unzip();
                let req = request(
                    me.deadline,
                    ResetRequest {
                        run_id: me.run_id.clone(),
                        tile_ids: tiles,
                        changes: Some(CellChanges { cells, classes }),
                    },
                );
                Calls {
                    w,
                    what: "ResetClasses".into(),
                    rpcs: vec![rpc(&me.workers[w].conn.client, |mut c| async move {
                        c.reset_classes(req).await
                    })],
                }
            };
            if self.each_holder(map, |s| &mut s.load, make)?.is_some() {
                break;
            }
        }
        self.session.reset_bytes += diff.len() as u64 * 9;
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

    /// Writes the K-band suitability raster of the session to `path` (Float32, band
    /// names `class_names`) from the workers' tiles: a strip of rows at a time, each
    /// tile's rows of the strip fetched from its worker (SuitabilityRows), the values the
    /// CA steps on ([`ca::suitability_from_fixed`] of the u16). A worker lost meanwhile
    /// gives its tiles to the others (reloaded from `map`, the session's start map
    /// padded) and the strip is fetched again.
    pub fn write_suitability(
        &mut self,
        path: &std::path::Path,
        grid: &flus_shared::grid::Grid,
        class_names: &[String],
        map: &MapView,
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
                if let Some(r) = self.each_holder(map, |s| &mut s.load, make)? {
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

    /// Loads `tiles` onto their owners from `map`. Workers that fail meanwhile are
    /// dropped, and their tiles join the ones to load (they must be stepped again).
    fn place(&mut self, mut tiles: Vec<u32>, map: &MapView) -> flus_shared::Result<()> {
        let started = Instant::now();
        let res = loop {
            match self.load_tiles(&tiles, map) {
                Err(e) => break Err(e),
                Ok(failed) if failed.is_empty() => break Ok(()),
                Ok(failed) => {
                    for &w in &failed {
                        for t in self.tiles_of(w) {
                            if let Some(s) = self.stepped.get_mut(t as usize) {
                                *s = false;
                            }
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
            let iteration = self.last.as_ref().map(|l| l.1.iteration);
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
    /// stale tiles of this run, moves their home tiles (i mod n) back onto them from
    /// `map` and drops those tiles from their interim owners.
    fn readmit(&mut self, map: &MapView) -> flus_shared::Result<()> {
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
            self.place(home, map)?;
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
                    self.recover(&[o], map)?;
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

    /// Builds the LoadTile messages of tile `t`.
    fn tile_messages(&self, t: usize, map: &MapView) -> flus_shared::Result<Vec<TileChunk>> {
        let rc = self.rects[t];
        let (w, r) = (rc.grid_width, self.r);
        let mut layers: Vec<(LayerKind, String, Vec<u8>)> = Vec::new();
        // class window with halo, from the padded map (padding is INVALID)
        let mut win = ca::padded_tile_window(map.padded, map.stride, &rc, r);
        if self.committed.get(t) == Some(&true) {
            // it committed in this Commit phase before its worker was lost: `map` is the
            // iteration's old map, the changes committed so far are on top of it
            ca::apply_in_window(&mut win, &rc, r, &self.commit_changes);
        }
        layers.push((LayerKind::Classes, "classes".into(), win));
        if self.in_run {
            // in the middle of a run: the session's start map, for the next runs' reset
            let start = ca::tile_window(self.layers.start, self.height, &rc, r)?;
            layers.push((LayerKind::StartClasses, "start classes".into(), start));
        }
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
    fn load_rpc(
        &self,
        w: usize,
        t: u32,
        map: &MapView,
    ) -> flus_shared::Result<(Rpc<TileLoaded>, u64)> {
        let msgs = self.tile_messages(t as usize, map)?;
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
    fn load_tiles(&mut self, tiles: &[u32], map: &MapView) -> flus_shared::Result<Vec<usize>> {
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
                        let (call, b) = self.load_rpc(*w, t, map)?;
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

    fn step_message(params: &CaParams, step: &ca::StepParams) -> PStep {
        PStep {
            iteration: step.iteration,
            seed: params.seed,
            stream: params.stream,
            neighbourhood: params.neighbourhood as u32,
            weights: params.weights.clone(),
            cost: params.cost.iter().flatten().copied().collect(),
            inertia: step.inertia.clone(),
            closed_in: step.closed_in.clone(),
            closed_out: step.closed_out.clone(),
            closed_pairs: step.closed_pairs.clone(),
            patches: params.patches.map(|p| flus_proto::v1::PatchParams {
                threshold: p.threshold,
                decay: p.decay,
                seeds: p.seeds,
            }),
            patch_level: step.patch_level,
            transitions: step.transitions,
        }
    }

    /// The Propose request of `tiles`, with the halo changes that fall in their windows.
    fn propose_request(
        &mut self,
        params: &CaParams,
        step: &ca::StepParams,
        tiles: Vec<u32>,
    ) -> ProposeRequest {
        // in the order of `pending` (sorted by cell), each change once
        let mut at: Vec<u32> = tiles
            .iter()
            .flat_map(|&t| self.pending_halo[t as usize].iter().copied())
            .collect();
        at.sort_unstable();
        at.dedup();
        let (cells, classes): (Vec<u64>, Vec<u8>) =
            at.iter().map(|&i| self.pending[i as usize]).unzip();
        self.traffic.halo_bytes += cells.len() as u64 * 9;
        ProposeRequest {
            run_id: self.run_id.clone(),
            tile_ids: tiles,
            params: Some(Self::step_message(params, step)),
            halo_changes: Some(CellChanges { cells, classes }),
        }
    }

    /// Drops the workers `failed` and re-sends their tiles (from `map`) to the
    /// survivors; the moved tiles must be stepped again.
    fn recover(&mut self, failed: &[usize], map: &MapView) -> flus_shared::Result<()> {
        let mut moved: Vec<u32> = failed.iter().flat_map(|&w| self.tiles_of(w)).collect();
        moved.sort_unstable();
        moved.dedup();
        self.lose_all(failed)?;
        // test builds: a fault test can stop another worker before the tiles are re-sent
        self.hold("tiles-moved");
        self.traffic.tiles_moved += moved.len() as u64;
        for &t in &moved {
            if let Some(s) = self.stepped.get_mut(t as usize) {
                *s = false;
            }
        }
        let started = Instant::now();
        let n = moved.len();
        // a survivor that fails while receiving them gives up its own tiles too
        self.place(moved, map)?;
        tracing::info!(
            tiles = n,
            secs = started.elapsed().as_secs_f64(),
            "tiles re-sent"
        );
        Ok(())
    }

    /// Steps every tile that does not hold this iteration's proposals, on every worker at
    /// once; histograms of tiles not yet counted go into `sum` (integer sums, added in
    /// worker order).
    fn step_all(&mut self, map: &MapView, sum: &mut StepSummary) -> flus_shared::Result<()> {
        let (params, step) = self.last.clone().ok_or_else(|| {
            flus_shared::Error::Data("remote CA: a step was asked for before Propose".into())
        })?;
        loop {
            let started = Instant::now();
            let (mut calls, mut parts) = (Vec::new(), Vec::new());
            for w in self.alive() {
                let (mut rpcs, mut mine) = (Vec::new(), Vec::new());
                for count in [true, false] {
                    let tiles: Vec<u32> = self
                        .tiles_of(w)
                        .into_iter()
                        .filter(|&t| {
                            let t = t as usize;
                            // a committed tile needs no proposals (one re-sent in the
                            // Commit phase holds the iteration's new map: no step on it)
                            !self.stepped[t] && !self.committed[t] && self.counted[t] != count
                        })
                        .collect();
                    if tiles.is_empty() {
                        continue;
                    }
                    let req = request(
                        self.deadline,
                        self.propose_request(&params, &step, tiles.clone()),
                    );
                    let client = &self.workers[w].conn.client;
                    rpcs.push(rpc(client, |mut c| async move { c.propose(req).await }));
                    mine.push((tiles, count));
                }
                if !rpcs.is_empty() {
                    calls.push(Calls {
                        w,
                        what: "Propose".into(),
                        rpcs,
                    });
                    parts.push(mine);
                }
            }
            if calls.is_empty() {
                return Ok(());
            }
            let results = self.call(calls)?;
            let failed = Self::failed(&results);
            for ((w, r), mine) in results.into_iter().zip(parts) {
                // a failed worker's replies are dropped: its tiles are stepped again
                let Ok(replies) = r else { continue };
                for ((tiles, count), reply) in mine.into_iter().zip(replies) {
                    self.traffic.per_worker[w].step_seconds += reply.step_seconds;
                    if count {
                        let h = reply.histogram.unwrap_or_default();
                        self.traffic.reply_bytes += h.index.len() as u64 * 12;
                        for (i, c) in h.index.iter().zip(&h.counts) {
                            if let Some(v) = sum.histogram.get_mut(*i as usize) {
                                *v += c;
                            }
                        }
                        sum.proposals += reply.proposals;
                        sum.cells += reply.cells_visited;
                    }
                    for t in tiles {
                        self.stepped[t as usize] = true;
                        self.counted[t as usize] = true;
                    }
                }
            }
            self.traffic.seconds.propose += started.elapsed().as_secs_f64();
            if failed.is_empty() {
                return Ok(());
            }
            self.recover(&failed, map)?;
        }
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
        map: &MapView,
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
        self.recover(&failed, map)?;
        Ok(None)
    }

    /// Cell counts per (zone, class) of the tiles' current maps, summed over workers.
    pub fn carbon_counts(
        &mut self,
        map: &MapView,
    ) -> flus_shared::Result<std::collections::BTreeMap<i64, Vec<u64>>> {
        let replies = loop {
            let make = |me: &Self, w: usize, tiles: Vec<u32>| {
                let req = request(
                    me.deadline,
                    CarbonRequest {
                        run_id: me.run_id.clone(),
                        tile_ids: tiles,
                    },
                );
                Calls {
                    w,
                    what: "CarbonSums".into(),
                    rpcs: vec![rpc(&me.workers[w].conn.client, |mut c| async move {
                        c.carbon_sums(req).await
                    })],
                }
            };
            if let Some(r) = self.each_holder(map, |s| &mut s.carbon, make)? {
                break r;
            }
        };
        let mut total: std::collections::BTreeMap<i64, Vec<u64>> = Default::default();
        for r in replies {
            let k = r.classes as usize;
            for (zi, z) in r.zones.iter().enumerate() {
                let e = total.entry(*z).or_insert_with(|| vec![0; k]);
                for c in 0..k {
                    e[c] += r.counts[zi * k + c];
                }
            }
        }
        Ok(total)
    }

    /// Drops the run's tiles from every live worker.
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

impl Backend for Remote<'_> {
    fn propose(
        &mut self,
        params: &CaParams,
        step: &ca::StepParams,
        map: &MapView,
        sum: &mut StepSummary,
    ) -> flus_shared::Result<()> {
        if !self.loaded {
            self.open(map)?;
        }
        if self.fresh_run {
            // the first step of a run: the class windows to the map it starts from
            self.reset(map)?;
            self.fresh_run = false;
            self.ran = true;
        }
        self.last = Some((params.clone(), step.clone()));
        // between iterations: lost workers that answer again take their tiles back
        self.readmit(map)?;
        sum.histogram.clear();
        sum.histogram.resize(BUCKETS * self.k * self.k, 0);
        self.stepped = vec![false; self.rects.len()];
        self.counted = vec![false; self.rects.len()];
        self.committed = vec![false; self.rects.len()];
        self.commit_changes.clear();
        self.step_all(map, sum)
    }

    fn exact(
        &mut self,
        req: &KeyRequest,
        map: &MapView,
        out: &mut Vec<Proposal>,
    ) -> flus_shared::Result<()> {
        let classes: Vec<u32> = (0..self.k)
            .filter(|&c| req.touch[c])
            .map(|c| c as u32)
            .collect();
        let iteration = self.last.as_ref().map(|l| l.1.iteration).unwrap_or(0);
        let mut scratch = StepSummary::default();
        let replies = loop {
            // tiles moved after a failure are stepped again (not counted again)
            self.step_all(map, &mut scratch)?;
            let make = |me: &Self, w: usize, tiles: Vec<u32>| {
                let r = request(
                    me.deadline,
                    ExactKeysRequest {
                        run_id: me.run_id.clone(),
                        tile_ids: tiles,
                        iteration,
                        bucket: req.bucket as u32,
                        classes: classes.clone(),
                    },
                );
                Calls {
                    w,
                    what: "ExactKeys".into(),
                    rpcs: vec![rpc(&me.workers[w].conn.client, |mut c| async move {
                        c.exact_keys(r).await
                    })],
                }
            };
            if let Some(r) = self.each_holder(map, |s| &mut s.exact, make)? {
                break r;
            }
        };
        out.clear();
        for r in replies {
            self.traffic.reply_bytes += r.proposals.len() as u64 * 20;
            out.extend(r.proposals.into_iter().map(|p| Proposal {
                cell: p.cell,
                key: p.key,
                from: p.from as u8,
                to: p.to as u8,
            }));
        }
        Ok(())
    }

    fn commit(
        &mut self,
        thresholds: &Thresholds,
        map: &MapView,
        changed: &mut Vec<(u64, u8)>,
    ) -> flus_shared::Result<()> {
        let iteration = self.last.as_ref().map(|l| l.1.iteration).unwrap_or(0);
        let th = |v: &[ca::Key]| -> Vec<Threshold> {
            v.iter()
                .map(|&(key, cell)| Threshold {
                    key,
                    cell,
                    open: (key, cell) == ca::OPEN,
                })
                .collect()
        };
        let (t_in, t_out, t_pair) = (
            th(&thresholds.t_in),
            th(&thresholds.t_out),
            th(&thresholds.t_pair),
        );
        changed.clear();
        self.commit_changes.clear();
        // test builds: a fault test can stop workers before the iteration's Commit calls
        self.hold("commit");
        let mut scratch = StepSummary::default();
        loop {
            // tiles moved after a failure are stepped again (not counted again)
            self.step_all(map, &mut scratch)?;
            let started = Instant::now();
            let mut sent = Vec::new();
            let mut calls = Vec::new();
            for (w, tiles) in self.holders() {
                let tiles: Vec<u32> = tiles
                    .into_iter()
                    .filter(|&t| !self.committed[t as usize])
                    .collect();
                if tiles.is_empty() {
                    continue;
                }
                let r = request(
                    self.deadline,
                    CommitRequest {
                        run_id: self.run_id.clone(),
                        tile_ids: tiles.clone(),
                        iteration,
                        t_in: t_in.clone(),
                        t_out: t_out.clone(),
                        t_pair: t_pair.clone(),
                    },
                );
                let client = &self.workers[w].conn.client;
                calls.push(Calls {
                    w,
                    what: "Commit".into(),
                    rpcs: vec![rpc(client, |mut c| async move { c.commit(r).await })],
                });
                sent.push(tiles);
            }
            let results = self.call(calls)?;
            self.traffic.seconds.commit += started.elapsed().as_secs_f64();
            let failed = Self::failed(&results);
            // the committed workers' changes are kept; a failed worker's uncommitted tiles
            // are reloaded from the (old) map, stepped and committed again, its committed
            // ones from the old map plus the changes committed so far
            for ((_, r), tiles) in results.into_iter().zip(sent) {
                let Ok(replies) = r else { continue };
                for r in replies {
                    let c = r.changes.unwrap_or_default();
                    self.traffic.reply_bytes += c.cells.len() as u64 * 9;
                    self.commit_changes
                        .extend(c.cells.into_iter().zip(c.classes));
                }
                for t in tiles {
                    self.committed[t as usize] = true;
                }
            }
            if failed.is_empty() {
                break;
            }
            self.recover(&failed, map)?;
        }
        // Workers applied their own core changes; the others learn them with the next
        // Propose (halo changes). Sorted so that nothing depends on reply order.
        changed.append(&mut self.commit_changes);
        changed.sort_unstable();
        self.pending = changed.clone();
        self.pending_halo = self.halo.per_tile(&self.pending);
        Ok(())
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
