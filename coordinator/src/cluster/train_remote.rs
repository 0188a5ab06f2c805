//! Model training on the workers (docs/design.md §3b): an ANN's training set
//! ([`flus_shared::ann::prepare`], drawn here) is sent to one worker, which runs
//! [`flus_shared::ann::fit`] and returns the network; a LEAS class forest's rows go to
//! every live worker, each growing a contiguous range of its trees
//! ([`flus_shared::forest::fit_tree`]), collected in tree order.
//!
//! A job goes to the live worker with the fewest jobs in flight (then the fewest jobs
//! so far, then the lowest index), so two networks asked at once train on two workers
//! and one worker trains them side by side within its threads. A worker that fails
//! or outlasts the deadline is dropped (the one rule of [`super::pool::is_refusal`])
//! and the job is redone on another: the job holds all its data, and the workers run
//! the same functions as this process, so the result is the same bits whichever
//! worker ran it, after any failures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flus_proto::v1::{
    train_job_chunk, TrainArray, TrainDataChunk, TrainJobChunk, TrainJobHeader, TrainReply,
};
use flus_shared::ann::{AnnSettings, TrainedAnn, TrainingSet};
use flus_shared::forest::{FittedTree, Forest, ForestSettings, Samples};
use serde_json::{json, Value};

use super::pool::WorkerConn;

/// Elements per chunk of a job stream (1 MiB of doubles).
const CHUNK: usize = 1 << 17;

/// A training job's deadline, in deadlines of one worker call: a job is one call that
/// does a whole training, much longer than a CA step.
const JOB_DEADLINES: u32 = 10;

struct Slot {
    conn: WorkerConn,
    alive: bool,
    in_flight: usize,
    assigned: usize,
}

/// Which service method a job calls.
#[derive(Clone, Copy)]
enum Kind {
    Ann,
    Trees,
}

/// How a job ended on the cluster.
struct Done {
    reply: TrainReply,
    worker: String,
    attempts: u32,
}

/// The workers that train models, shared by the threads that ask for them.
pub struct Trainers {
    rt: tokio::runtime::Handle,
    slots: Mutex<Vec<Slot>>,
    deadline: Duration,
    log: Mutex<Vec<Value>>,
}

/// The chunks of one array, `per` elements each; `make` puts the values in their field.
fn chunks<T: Clone>(
    array: TrainArray,
    values: &[T],
    per: usize,
    make: impl Fn(Vec<T>) -> TrainDataChunk,
) -> Vec<TrainJobChunk> {
    values
        .chunks(per)
        .enumerate()
        .map(|(i, c)| {
            let mut chunk = make(c.to_vec());
            chunk.array = array as i32;
            chunk.offset = (i * per) as u64;
            TrainJobChunk {
                part: Some(train_job_chunk::Part::Chunk(chunk)),
            }
        })
        .collect()
}

fn header(h: TrainJobHeader) -> TrainJobChunk {
    TrainJobChunk {
        part: Some(train_job_chunk::Part::Header(h)),
    }
}

/// The messages of an ANN job.
fn ann_messages(
    job: &str,
    set: &TrainingSet,
    settings: &AnnSettings,
    seed: u64,
) -> anyhow::Result<Vec<TrainJobChunk>> {
    let mut msgs = vec![header(TrainJobHeader {
        job: job.to_string(),
        meta_json: serde_json::to_vec(set)?,
        settings_json: serde_json::to_vec(settings)?,
        seed,
        train_rows: set.train.cells.len() as u64,
        holdout_rows: set.holdout.cells.len() as u64,
        ..TrainJobHeader::default()
    })];
    let (x, cells, bytes) = (
        |v| TrainDataChunk {
            values: v,
            ..TrainDataChunk::default()
        },
        |v| TrainDataChunk {
            cells: v,
            ..TrainDataChunk::default()
        },
        |v| TrainDataChunk {
            bytes_values: v,
            ..TrainDataChunk::default()
        },
    );
    for (rows, [c, xa, y]) in [
        (
            &set.train,
            [
                TrainArray::TrainCells,
                TrainArray::TrainX,
                TrainArray::TrainClasses,
            ],
        ),
        (
            &set.holdout,
            [
                TrainArray::HoldoutCells,
                TrainArray::HoldoutX,
                TrainArray::HoldoutClasses,
            ],
        ),
    ] {
        msgs.extend(chunks(c, &rows.cells, CHUNK, cells));
        msgs.extend(chunks(xa, &rows.xs, CHUNK, x));
        msgs.extend(chunks(y, &rows.ys, CHUNK * 8, bytes));
    }
    Ok(msgs)
}

/// The messages of a forest job: trees `trees` of forest `key` on `s`.
fn tree_messages(
    job: &str,
    s: &Samples,
    settings: &ForestSettings,
    seed: u64,
    key: u32,
    trees: (usize, usize),
) -> anyhow::Result<Vec<TrainJobChunk>> {
    let mut msgs = vec![header(TrainJobHeader {
        job: job.to_string(),
        meta_json: serde_json::to_vec(settings)?,
        seed,
        train_rows: s.len() as u64,
        features: s.d as u32,
        forest_key: key,
        tree_start: trees.0 as u32,
        tree_end: trees.1 as u32,
        ..TrainJobHeader::default()
    })];
    msgs.extend(chunks(TrainArray::ForestX, s.x, CHUNK * 2, |v| {
        TrainDataChunk {
            floats: v,
            ..TrainDataChunk::default()
        }
    }));
    let y: Vec<u8> = s.y.iter().map(|&b| b as u8).collect();
    msgs.extend(chunks(TrainArray::ForestY, &y, CHUNK * 8, |v| {
        TrainDataChunk {
            bytes_values: v,
            ..TrainDataChunk::default()
        }
    }));
    Ok(msgs)
}

impl Trainers {
    /// The trainers over `workers`; `deadline` is the deadline of one worker call.
    pub fn new(rt: tokio::runtime::Handle, workers: &[WorkerConn], deadline: Duration) -> Self {
        Self {
            rt,
            slots: Mutex::new(
                workers
                    .iter()
                    .map(|conn| Slot {
                        conn: conn.clone(),
                        alive: true,
                        in_flight: 0,
                        assigned: 0,
                    })
                    .collect(),
            ),
            deadline: deadline * JOB_DEADLINES,
            log: Mutex::new(Vec::new()),
        }
    }

    /// Where and how long every job ran so far (run.json `training`).
    pub fn log(&self) -> Vec<Value> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The live worker to take the next job, marked busy with it.
    fn take(&self, job: &str) -> anyhow::Result<(usize, WorkerConn)> {
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| anyhow::anyhow!("internal lock poisoned"))?;
        let w = (0..slots.len())
            .filter(|&w| slots[w].alive)
            .min_by_key(|&w| (slots[w].in_flight, slots[w].assigned, w))
            .ok_or_else(|| {
                anyhow::anyhow!("training job {job}: every worker is lost; none left to train on")
            })?;
        slots[w].in_flight += 1;
        slots[w].assigned += 1;
        Ok((w, slots[w].conn.clone()))
    }

    /// Runs one job until a worker answers it (redone on another worker after each
    /// failure); a refusal (bad input) is an error.
    fn run(&self, job: &str, kind: Kind, msgs: Arc<Vec<TrainJobChunk>>) -> anyhow::Result<Done> {
        let mut attempts = 0;
        loop {
            let (w, conn) = self.take(job)?;
            attempts += 1;
            let busy = super::busy::enter();
            let deadline = self.deadline;
            let msgs = (*msgs).clone();
            let mut client = conn.train.clone();
            let answer = self.rt.block_on(async move {
                let mut req = tonic::Request::new(tokio_stream::iter(msgs));
                req.set_timeout(deadline);
                let call = async {
                    match kind {
                        Kind::Ann => client.train_ann(req).await,
                        Kind::Trees => client.fit_trees(req).await,
                    }
                };
                tokio::time::timeout(deadline, call).await
            });
            drop(busy);
            let mut slots = self
                .slots
                .lock()
                .map_err(|_| anyhow::anyhow!("internal lock poisoned"))?;
            slots[w].in_flight -= 1;
            match answer {
                Ok(Ok(reply)) => {
                    return Ok(Done {
                        reply: reply.into_inner(),
                        worker: conn.addr.clone(),
                        attempts,
                    })
                }
                Ok(Err(e)) if super::pool::is_refusal(&e) => {
                    // the same message as a refused tile call: the gRPC code and, when a
                    // resume cannot cure it (a token, a limit), what to do instead
                    let mut refusals = super::cause::Refusals::default();
                    let call = match kind {
                        Kind::Ann => "TrainAnn",
                        Kind::Trees => "FitTrees",
                    };
                    let what = format!("{call} (training job {job})");
                    refusals.note(&conn.addr, &what, &e);
                    anyhow::bail!(
                        "{}",
                        refusals.explain(format!(
                            "worker {} refused {what}: {}",
                            conn.addr,
                            e.message()
                        ))
                    )
                }
                other => {
                    let why = match other {
                        Ok(Err(e)) => e.message().to_string(),
                        _ => format!("no answer within {} s", deadline.as_secs_f64()),
                    };
                    tracing::warn!(worker = %conn.addr, %why, "worker lost during training job {job}; the job goes to another worker");
                    slots[w].alive = false;
                }
            }
        }
    }

    fn record(&self, entry: Value) {
        if let Ok(mut l) = self.log.lock() {
            l.push(entry);
        }
    }

    /// Trains the network of `set` on a worker (the bits of [`flus_shared::ann::fit`]
    /// here); `job` names it in logs and run.json, `prepare_seconds` is what drawing
    /// the set took here.
    pub fn train_ann(
        &self,
        job: &str,
        set: &TrainingSet,
        settings: &AnnSettings,
        seed: u64,
        prepare_seconds: f64,
    ) -> anyhow::Result<TrainedAnn> {
        let t0 = Instant::now();
        let msgs = Arc::new(ann_messages(job, set, settings, seed)?);
        let done = self.run(job, Kind::Ann, msgs)?;
        let trained: TrainedAnn = serde_json::from_slice(&done.reply.result_json)
            .map_err(|e| anyhow::anyhow!("training job {job}: the worker's network: {e}"))?;
        self.record(json!({
            "job": job,
            "model": "ann",
            "worker": done.worker,
            "attempts": done.attempts,
            "rows": set.train.cells.len() + set.holdout.cells.len(),
            "bytes": set.row_bytes(),
            "prepare_seconds": prepare_seconds,
            "worker_seconds": done.reply.seconds,
            "seconds": t0.elapsed().as_secs_f64(),
        }));
        Ok(trained)
    }

    /// Fits forest `key` on `s` over the live workers: each takes a contiguous range of
    /// the trees (one range per live worker, the ranges of a lost worker redone
    /// elsewhere), collected in tree order; the bits of [`flus_shared::forest::fit`].
    pub fn fit_forest(
        &self,
        s: &Samples,
        settings: &ForestSettings,
        seed: u64,
        key: u32,
    ) -> flus_shared::Result<Forest> {
        let cluster = |e: anyhow::Error| flus_shared::Error::Data(format!("{e:#}"));
        let live = self
            .slots
            .lock()
            .map(|s| s.iter().filter(|s| s.alive).count())
            .unwrap_or(1)
            .clamp(1, settings.n_trees.max(1));
        let n = settings.n_trees;
        let ranges: Vec<(usize, usize)> = (0..live)
            .map(|i| (i * n / live, (i + 1) * n / live))
            .filter(|(a, b)| a < b)
            .collect();
        let t0 = Instant::now();
        let parts: Vec<anyhow::Result<Vec<FittedTree>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .iter()
                .map(|&r| {
                    scope.spawn(move || {
                        let job = format!("leas-{key}-trees-{}-{}", r.0, r.1);
                        let msgs = Arc::new(tree_messages(&job, s, settings, seed, key, r)?);
                        let done = self.run(&job, Kind::Trees, msgs)?;
                        let trees: Vec<FittedTree> =
                            serde_json::from_slice(&done.reply.result_json)
                                .map_err(|e| anyhow::anyhow!("{job}: the worker's trees: {e}"))?;
                        anyhow::ensure!(
                            trees.len() == r.1 - r.0,
                            "{job}: the worker returned {} trees",
                            trees.len()
                        );
                        self.record(json!({
                            "job": job,
                            "model": "forest",
                            "forest_key": key,
                            "trees": [r.0, r.1],
                            "worker": done.worker,
                            "attempts": done.attempts,
                            "rows": s.len(),
                            "worker_seconds": done.reply.seconds,
                            "seconds": t0.elapsed().as_secs_f64(),
                        }));
                        Ok(trees)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a forest job thread panicked")))
                })
                .collect()
        });
        let mut trees = Vec::with_capacity(n);
        for p in parts {
            trees.extend(p.map_err(cluster)?);
        }
        Ok(Forest::from_trees(trees, s.d))
    }
}
