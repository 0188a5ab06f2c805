//! The CA over gRPC workers: a [`Backend`] whose tiles live on remote workers. Every call
//! has a deadline; a worker that fails or times out is dropped, its tiles are re-sent
//! (static layers plus the class window from the coordinator's map) to the surviving
//! workers, and the unfinished phase is re-run for them. A step is a pure function of
//! its inputs, so the result is the same bits as without the failure.
//!
//! A lost worker's address is health-checked in the background every few seconds; a
//! worker that answers again (restarted, or reachable again) is re-admitted at the start
//! of the next iteration: its stale tiles of the run are dropped, its home tiles
//! (tile i of n workers lives on worker i mod n) are re-loaded on it from the
//! coordinator's map and leave their interim owners.

use std::future::Future;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use flus_proto::v1::{
    file_tile_chunk, tile_chunk, CarbonRequest, CellChanges, CommitRequest, DropTilesRequest,
    ExactKeysRequest, FileTileChunk, LayerChunk, LayerFile, LayerInfo, LayerKind, ProposeRequest,
    StepParams as PStep, SuitabilityRequest, Threshold, TileChunk, TileFiles, TileHeader, TileSpec,
};
use flus_shared::ca::{
    self, Backend, CaParams, KeyRequest, MapView, Proposal, StepSummary, Thresholds, TileRect,
    BUCKETS,
};

use super::pool::WorkerConn;

/// Bytes per LoadTile chunk (well under the message limit).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Static layers of the whole grid that tiles are cut from.
pub struct StaticLayers<'a> {
    /// Restricted cells.
    pub restricted: &'a [bool],
    /// Drivers (full grid each), for ANN inference on the workers.
    pub drivers: Vec<&'a [f32]>,
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
}

/// The remote backend of one CA run.
pub struct Remote<'a> {
    rt: tokio::runtime::Handle,
    workers: Vec<WorkerSlot>,
    rects: Vec<TileRect>,
    owner: Vec<usize>,
    run_id: String,
    deadline: Duration,
    k: usize,
    r: usize,
    height: usize,
    layers: StaticLayers<'a>,
    network: Option<Vec<u8>>,
    last: Option<(CaParams, ca::StepParams)>,
    pending: Vec<(u64, u8)>,
    stepped: Vec<bool>,
    counted: Vec<bool>,
    committed: Vec<bool>,
    loaded: bool,
    files: Option<Vec<LayerFile>>,
    probe_every: Option<Duration>,
    rejoined_tx: mpsc::Sender<(usize, WorkerConn)>,
    rejoined_rx: mpsc::Receiver<(usize, WorkerConn)>,
    /// What went over the wire.
    pub traffic: Traffic,
}

/// A tonic request that carries the deadline (the worker sees it as grpc-timeout).
fn request<M>(deadline: Duration, msg: M) -> tonic::Request<M> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(deadline);
    r
}

impl<'a> Remote<'a> {
    /// Assigns `rects` round-robin to `workers` (tile i to worker i mod n).
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
        let n = workers.len().max(1);
        let owner = (0..rects.len()).map(|i| i % n).collect();
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
            run_id,
            deadline,
            k,
            r,
            height,
            layers,
            network: None,
            last: None,
            pending: Vec::new(),
            stepped: Vec::new(),
            counted: Vec::new(),
            committed: Vec::new(),
            loaded: false,
            files: None,
            probe_every: None,
            rejoined_tx,
            rejoined_rx,
            traffic: Traffic {
                per_worker,
                ..Default::default()
            },
        }
    }

    /// Health-checks lost workers' addresses every `every` (None: never) and re-admits
    /// those that answer again.
    pub fn set_rejoin_probe(&mut self, every: Option<Duration>) {
        self.probe_every = every.filter(|d| !d.is_zero());
    }

    /// Runs one call to worker `w` within the deadline; a failure is logged with its
    /// reason and the worker's address.
    fn call<T>(
        &mut self,
        w: usize,
        what: &str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ()> {
        let deadline = self.deadline;
        let started = Instant::now();
        // the timer must be made inside the runtime
        let res = self
            .rt
            .block_on(async move { tokio::time::timeout(deadline, fut).await });
        let addr = &self.workers[w].conn.addr;
        match res {
            Ok(Ok(r)) => {
                let s = &mut self.traffic.per_worker[w];
                s.calls += 1;
                s.calls_since_rejoin += 1;
                Ok(r.into_inner())
            }
            // tonic enforces the deadline too (grpc-timeout): name it the same way
            Err(_) | Ok(Err(_)) if started.elapsed() >= deadline => {
                tracing::warn!(worker = %addr, "{what}: no answer within the deadline of {deadline:?}");
                Err(())
            }
            Ok(Err(e)) => {
                tracing::warn!(worker = %addr, "{what} failed: {:?}: {}", e.code(), e.message());
                Err(())
            }
            Err(_) => {
                tracing::warn!(worker = %addr, "{what}: no answer within the deadline of {deadline:?}");
                Err(())
            }
        }
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

    /// Sets the ANN network the workers compute their suitability with (JSON of
    /// `flus_shared::ann::Network`); without one, the suitability layer is shipped.
    /// Workers read the static layers themselves from these files (paths relative to
    /// their data root) instead of receiving them; only the class window is streamed.
    pub fn set_files(&mut self, files: Vec<LayerFile>) {
        self.files = Some(files);
    }

    pub fn set_network(&mut self, network: Vec<u8>) {
        self.network = Some(network);
    }

    /// Loads every tile onto its worker from `map` (done by the first Propose).
    fn load(&mut self, map: &MapView) -> flus_shared::Result<()> {
        let all: Vec<u32> = (0..self.rects.len() as u32).collect();
        self.place(all, map)?;
        self.loaded = true;
        Ok(())
    }

    /// Loads `tiles` onto their owners from `map`. A worker that fails meanwhile is
    /// dropped, and its tiles join the ones to load (they must be stepped again).
    fn place(&mut self, mut tiles: Vec<u32>, map: &MapView) -> flus_shared::Result<()> {
        loop {
            match self.load_tiles(&tiles, map) {
                Ok(_) => return Ok(()),
                Err(w) => {
                    for t in self.tiles_of(w) {
                        if let Some(s) = self.stepped.get_mut(t as usize) {
                            *s = false;
                        }
                        if !tiles.contains(&t) {
                            self.traffic.tiles_moved += 1;
                            tiles.push(t);
                        }
                    }
                    self.lose(w)?;
                }
            }
        }
    }

    /// Marks worker `w` dead and gives its tiles to the others (round-robin over the
    /// survivors in index order).
    fn lose(&mut self, w: usize) -> flus_shared::Result<()> {
        if self.workers[w].alive {
            tracing::warn!(worker = %self.workers[w].conn.addr, "worker lost; moving its tiles");
            self.workers[w].alive = false;
            self.traffic.workers_lost += 1;
            self.traffic.per_worker[w].lost += 1;
            self.probe(w);
        }
        let alive = self.alive();
        if alive.is_empty() {
            let iteration = self.last.as_ref().map(|l| l.1.iteration);
            return Err(flus_shared::Error::Data(format!(
                "all workers lost ({} of {}){}: the run stops; resume it with `flus run --resume` once workers are back",
                self.workers.len(),
                self.workers.len(),
                iteration.map(|t| format!(" at iteration {t}")).unwrap_or_default(),
            )));
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
            let mut client = self.workers[w].conn.client.clone();
            let req = DropTilesRequest {
                run_id: self.run_id.clone(),
                tile_ids: vec![],
            };
            let req = request(self.deadline, req);
            if self.call(w, "DropTiles", client.drop_tiles(req)).is_err() {
                self.probe(w);
                continue;
            }
            self.workers[w].alive = true;
            self.traffic.workers_rejoined += 1;
            let stats = &mut self.traffic.per_worker[w];
            stats.rejoined += 1;
            stats.calls_since_rejoin = 0;
            let n = self.workers.len();
            let home: Vec<u32> = (0..self.rects.len())
                .filter(|&t| t % n == w && self.owner[t] != w)
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
                let mut client = self.workers[o].conn.client.clone();
                let req = request(
                    self.deadline,
                    DropTilesRequest {
                        run_id: self.run_id.clone(),
                        tile_ids: ids,
                    },
                );
                if self.call(o, "DropTiles", client.drop_tiles(req)).is_err() {
                    self.recover(o, map)?;
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
    fn tile_messages(&self, t: usize, map: &MapView) -> Vec<TileChunk> {
        let rc = self.rects[t];
        let (w, r) = (rc.grid_width, self.r);
        let mut layers: Vec<(LayerKind, String, Vec<u8>)> = Vec::new();
        // class window with halo, from the padded map (padding is INVALID)
        let ww = rc.width + 2 * r;
        let mut win = Vec::with_capacity(ww * (rc.height + 2 * r));
        for y in 0..rc.height + 2 * r {
            let start = (rc.y0 + y) * map.stride + rc.x0;
            win.extend_from_slice(&map.padded[start..start + ww]);
        }
        layers.push((LayerKind::Classes, "classes".into(), win));
        if self.files.is_some() {
            return Self::chunked(&self.run_id, self.spec(t), layers);
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
            for (n, d) in self.layers.drivers.iter().enumerate() {
                layers.push((
                    LayerKind::Driver,
                    format!("driver{n}"),
                    core(&mut |i, o| o.extend_from_slice(&d[i].to_le_bytes())),
                ));
            }
        }
        if let Some(z) = self.layers.zones {
            layers.push((
                LayerKind::Zones,
                "zones".into(),
                core(&mut |i, o| o.extend_from_slice(&z[i].to_le_bytes())),
            ));
        }
        Self::chunked(&self.run_id, self.spec(t), layers)
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

    /// Loads `tiles` on their owners (and computes their suitability when a network is
    /// set); on failure returns the failed worker's index.
    fn load_tiles(&mut self, tiles: &[u32], map: &MapView) -> Result<Vec<f32>, usize> {
        let mut max = vec![0f32; self.k];
        for w in self.alive() {
            let mine: Vec<u32> = tiles
                .iter()
                .copied()
                .filter(|&t| self.owner[t as usize] == w)
                .collect();
            if mine.is_empty() {
                continue;
            }
            for &t in &mine {
                let msgs = self.tile_messages(t as usize, map);
                let bytes: u64 = msgs
                    .iter()
                    .map(|m| match &m.part {
                        Some(tile_chunk::Part::Chunk(c)) => c.data.len() as u64,
                        _ => 0,
                    })
                    .sum();
                let mut client = self.workers[w].conn.client.clone();
                match self.files.clone() {
                    None => {
                        let req = request(self.deadline, tokio_stream::iter(msgs));
                        self.call(w, &format!("LoadTile {t}"), client.load_tile(req))
                            .map_err(|_| w)?;
                    }
                    Some(layers) => {
                        // the header, the files of the static layers, then the class chunks
                        let mut v: Vec<FileTileChunk> = Vec::with_capacity(msgs.len() + 1);
                        for (i, m) in msgs.into_iter().enumerate() {
                            let part = match m.part {
                                Some(tile_chunk::Part::Header(h)) => {
                                    file_tile_chunk::Part::Header(h)
                                }
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
                        self.call(
                            w,
                            &format!("LoadTileFiles {t}"),
                            client.load_tile_files(req),
                        )
                        .map_err(|_| w)?;
                    }
                }
                self.traffic.tile_bytes += bytes;
            }
            if let Some(net) = self.network.clone() {
                let mut client = self.workers[w].conn.client.clone();
                let req = SuitabilityRequest {
                    run_id: self.run_id.clone(),
                    tile_ids: mine.clone(),
                    network: net,
                };
                let req = request(self.deadline, req);
                let r = self
                    .call(w, "Suitability", client.suitability(req))
                    .map_err(|_| w)?;
                for ts in r.tiles {
                    for (m, v) in max.iter_mut().zip(ts.max) {
                        *m = m.max(v);
                    }
                }
            }
        }
        Ok(max)
    }

    fn window_contains(&self, t: usize, cell: u64) -> bool {
        let rc = &self.rects[t];
        let (x, y) = (
            (cell as usize % rc.grid_width) as i64,
            (cell as usize / rc.grid_width) as i64,
        );
        let r = self.r as i64;
        x >= rc.x0 as i64 - r
            && x < (rc.x0 + rc.width) as i64 + r
            && y >= rc.y0 as i64 - r
            && y < (rc.y0 + rc.height) as i64 + r
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
        }
    }

    /// Sends Propose for `tiles` (all owned by `w`); adds the histogram into `sum` when
    /// `count` is set (tiles re-stepped after a failover are not counted twice).
    fn propose_on(
        &mut self,
        w: usize,
        tiles: Vec<u32>,
        count: bool,
        sum: &mut StepSummary,
    ) -> Result<(), ()> {
        let (params, step) = self.last.clone().ok_or(())?;
        let relevant: Vec<(u64, u8)> = self
            .pending
            .iter()
            .copied()
            .filter(|&(c, _)| tiles.iter().any(|&t| self.window_contains(t as usize, c)))
            .collect();
        self.traffic.halo_bytes += relevant.len() as u64 * 9;
        let req = ProposeRequest {
            run_id: self.run_id.clone(),
            tile_ids: tiles,
            params: Some(Self::step_message(&params, &step)),
            halo_changes: Some(CellChanges {
                cells: relevant.iter().map(|c| c.0).collect(),
                classes: relevant.iter().map(|c| c.1).collect(),
            }),
        };
        let mut client = self.workers[w].conn.client.clone();
        let req = request(self.deadline, req);
        let reply = self.call(w, "Propose", client.propose(req))?;
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
        Ok(())
    }

    /// Drops worker `w` and re-sends its tiles (from `map`) to the survivors; the moved
    /// tiles must be stepped again.
    fn recover(&mut self, w: usize, map: &MapView) -> flus_shared::Result<()> {
        let moved: Vec<u32> = self.tiles_of(w);
        self.lose(w)?;
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

    /// Steps every tile that does not hold this iteration's proposals; histograms of tiles
    /// not yet counted go into `sum`.
    fn step_all(&mut self, map: &MapView, sum: &mut StepSummary) -> flus_shared::Result<()> {
        loop {
            let mut failed = None;
            for w in self.alive() {
                for count in [true, false] {
                    let tiles: Vec<u32> = self
                        .tiles_of(w)
                        .into_iter()
                        .filter(|&t| !self.stepped[t as usize] && self.counted[t as usize] != count)
                        .collect();
                    if tiles.is_empty() {
                        continue;
                    }
                    if self.propose_on(w, tiles.clone(), count, sum).is_err() {
                        failed = Some(w);
                        break;
                    }
                    for t in tiles {
                        self.stepped[t as usize] = true;
                        self.counted[t as usize] = true;
                    }
                }
                if failed.is_some() {
                    break;
                }
            }
            match failed {
                None => return Ok(()),
                Some(w) => self.recover(w, map)?,
            }
        }
    }

    /// Cell counts per (zone, class) of the tiles' current maps, summed over workers.
    pub fn carbon_counts(
        &mut self,
        map: &MapView,
    ) -> flus_shared::Result<std::collections::BTreeMap<i64, Vec<u64>>> {
        loop {
            let mut total: std::collections::BTreeMap<i64, Vec<u64>> = Default::default();
            let mut failed = None;
            for w in self.alive() {
                let tiles = self.tiles_of(w);
                if tiles.is_empty() {
                    continue;
                }
                let mut client = self.workers[w].conn.client.clone();
                let req = CarbonRequest {
                    run_id: self.run_id.clone(),
                    tile_ids: tiles,
                };
                let req = request(self.deadline, req);
                match self.call(w, "CarbonSums", client.carbon_sums(req)) {
                    Ok(r) => {
                        let k = r.classes as usize;
                        for (zi, z) in r.zones.iter().enumerate() {
                            let e = total.entry(*z).or_insert_with(|| vec![0; k]);
                            for c in 0..k {
                                e[c] += r.counts[zi * k + c];
                            }
                        }
                    }
                    Err(()) => {
                        failed = Some(w);
                        break;
                    }
                }
            }
            match failed {
                None => return Ok(total),
                Some(w) => self.recover(w, map)?,
            }
        }
    }

    /// Drops the run's tiles from every live worker.
    pub fn release(&mut self) {
        for w in self.alive() {
            let mut client = self.workers[w].conn.client.clone();
            let req = DropTilesRequest {
                run_id: self.run_id.clone(),
                tile_ids: vec![],
            };
            let req = request(self.deadline, req);
            let _ = self.call(w, "DropTiles", client.drop_tiles(req));
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
            self.load(map)?;
        }
        self.last = Some((params.clone(), step.clone()));
        // between iterations: lost workers that answer again take their tiles back
        self.readmit(map)?;
        sum.histogram.clear();
        sum.histogram.resize(BUCKETS * self.k * self.k, 0);
        self.stepped = vec![false; self.rects.len()];
        self.counted = vec![false; self.rects.len()];
        self.committed = vec![false; self.rects.len()];
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
        'retry: loop {
            self.step_all(map, &mut scratch)?;
            out.clear();
            for w in self.alive() {
                let tiles = self.tiles_of(w);
                if tiles.is_empty() {
                    continue;
                }
                let mut client = self.workers[w].conn.client.clone();
                let r = ExactKeysRequest {
                    run_id: self.run_id.clone(),
                    tile_ids: tiles,
                    iteration,
                    bucket: req.bucket as u32,
                    classes: classes.clone(),
                };
                let r = request(self.deadline, r);
                match self.call(w, "ExactKeys", client.exact_keys(r)) {
                    Ok(r) => {
                        let ps = r.proposals;
                        self.traffic.reply_bytes += ps.len() as u64 * 20;
                        out.extend(ps.into_iter().map(|p| Proposal {
                            cell: p.cell,
                            key: p.key,
                            from: p.from as u8,
                            to: p.to as u8,
                        }));
                    }
                    Err(()) => {
                        self.recover(w, map)?;
                        continue 'retry;
                    }
                }
            }
            return Ok(());
        }
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
        let (t_in, t_out) = (th(&thresholds.t_in), th(&thresholds.t_out));
        changed.clear();
        let mut scratch = StepSummary::default();
        loop {
            // tiles moved after a failure are stepped again (not counted again)
            self.step_all(map, &mut scratch)?;
            let mut failed = None;
            for w in self.alive() {
                let tiles: Vec<u32> = self
                    .tiles_of(w)
                    .into_iter()
                    .filter(|&t| !self.committed[t as usize])
                    .collect();
                if tiles.is_empty() {
                    continue;
                }
                let mut client = self.workers[w].conn.client.clone();
                let r = CommitRequest {
                    run_id: self.run_id.clone(),
                    tile_ids: tiles.clone(),
                    iteration,
                    t_in: t_in.clone(),
                    t_out: t_out.clone(),
                };
                let r = request(self.deadline, r);
                match self.call(w, "Commit", client.commit(r)) {
                    Ok(r) => {
                        let c = r.changes.unwrap_or_default();
                        self.traffic.reply_bytes += c.cells.len() as u64 * 9;
                        changed.extend(c.cells.into_iter().zip(c.classes));
                        for t in tiles {
                            self.committed[t as usize] = true;
                        }
                    }
                    Err(()) => {
                        failed = Some(w);
                        break;
                    }
                }
            }
            match failed {
                None => break,
                Some(w) => self.recover(w, map)?,
            }
        }
        // Workers applied their own core changes; the others learn them with the next
        // Propose (halo changes). Sorted so that nothing depends on reply order.
        changed.sort_unstable();
        self.pending = changed.clone();
        Ok(())
    }
}
