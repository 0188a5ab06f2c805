//! The CA over gRPC workers: a [`Backend`] whose tiles live on remote workers. Every call
//! has a deadline; a worker that fails or times out is dropped, its tiles are re-sent
//! (static layers plus the class window from the coordinator's map) to the surviving
//! workers, and the unfinished phase is re-run for them. A step is a pure function of
//! its inputs, so the result is the same bits as without the failure.

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
    /// What went over the wire.
    pub traffic: Traffic,
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
        Self {
            rt,
            workers: workers
                .into_iter()
                .map(|conn| WorkerSlot { conn, alive: true })
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
            traffic: Traffic::default(),
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
    pub fn set_network(&mut self, network: Vec<u8>) {
        self.network = Some(network);
    }

    /// Workers read the static layers themselves from these files (paths relative to
    /// their data root) instead of receiving them; only the class window is streamed.
    pub fn set_files(&mut self, files: Vec<LayerFile>) {
        self.files = Some(files);
    }

    /// Loads every tile onto its worker from `map` (done by the first Propose).
    fn load(&mut self, map: &MapView) -> flus_shared::Result<()> {
        let all: Vec<u32> = (0..self.rects.len() as u32).collect();
        loop {
            match self.load_tiles(&all, map) {
                Ok(_) => {
                    self.loaded = true;
                    return Ok(());
                }
                Err(w) => self.lose(w)?,
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
        }
        let alive = self.alive();
        if alive.is_empty() {
            return Err(flus_shared::Error::Data(
                "every worker is lost; the run stops (resume it with `flus run --resume` once workers are back)".into(),
            ));
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
    /// set, on every worker at once); on failure returns the failed worker's index.
    fn load_tiles(&mut self, tiles: &[u32], map: &MapView) -> Result<Vec<f32>, usize> {
        let mut max = vec![0f32; self.k];
        let mut jobs = Vec::new();
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
                let deadline = self.deadline;
                let files = self.files.clone();
                let res = self.rt.block_on(async move {
                    match files {
                        None => {
                            let mut req = tonic::Request::new(tokio_stream::iter(msgs));
                            req.set_timeout(deadline);
                            tokio::time::timeout(deadline, client.load_tile(req)).await
                        }
                        Some(layers) => {
                            let mut v: Vec<FileTileChunk> = Vec::with_capacity(msgs.len() + 1);
                            for (i, m) in msgs.into_iter().enumerate() {
                                let part = match m.part {
                                    Some(tile_chunk::Part::Header(h)) => {
                                        file_tile_chunk::Part::Header(h)
                                    }
                                    Some(tile_chunk::Part::Chunk(c)) => {
                                        file_tile_chunk::Part::Chunk(c)
                                    }
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
                            let mut req = tonic::Request::new(tokio_stream::iter(v));
                            req.set_timeout(deadline);
                            tokio::time::timeout(deadline, client.load_tile_files(req)).await
                        }
                    }
                });
                match res {
                    Ok(Ok(_)) => self.traffic.tile_bytes += bytes,
                    Ok(Err(e))
                        if e.code() == tonic::Code::InvalidArgument
                            || e.code() == tonic::Code::ResourceExhausted
                            || e.code() == tonic::Code::PermissionDenied
                            || e.code() == tonic::Code::FailedPrecondition
                            || e.code() == tonic::Code::NotFound =>
                    {
                        tracing::error!(worker = %self.workers[w].conn.addr, "tile {t} refused: {}", e.message());
                        return Err(w);
                    }
                    _ => return Err(w),
                }
            }
            if let Some(net) = self.network.clone() {
                let mut client = self.workers[w].conn.client.clone();
                let req = SuitabilityRequest {
                    run_id: self.run_id.clone(),
                    tile_ids: mine.clone(),
                    network: net,
                };
                let deadline = self.deadline;
                jobs.push((
                    w,
                    self.rt.spawn(async move {
                        let mut req = tonic::Request::new(req);
                        req.set_timeout(deadline);
                        tokio::time::timeout(deadline, client.suitability(req)).await
                    }),
                ));
            }
        }
        let mut failed = None;
        for (w, job) in jobs {
            match self.rt.block_on(job) {
                Ok(Ok(Ok(r))) => {
                    for ts in r.into_inner().tiles {
                        for (m, v) in max.iter_mut().zip(ts.max) {
                            *m = m.max(v);
                        }
                    }
                }
                _ => {
                    failed.get_or_insert(w);
                }
            }
        }
        match failed {
            Some(w) => Err(w),
            None => Ok(max),
        }
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
        }
    }

    /// The Propose request of `tiles` (the halo changes that fall in their windows).
    fn propose_request(&mut self, tiles: Vec<u32>) -> flus_shared::Result<ProposeRequest> {
        let (params, step) = self
            .last
            .clone()
            .ok_or_else(|| flus_shared::Error::Data("Propose before any step".into()))?;
        let relevant: Vec<(u64, u8)> = self
            .pending
            .iter()
            .copied()
            .filter(|&(c, _)| tiles.iter().any(|&t| self.window_contains(t as usize, c)))
            .collect();
        self.traffic.halo_bytes += relevant.len() as u64 * 9;
        Ok(ProposeRequest {
            run_id: self.run_id.clone(),
            tile_ids: tiles,
            params: Some(Self::step_message(&params, &step)),
            halo_changes: Some(CellChanges {
                cells: relevant.iter().map(|c| c.0).collect(),
                classes: relevant.iter().map(|c| c.1).collect(),
            }),
        })
    }

    /// Adds a Propose reply's histogram into `sum`.
    fn add_reply(&mut self, reply: flus_proto::v1::ProposeReply, sum: &mut StepSummary) {
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

    /// Drops worker `w` and re-sends its tiles (from `map`) to the survivors; the moved
    /// tiles must be stepped again.
    fn recover(&mut self, w: usize, map: &MapView) -> flus_shared::Result<()> {
        let moved: Vec<u32> = self.tiles_of(w);
        self.lose(w)?;
        self.traffic.tiles_moved += moved.len() as u64;
        for &t in &moved {
            self.stepped[t as usize] = false;
        }
        let started = Instant::now();
        loop {
            match self.load_tiles(&moved, map) {
                Ok(_) => break,
                Err(w2) => {
                    for t in self.tiles_of(w2) {
                        self.stepped[t as usize] = false;
                    }
                    self.lose(w2)?
                }
            }
        }
        tracing::info!(
            tiles = moved.len(),
            secs = started.elapsed().as_secs_f64(),
            "tiles re-sent"
        );
        Ok(())
    }

    /// Steps every tile that does not hold this iteration's proposals, on every worker at
    /// once; histograms of tiles not yet counted go into `sum` (integer sums: the order
    /// of the replies does not matter).
    fn step_all(&mut self, map: &MapView, sum: &mut StepSummary) -> flus_shared::Result<()> {
        loop {
            let mut jobs = Vec::new();
            for w in self.alive() {
                let mut meta = Vec::new();
                let mut bodies = Vec::new();
                for count in [true, false] {
                    let tiles: Vec<u32> = self
                        .tiles_of(w)
                        .into_iter()
                        .filter(|&t| !self.stepped[t as usize] && self.counted[t as usize] != count)
                        .collect();
                    if tiles.is_empty() {
                        continue;
                    }
                    bodies.push(self.propose_request(tiles.clone())?);
                    meta.push((tiles, count));
                }
                if bodies.is_empty() {
                    continue;
                }
                let mut client = self.workers[w].conn.client.clone();
                let deadline = self.deadline;
                let job = self.rt.spawn(async move {
                    let mut out = Vec::new();
                    for body in bodies {
                        let mut req = tonic::Request::new(body);
                        req.set_timeout(deadline);
                        match tokio::time::timeout(deadline, client.propose(req)).await {
                            Ok(Ok(r)) => out.push(r.into_inner()),
                            _ => break,
                        }
                    }
                    out
                });
                jobs.push((w, meta, job));
            }
            let mut failed = None;
            for (w, meta, job) in jobs {
                let replies = self.rt.block_on(job).unwrap_or_default();
                if replies.len() < meta.len() {
                    failed.get_or_insert(w);
                }
                for ((tiles, count), reply) in meta.into_iter().zip(replies) {
                    if count {
                        self.add_reply(reply, sum);
                    }
                    for t in tiles {
                        self.stepped[t as usize] = true;
                        self.counted[t as usize] = true;
                    }
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
                let deadline = self.deadline;
                let res = self.rt.block_on(async move {
                    let mut req = tonic::Request::new(req);
                    req.set_timeout(deadline);
                    tokio::time::timeout(deadline, client.carbon_sums(req)).await
                });
                match res {
                    Ok(Ok(r)) => {
                        let r = r.into_inner();
                        let k = r.classes as usize;
                        for (zi, z) in r.zones.iter().enumerate() {
                            let e = total.entry(*z).or_insert_with(|| vec![0; k]);
                            for c in 0..k {
                                e[c] += r.counts[zi * k + c];
                            }
                        }
                    }
                    _ => {
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
            let _ = self.rt.block_on(async move {
                tokio::time::timeout(Duration::from_secs(10), client.drop_tiles(req)).await
            });
        }
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
                let deadline = self.deadline;
                let res = self.rt.block_on(async move {
                    let mut r = tonic::Request::new(r);
                    r.set_timeout(deadline);
                    tokio::time::timeout(deadline, client.exact_keys(r)).await
                });
                match res {
                    Ok(Ok(r)) => {
                        let ps = r.into_inner().proposals;
                        self.traffic.reply_bytes += ps.len() as u64 * 20;
                        out.extend(ps.into_iter().map(|p| Proposal {
                            cell: p.cell,
                            key: p.key,
                            from: p.from as u8,
                            to: p.to as u8,
                        }));
                    }
                    _ => {
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
            let mut jobs = Vec::new();
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
                let deadline = self.deadline;
                let job = self.rt.spawn(async move {
                    let mut r = tonic::Request::new(r);
                    r.set_timeout(deadline);
                    tokio::time::timeout(deadline, client.commit(r)).await
                });
                jobs.push((w, tiles, job));
            }
            let mut failed = None;
            for (w, tiles, job) in jobs {
                match self.rt.block_on(job) {
                    Ok(Ok(Ok(r))) => {
                        let c = r.into_inner().changes.unwrap_or_default();
                        self.traffic.reply_bytes += c.cells.len() as u64 * 9;
                        changed.extend(c.cells.into_iter().zip(c.classes));
                        for t in tiles {
                            self.committed[t as usize] = true;
                        }
                    }
                    _ => {
                        failed.get_or_insert(w);
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
