//! The `flus.v1.Trainer` service: the suitability models trained on the worker with
//! the same `flus_shared` functions as in-process training ([`flus_shared::ann::fit`],
//! [`flus_shared::forest::fit_tree`]), so the coordinator gets the same bits whichever
//! worker (and however many threads) ran the job. A job keeps nothing here: its rows
//! come with it and are dropped with the reply.

use std::time::Instant;

use flus_proto::v1::trainer_server::Trainer;
use flus_proto::v1::{train_job_chunk, TrainArray, TrainJobChunk, TrainJobHeader, TrainReply};
use flus_shared::ann::{self, AnnSettings, SampleRows, TrainingSet};
use flus_shared::forest::{self, FittedTree, ForestSettings};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

/// The Trainer service: jobs of at most `max_bytes` of rows each.
#[derive(Clone, Debug)]
pub struct TrainService {
    max_bytes: u64,
    threads: u32,
}

impl TrainService {
    /// A service that accepts jobs of up to `max_bytes` bytes of rows and reports
    /// `threads` (its rayon pool) with each reply.
    pub fn new(max_bytes: u64, threads: usize) -> Self {
        Self {
            max_bytes,
            threads: threads as u32,
        }
    }
}

/// A job as received: its header and arrays.
#[derive(Default)]
struct Job {
    header: TrainJobHeader,
    train: SampleRows,
    holdout: SampleRows,
    forest_x: Vec<f32>,
    forest_y: Vec<u8>,
}

fn bad(m: String) -> Status {
    Status::invalid_argument(m)
}

/// Copies `src` into `dst` at `off`, refusing a chunk beyond the array.
#[allow(clippy::result_large_err)]
fn put<T: Copy>(dst: &mut [T], off: u64, src: &[T], what: &str) -> Result<u64, Status> {
    let off = off as usize;
    let end = off.saturating_add(src.len());
    if end > dst.len() {
        return Err(bad(format!(
            "training job: {what} chunk {off}..{end} beyond its array of {}",
            dst.len()
        )));
    }
    dst[off..end].copy_from_slice(src);
    Ok(src.len() as u64)
}

impl TrainService {
    /// The arrays sized from the header, after checking it against the limit.
    #[allow(clippy::result_large_err)]
    fn allocate(&self, h: TrainJobHeader, ann: bool) -> Result<Job, Status> {
        let d = if ann {
            serde_json::from_slice::<TrainingSet>(&h.meta_json)
                .map_err(|e| bad(format!("training job {}: its training set: {e}", h.job)))?
                .driver_names
                .len() as u64
        } else {
            u64::from(h.features)
        };
        let rows = h.train_rows.saturating_add(h.holdout_rows);
        let bytes = rows.saturating_mul(d.saturating_mul(8).saturating_add(9));
        if bytes > self.max_bytes {
            return Err(bad(format!(
                "training job {}: {rows} rows of {d} drivers ({bytes} bytes); at most {} \
                 bytes (--max-train-mib)",
                h.job, self.max_bytes
            )));
        }
        let rows_of = |n: u64| SampleRows {
            cells: vec![0; n as usize],
            xs: vec![f64::NAN; (n * d) as usize],
            ys: vec![u8::MAX; n as usize],
        };
        Ok(if ann {
            Job {
                train: rows_of(h.train_rows),
                holdout: rows_of(h.holdout_rows),
                header: h,
                ..Job::default()
            }
        } else {
            Job {
                forest_x: vec![f32::NAN; (h.train_rows * d) as usize],
                forest_y: vec![u8::MAX; h.train_rows as usize],
                header: h,
                ..Job::default()
            }
        })
    }

    /// Receives a job stream: the header, then every element of every array once.
    async fn receive(
        &self,
        mut stream: Streaming<TrainJobChunk>,
        ann: bool,
    ) -> Result<Job, Status> {
        let mut job: Option<Job> = None;
        let mut received = 0u64;
        while let Some(msg) = stream.next().await {
            match msg?.part {
                Some(train_job_chunk::Part::Header(h)) => {
                    if job.is_some() {
                        return Err(bad("training job: two headers".into()));
                    }
                    job = Some(self.allocate(h, ann)?);
                }
                Some(train_job_chunk::Part::Chunk(c)) => {
                    let j = job
                        .as_mut()
                        .ok_or_else(|| bad("training job: data before the header".into()))?;
                    let array = TrainArray::try_from(c.array).unwrap_or_default();
                    received += match array {
                        TrainArray::TrainCells => {
                            put(&mut j.train.cells, c.offset, &c.cells, "cells")?
                        }
                        TrainArray::TrainX => put(&mut j.train.xs, c.offset, &c.values, "x")?,
                        TrainArray::TrainClasses => {
                            put(&mut j.train.ys, c.offset, &c.bytes_values, "classes")?
                        }
                        TrainArray::HoldoutCells => {
                            put(&mut j.holdout.cells, c.offset, &c.cells, "cells")?
                        }
                        TrainArray::HoldoutX => put(&mut j.holdout.xs, c.offset, &c.values, "x")?,
                        TrainArray::HoldoutClasses => {
                            put(&mut j.holdout.ys, c.offset, &c.bytes_values, "classes")?
                        }
                        TrainArray::ForestX => put(&mut j.forest_x, c.offset, &c.floats, "x")?,
                        TrainArray::ForestY => {
                            put(&mut j.forest_y, c.offset, &c.bytes_values, "targets")?
                        }
                        TrainArray::Unspecified => {
                            return Err(bad(format!("training job: unknown array {}", c.array)))
                        }
                    };
                }
                None => return Err(bad("training job: empty message".into())),
            }
        }
        let j = job.ok_or_else(|| bad("training job: no header".into()))?;
        let expected: usize = [&j.train, &j.holdout]
            .iter()
            .map(|r| r.cells.len() + r.xs.len() + r.ys.len())
            .sum::<usize>()
            + j.forest_x.len()
            + j.forest_y.len();
        if received != expected as u64 {
            return Err(bad(format!(
                "training job {}: {received} values received, expected {expected}",
                j.header.job
            )));
        }
        Ok(j)
    }
}

/// Runs `f` on the worker's rayon pool (so a job shares the worker's thread budget with
/// its tile work) and waits for it without blocking the async runtime.
async fn on_pool<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await
        .map_err(|_| Status::internal("the training task ended without an answer"))?
}

/// Fits the ANN of a received job.
#[allow(clippy::result_large_err)]
fn fit_ann(j: Job) -> Result<Vec<u8>, Status> {
    let h = &j.header;
    let mut set: TrainingSet = serde_json::from_slice(&h.meta_json)
        .map_err(|e| bad(format!("training job {}: its training set: {e}", h.job)))?;
    let settings: AnnSettings = serde_json::from_slice(&h.settings_json)
        .map_err(|e| bad(format!("training job {}: its ANN settings: {e}", h.job)))?;
    set.train = j.train;
    set.holdout = j.holdout;
    // test builds: a fault test can kill the worker while it trains
    flus_shared::hooks::hold(|| "ann-training".into());
    let trained = ann::fit(&set, &settings, h.seed)
        .map_err(|e| bad(format!("training job {}: {e}", h.job)))?;
    serde_json::to_vec(&trained).map_err(|e| Status::internal(e.to_string()))
}

/// Grows the trees of a received forest job.
#[allow(clippy::result_large_err)]
fn fit_trees(j: Job) -> Result<Vec<u8>, Status> {
    use rayon::prelude::*;
    let h = &j.header;
    let settings: ForestSettings = serde_json::from_slice(&h.meta_json)
        .map_err(|e| bad(format!("forest job {}: its settings: {e}", h.job)))?;
    let y: Vec<bool> = j.forest_y.iter().map(|&v| v == 1).collect();
    if j.forest_y.iter().any(|&v| v > 1) {
        return Err(bad(format!(
            "forest job {}: a target other than 0 or 1",
            h.job
        )));
    }
    let s = forest::Samples {
        x: &j.forest_x,
        d: h.features as usize,
        y: &y,
    };
    s.check()
        .and_then(|_| settings.check(s.d))
        .map_err(|e| bad(format!("forest job {}: {e}", h.job)))?;
    if s.is_empty() {
        return Err(bad(format!("forest job {}: no training row", h.job)));
    }
    if h.tree_start > h.tree_end || h.tree_end as usize > settings.n_trees {
        return Err(bad(format!(
            "forest job {}: trees {}..{}; expected a range within 0..{}",
            h.job, h.tree_start, h.tree_end, settings.n_trees
        )));
    }
    // test builds: a fault test can kill the worker while it grows trees
    flus_shared::hooks::hold(|| "forest-trees".into());
    let trees: Vec<FittedTree> = (h.tree_start as usize..h.tree_end as usize)
        .into_par_iter()
        .map(|t| forest::fit_tree(&s, &settings, h.seed, h.forest_key, t))
        .collect();
    serde_json::to_vec(&trees).map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl Trainer for TrainService {
    async fn train_ann(
        &self,
        req: Request<Streaming<TrainJobChunk>>,
    ) -> Result<Response<TrainReply>, Status> {
        let job = self.receive(req.into_inner(), true).await?;
        tracing::info!(job = %job.header.job, rows = job.header.train_rows, "ANN training job");
        let t0 = Instant::now();
        let result_json = on_pool(move || fit_ann(job)).await?;
        Ok(Response::new(TrainReply {
            result_json,
            seconds: t0.elapsed().as_secs_f64(),
            threads: self.threads,
        }))
    }

    async fn fit_trees(
        &self,
        req: Request<Streaming<TrainJobChunk>>,
    ) -> Result<Response<TrainReply>, Status> {
        let job = self.receive(req.into_inner(), false).await?;
        tracing::info!(
            job = %job.header.job,
            trees = ?(job.header.tree_start..job.header.tree_end),
            "forest job"
        );
        let t0 = Instant::now();
        let result_json = on_pool(move || fit_trees(job)).await?;
        Ok(Response::new(TrainReply {
            result_json,
            seconds: t0.elapsed().as_secs_f64(),
            threads: self.threads,
        }))
    }
}
