//! The `flus.v1.Worker` service: keeps tiles, runs ANN inference and CA steps on them,
//! returns histograms, exact keys, committed changes and carbon counts. CPU work runs on
//! the blocking pool with rayon over tiles; every reply lists tiles in id order.

use std::sync::{Arc, Mutex};

use flus_proto::v1::worker_server::Worker;
use flus_proto::v1::*;
use flus_shared::ca::{self, CaParams, ClassWindow, Thresholds, TileStatic, BUCKETS};
use rayon::prelude::*;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::data_root::DataRoot;
use crate::tiles::{Tile, TileBuilder, TileStore};

/// Limits of what a worker accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest tile (all layers), bytes.
    pub max_tile_bytes: u64,
    /// Most tiles held at once.
    pub max_tiles: usize,
}

/// The Worker service.
#[derive(Clone)]
pub struct WorkerService {
    store: Arc<Mutex<TileStore>>,
    limits: Limits,
    shutdown: Arc<tokio::sync::Notify>,
    root: Option<DataRoot>,
}

impl WorkerService {
    /// A service with `limits`, reading files only under `root` (none: no file reads);
    /// `shutdown` is notified by the Shutdown call.
    pub fn new(limits: Limits, shutdown: Arc<tokio::sync::Notify>, root: Option<DataRoot>) -> Self {
        Self {
            store: Arc::new(Mutex::new(TileStore::default())),
            limits,
            shutdown,
            root,
        }
    }

    /// Stores a built tile (refused beyond the tile limit).
    #[allow(clippy::result_large_err)]
    fn insert(&self, run_id: String, tile: Tile, bytes: u64) -> Result<TileLoaded, Status> {
        let id = tile.spec.tile_id;
        let mut store = self
            .store
            .lock()
            .map_err(|_| Status::internal("tile store poisoned"))?;
        let replacing = store.runs.get(&run_id).is_some_and(|r| r.contains_key(&id));
        if !replacing && store.count() >= self.limits.max_tiles {
            return Err(Status::resource_exhausted(format!(
                "this worker holds {} tiles, its limit",
                self.limits.max_tiles
            )));
        }
        store.runs.entry(run_id).or_default().insert(id, tile);
        tracing::debug!(tile = id, bytes, "tile loaded");
        Ok(TileLoaded { tile_id: id, bytes })
    }

    /// The tile store (shared with the health service).
    pub fn store(&self) -> Arc<Mutex<TileStore>> {
        self.store.clone()
    }

    /// Receives one tile from its chunks (header first) and stores it: the LoadTile
    /// handler without the network.
    pub async fn receive_tile<S>(&self, mut stream: S) -> Result<TileLoaded, Status>
    where
        S: tokio_stream::Stream<Item = Result<TileChunk, Status>> + Unpin,
    {
        let mut builder: Option<TileBuilder> = None;
        let mut bytes = 0u64;
        while let Some(msg) = stream.next().await {
            let msg = msg?;
            match msg.part {
                Some(tile_chunk::Part::Header(h)) => {
                    if builder.is_some() {
                        return Err(Status::invalid_argument("two tile headers in one stream"));
                    }
                    builder = Some(TileBuilder::new(h, self.limits.max_tile_bytes)?);
                }
                Some(tile_chunk::Part::Chunk(c)) => {
                    bytes += c.data.len() as u64;
                    builder
                        .as_mut()
                        .ok_or_else(|| Status::invalid_argument("tile data before the header"))?
                        .add(c)?;
                }
                None => return Err(Status::invalid_argument("empty tile message")),
            }
        }
        let (run_id, tile) = builder
            .ok_or_else(|| Status::invalid_argument("no tile header"))?
            .build(None)?;
        self.insert(run_id, tile, bytes)
    }

    /// Runs `f` over the requested tiles of `run_id` on the blocking pool.
    async fn with_tiles<T, F>(&self, run_id: String, ids: Vec<u32>, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<&mut Tile>) -> Result<T, Status> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store
                .lock()
                .map_err(|_| Status::internal("tile store poisoned"))?;
            let run = guard.runs.get_mut(&run_id).ok_or_else(|| {
                Status::failed_precondition(format!("no tiles of run {run_id:?} here"))
            })?;
            let mut tiles: Vec<&mut Tile> = Vec::with_capacity(ids.len());
            // BTreeMap iteration is in id order; keep the requested subset
            let mut wanted: Vec<u32> = ids.clone();
            wanted.sort_unstable();
            wanted.dedup();
            for (id, t) in run.iter_mut() {
                if wanted.binary_search(id).is_ok() {
                    tiles.push(t);
                }
            }
            if tiles.len() != wanted.len() {
                return Err(Status::failed_precondition(format!(
                    "run {run_id:?}: asked for {} tiles, {} are here",
                    wanted.len(),
                    tiles.len()
                )));
            }
            f(&mut tiles)
        })
        .await
        .map_err(|e| Status::internal(format!("worker task failed: {e}")))?
    }
}

#[allow(clippy::result_large_err)]
fn ca_params(p: &StepParams, k: usize) -> Result<(CaParams, ca::StepParams), Status> {
    if p.weights.len() != k
        || p.cost.len() != k * k
        || p.inertia.len() != k
        || p.closed_in.len() != k
        || p.closed_out.len() != k
        || p.closed_pairs.len() != k * k
    {
        return Err(Status::invalid_argument(format!(
            "step parameters for {} classes do not fit tiles of {k} classes",
            p.weights.len()
        )));
    }
    let cost: Vec<Vec<f64>> = p.cost.chunks(k).map(|r| r.to_vec()).collect();
    let mut params = CaParams::new(p.weights.clone(), cost, p.seed);
    params.neighbourhood = p.neighbourhood as usize;
    params.stream = p.stream;
    params.patches = p.patches.as_ref().map(|q| ca::Patches {
        threshold: q.threshold,
        decay: q.decay,
        seeds: q.seeds,
    });
    params
        .validate()
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok((
        params,
        ca::StepParams {
            iteration: p.iteration,
            inertia: p.inertia.clone(),
            closed_in: p.closed_in.clone(),
            closed_out: p.closed_out.clone(),
            closed_pairs: p.closed_pairs.clone(),
            patch_level: p.patch_level,
            transitions: p.transitions,
        },
    ))
}

fn changes_of(c: &Option<CellChanges>) -> Vec<(u64, u8)> {
    match c {
        Some(c) => c
            .cells
            .iter()
            .copied()
            .zip(c.classes.iter().copied())
            .collect(),
        None => Vec::new(),
    }
}

#[tonic::async_trait]
impl Worker for WorkerService {
    async fn load_tile(
        &self,
        req: Request<Streaming<TileChunk>>,
    ) -> Result<Response<TileLoaded>, Status> {
        Ok(Response::new(self.receive_tile(req.into_inner()).await?))
    }

    async fn load_tile_files(
        &self,
        req: Request<Streaming<FileTileChunk>>,
    ) -> Result<Response<TileLoaded>, Status> {
        let Some(root) = self.root.clone() else {
            return Err(Status::failed_precondition(
                "this worker has no --data-root: it reads no files; stream the tile's layers instead",
            ));
        };
        let mut stream = req.into_inner();
        let mut builder: Option<TileBuilder> = None;
        let mut bytes = 0u64;
        while let Some(msg) = stream.next().await {
            let msg = msg?;
            let b = || Status::invalid_argument("tile data before the header");
            match msg.part {
                Some(file_tile_chunk::Part::Header(h)) => {
                    if builder.is_some() {
                        return Err(Status::invalid_argument("two tile headers in one stream"));
                    }
                    builder = Some(TileBuilder::new(h, self.limits.max_tile_bytes)?);
                }
                Some(file_tile_chunk::Part::Files(f)) => {
                    // every path is checked as soon as it arrives
                    for l in &f.layers {
                        root.resolve(&l.path)?;
                    }
                    builder
                        .as_mut()
                        .ok_or_else(b)?
                        .add_files(f.layers, self.limits.max_tile_bytes)?;
                }
                Some(file_tile_chunk::Part::Chunk(c)) => {
                    bytes += c.data.len() as u64;
                    builder.as_mut().ok_or_else(b)?.add(c)?;
                }
                None => return Err(Status::invalid_argument("empty tile message")),
            }
        }
        let builder = builder.ok_or_else(|| Status::invalid_argument("no tile header"))?;
        let (run_id, tile) = tokio::task::spawn_blocking(move || builder.build(Some(&root)))
            .await
            .map_err(|e| Status::internal(format!("worker task failed: {e}")))??;
        Ok(Response::new(self.insert(run_id, tile, bytes)?))
    }

    async fn stats(&self, _req: Request<StatsRequest>) -> Result<Response<StatsReply>, Status> {
        let tiles = self
            .store
            .lock()
            .map_err(|_| Status::internal("tile store poisoned"))?
            .count() as u32;
        Ok(Response::new(StatsReply {
            peak_rss_bytes: flus_shared::memory::peak_rss_bytes().unwrap_or(0),
            rss_bytes: flus_shared::memory::rss_bytes().unwrap_or(0),
            tiles,
        }))
    }

    async fn drop_tiles(
        &self,
        req: Request<DropTilesRequest>,
    ) -> Result<Response<DropTilesReply>, Status> {
        let r = req.into_inner();
        let mut store = self
            .store
            .lock()
            .map_err(|_| Status::internal("tile store poisoned"))?;
        let mut dropped = 0u32;
        if r.tile_ids.is_empty() {
            if let Some(run) = store.runs.remove(&r.run_id) {
                dropped = run.len() as u32;
            }
        } else if let Some(run) = store.runs.get_mut(&r.run_id) {
            for id in &r.tile_ids {
                dropped += run.remove(id).is_some() as u32;
            }
        }
        Ok(Response::new(DropTilesReply { dropped }))
    }

    async fn suitability(
        &self,
        req: Request<SuitabilityRequest>,
    ) -> Result<Response<SuitabilityReply>, Status> {
        let r = req.into_inner();
        let net: flus_shared::ann::Network = serde_json::from_slice(&r.network)
            .map_err(|e| Status::invalid_argument(format!("network: {e}")))?;
        // One tile after the other, its cells in parallel: each tile drops its driver
        // layers as soon as its suitability is computed, so the worker never holds the
        // drivers and the suitability of all its tiles at once.
        let tiles = self
            .with_tiles(r.run_id, r.tile_ids, move |tiles| {
                if let Some(t) = tiles.iter().find(|t| t.drivers_dropped) {
                    return Err(Status::failed_precondition(format!(
                        "tile {}: its suitability was already computed and its driver layers \
                         dropped; load the tile again to compute its suitability anew",
                        t.spec.tile_id
                    )));
                }
                let mut done = Vec::with_capacity(tiles.len());
                for t in tiles.iter_mut() {
                    let k = t.spec.classes as usize;
                    let valid: Vec<bool> = t.core_classes(0)?.map(|c| (c as usize) < k).collect();
                    // straight to fixed point: the f32 suitability of the tile is never held
                    let (fixed, max) = flus_shared::ann::suitability_fixed(
                        &t.drivers,
                        &valid,
                        &t.restricted,
                        &net,
                    )
                    .map_err(|e| {
                        Status::invalid_argument(format!("tile {}: {e}", t.spec.tile_id))
                    })?;
                    t.suitability = fixed;
                    t.drivers = Vec::new();
                    t.drivers_dropped = true;
                    done.push(TileSuitability {
                        tile_id: t.spec.tile_id,
                        max,
                    });
                }
                Ok(done)
            })
            .await?;
        Ok(Response::new(SuitabilityReply { tiles }))
    }

    async fn propose(
        &self,
        req: Request<ProposeRequest>,
    ) -> Result<Response<ProposeReply>, Status> {
        let r = req.into_inner();
        let p = r
            .params
            .ok_or_else(|| Status::invalid_argument("no step parameters"))?;
        let changes = changes_of(&r.halo_changes);
        let lane = r.lane;
        let reply = self
            .with_tiles(r.run_id, r.tile_ids, move |tiles| {
                let started = std::time::Instant::now();
                let k = tiles.first().map(|t| t.spec.classes as usize).unwrap_or(0);
                let (params, step) = ca_params(&p, k)?;
                tiles.par_iter_mut().try_for_each(|t| {
                    if t.spec.classes as usize != k || t.suitability.len() != t.core_cells() * k {
                        return Err(Status::failed_precondition(format!(
                            "tile {} has no suitability for {k} classes",
                            t.spec.tile_id
                        )));
                    }
                    // the N x N neighbourhood of every core cell must lie in the window
                    let radius = (params.neighbourhood - 1) / 2;
                    if radius > t.halo() {
                        return Err(Status::invalid_argument(format!(
                            "neighbourhood {} needs a halo of {radius} cells; tile {} was loaded with {}",
                            params.neighbourhood,
                            t.spec.tile_id,
                            t.halo()
                        )));
                    }
                    for &(cell, class) in &changes {
                        t.apply(lane, cell, class)?;
                    }
                    let rect = t.rect();
                    let stride = t.stride();
                    // the lane exists: `apply` above, or this check, refuses a missing one
                    t.lane(lane)?;
                    let Tile {
                        main,
                        lanes,
                        start,
                        restricted,
                        suitability,
                        ..
                    } = &mut **t;
                    let l = match lane {
                        0 => main,
                        l => lanes.get_mut(&l).expect("lane checked above"),
                    };
                    let window = ClassWindow {
                        data: &l.classes,
                        stride,
                    };
                    // transition mode: the run's own start map when it is not the
                    // session's (a later stage of staged years)
                    let stat = TileStatic {
                        suitability,
                        restricted,
                        stride: rect.width,
                        start_classes: if l.start.is_empty() { start } else { &l.start },
                    };
                    ca::tile_step(&params, &step, &rect, &window, &stat, &mut l.proposals);
                    l.step_iteration = Some(step.iteration);
                    Ok(())
                })?;
                let mut hist = vec![0u64; BUCKETS * k * k];
                let (mut n, mut cells) = (0u64, 0u64);
                for t in tiles.iter() {
                    let p = &t.lane(lane)?.proposals;
                    for (h, &c) in hist.iter_mut().zip(&p.histogram) {
                        *h += c as u64;
                    }
                    n += p.proposals.len() as u64;
                    cells += p.cells;
                }
                let (index, counts): (Vec<u32>, Vec<u64>) = hist
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(i, &c)| (i as u32, c))
                    .unzip();
                Ok(ProposeReply {
                    histogram: Some(KeyHistogram {
                        buckets: BUCKETS as u32,
                        index,
                        counts,
                    }),
                    proposals: n,
                    cells_visited: cells,
                    step_seconds: started.elapsed().as_secs_f64(),
                })
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn exact_keys(
        &self,
        req: Request<ExactKeysRequest>,
    ) -> Result<Response<ExactKeysReply>, Status> {
        let r = req.into_inner();
        let proposals = self
            .with_tiles(r.run_id, r.tile_ids, move |tiles| {
                let mut out = Vec::new();
                for t in tiles.iter() {
                    let l = t.lane(r.lane)?;
                    if l.step_iteration != Some(r.iteration) {
                        return Err(Status::failed_precondition(format!(
                            "tile {} has no step of iteration {} in lane {}",
                            t.spec.tile_id, r.iteration, r.lane
                        )));
                    }
                    let k = t.spec.classes as usize;
                    let mut touch = vec![false; k];
                    for &c in &r.classes {
                        if let Some(x) = touch.get_mut(c as usize) {
                            *x = true;
                        }
                    }
                    l.proposals.in_bucket(r.bucket as usize, &touch, &mut out);
                }
                Ok(out
                    .into_iter()
                    .map(|p| Proposal {
                        cell: p.cell,
                        from: p.from as u32,
                        to: p.to as u32,
                        key: p.key,
                    })
                    .collect())
            })
            .await?;
        Ok(Response::new(ExactKeysReply { proposals }))
    }

    async fn commit(&self, req: Request<CommitRequest>) -> Result<Response<CommitReply>, Status> {
        let r = req.into_inner();
        let to_key =
            |t: &flus_proto::v1::Threshold| if t.open { ca::OPEN } else { (t.key, t.cell) };
        let thresholds = Thresholds {
            t_in: r.t_in.iter().map(to_key).collect(),
            t_out: r.t_out.iter().map(to_key).collect(),
            t_pair: r.t_pair.iter().map(to_key).collect(),
        };
        let changes = self
            .with_tiles(r.run_id, r.tile_ids, move |tiles| {
                let mut all = Vec::new();
                for t in tiles.iter_mut() {
                    let k = t.spec.classes as usize;
                    if thresholds.t_in.len() != k
                        || thresholds.t_out.len() != k
                        || !(thresholds.t_pair.is_empty() || thresholds.t_pair.len() == k * k)
                    {
                        return Err(Status::invalid_argument(format!(
                            "thresholds for {} / {} classes and {} pairs do not fit tile {} of {k} classes",
                            thresholds.t_in.len(),
                            thresholds.t_out.len(),
                            thresholds.t_pair.len(),
                            t.spec.tile_id
                        )));
                    }
                    let l = t.lane(r.lane)?;
                    if l.step_iteration != Some(r.iteration) {
                        return Err(Status::failed_precondition(format!(
                            "tile {} has no step of iteration {} in lane {}",
                            t.spec.tile_id, r.iteration, r.lane
                        )));
                    }
                    let mut changed = Vec::new();
                    ca::commit(&l.proposals.proposals, &thresholds, &mut changed);
                    for &(cell, class) in &changed {
                        t.apply(r.lane, cell, class)?;
                    }
                    t.lane_mut(r.lane)?.step_iteration = None;
                    all.extend(changed);
                }
                Ok(all)
            })
            .await?;
        let (cells, classes) = changes.into_iter().unzip();
        Ok(Response::new(CommitReply {
            changes: Some(CellChanges { cells, classes }),
        }))
    }

    async fn carbon_sums(
        &self,
        req: Request<CarbonRequest>,
    ) -> Result<Response<CarbonReply>, Status> {
        let r = req.into_inner();
        let reply = self
            .with_tiles(r.run_id, r.tile_ids, move |tiles| {
                let k = tiles.first().map(|t| t.spec.classes as usize).unwrap_or(0);
                let mut by_zone: std::collections::BTreeMap<i64, Vec<u64>> = Default::default();
                for t in tiles.iter() {
                    for (i, c) in t.core_classes(r.lane)?.enumerate() {
                        if (c as usize) < k {
                            let z = t.zones.get(i).copied().unwrap_or(0) as i64;
                            by_zone.entry(z).or_insert_with(|| vec![0; k])[c as usize] += 1;
                        }
                    }
                }
                Ok(CarbonReply {
                    zones: by_zone.keys().copied().collect(),
                    classes: k as u32,
                    counts: by_zone.into_values().flatten().collect(),
                })
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn reset_classes(
        &self,
        req: Request<ResetRequest>,
    ) -> Result<Response<ResetReply>, Status> {
        let r = req.into_inner();
        let changes = changes_of(&r.changes);
        let run_start = changes_of(&r.start_changes);
        let lane = r.lane;
        let tiles = self
            .with_tiles(r.run_id, r.tile_ids, move |tiles| {
                for t in tiles.iter() {
                    let k = t.spec.classes as usize;
                    if let Some(&(cell, c)) = changes
                        .iter()
                        .chain(&run_start)
                        .find(|&&(_, c)| c as usize >= k && c != ca::INVALID)
                    {
                        return Err(Status::invalid_argument(format!(
                            "reset of tile {}: cell {cell} set to class index {c}, expected 0..{k} or {} (invalid)",
                            t.spec.tile_id,
                            ca::INVALID
                        )));
                    }
                }
                tiles.par_iter_mut().try_for_each(|t| {
                    t.reset(lane, &run_start)?;
                    for &(cell, class) in &changes {
                        t.apply(lane, cell, class)?;
                    }
                    Ok::<(), Status>(())
                })?;
                Ok(tiles.len() as u32)
            })
            .await?;
        Ok(Response::new(ResetReply { tiles }))
    }

    async fn suitability_rows(
        &self,
        req: Request<SuitabilityRowsRequest>,
    ) -> Result<Response<SuitabilityRowsReply>, Status> {
        let r = req.into_inner();
        let (id, row0, rows) = (r.tile_id, r.row0, r.rows);
        let values = self
            .with_tiles(r.run_id, vec![id], move |tiles| {
                let t = &tiles[0];
                let (w, h, k) = (
                    t.spec.width as usize,
                    t.spec.height as usize,
                    t.spec.classes as usize,
                );
                let end = row0 as u64 + rows as u64;
                if end > h as u64 {
                    return Err(Status::out_of_range(format!(
                        "tile {id}: rows {row0}..{end} of a tile of {h} rows"
                    )));
                }
                if t.suitability.len() != w * h * k {
                    return Err(Status::failed_precondition(format!(
                        "tile {id} has no suitability yet (Suitability first)"
                    )));
                }
                let part = &t.suitability[row0 as usize * w * k..end as usize * w * k];
                Ok(part.iter().flat_map(|v| v.to_le_bytes()).collect())
            })
            .await?;
        Ok(Response::new(SuitabilityRowsReply {
            tile_id: id,
            row0,
            rows,
            values,
        }))
    }

    async fn shutdown(
        &self,
        _req: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownReply>, Status> {
        tracing::info!("shutdown requested");
        self.shutdown.notify_one();
        Ok(Response::new(ShutdownReply {}))
    }
}

#[cfg(test)]
mod tests;
