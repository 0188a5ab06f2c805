//! Model training on the workers (docs/design.md §3b): an ANN's training set
//! ([`flus_shared::ann::prepare`], drawn here) is sent to one worker, which runs
//! [`flus_shared::ann::fit`] and returns the network; a LEAS class forest's rows go to
//! every live worker, each growing a contiguous range of its trees
//! ([`flus_shared::forest::fit_tree`]), collected in tree order.
//!
//! A job goes to the live worker with the fewest jobs in flight (then the fewest jobs
//! so far, then the lowest index), so two networks asked at once train on two workers
//! and one worker trains them side by side within its threads. A worker that fails
//! or outlasts the deadline is dropped and the job is redone on another (the one rule
//! of the fan-out layer, [`super::fanout::units::deal`]): the job holds all its data, and the workers run
//! the same functions as this process, so the result is the same bits whichever
//! worker ran it, after any failures.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flus_proto::v1::{TrainJobChunk, TrainReply};
use flus_shared::ann::{AnnSettings, TrainedAnn, TrainingSet};
use flus_shared::forest::{FittedTree, Forest, ForestSettings, Samples};

use super::fanout::units::{self, Members, Stop, Work};
use super::fanout::{request, rpc, Rpc};
use super::pool::WorkerConn;
use super::wire;

/// A training job's deadline, in deadlines of one worker call: a job is one call that
/// does a whole training, much longer than a CA step.
const JOB_DEADLINES: u32 = 10;

/// Which service method a job calls.
#[derive(Clone, Copy)]
enum Kind {
    Ann,
    Trees,
}

/// One training job: a single unit of work for the fan-out layer.
struct Job {
    name: String,
    kind: Kind,
    msgs: Vec<TrainJobChunk>,
    deadline: Duration,
}

impl Work for Job {
    type Reply = TrainReply;

    fn what(&self, _: usize) -> String {
        let call = match self.kind {
            Kind::Ann => "TrainAnn",
            Kind::Trees => "FitTrees",
        };
        format!("{call} (training job {})", self.name)
    }

    fn call(&self, conn: &WorkerConn, _: usize) -> Rpc<TrainReply> {
        let req = request(self.deadline, tokio_stream::iter(self.msgs.clone()));
        match self.kind {
            Kind::Ann => rpc(&conn.train, |mut c| async move { c.train_ann(req).await }),
            Kind::Trees => rpc(&conn.train, |mut c| async move { c.fit_trees(req).await }),
        }
    }

    fn lost(&self, addr: &str, why: &str) {
        tracing::warn!(worker = %addr, %why, "worker lost during training job {}; the job goes to another worker", self.name);
    }
}

/// How a job ended on the cluster.
struct Done {
    reply: TrainReply,
    worker: String,
    attempts: u32,
}

/// One training job of a run (run.json's `training`): a network, or a range of a
/// forest's trees.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainingJob {
    /// Its name (`validation`, `scenarios`, `leas-<key>-trees-<from>-<to>`).
    pub job: String,
    /// `ann` or `forest`.
    pub model: String,
    /// Forests: which forest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forest_key: Option<u32>,
    /// Forests: the range of trees, first and one past the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trees: Option<[usize; 2]>,
    /// The worker that answered it.
    pub worker: String,
    /// Workers asked, the one that answered included.
    pub attempts: u32,
    /// Rows of its sample.
    pub rows: usize,
    /// Networks: bytes of the sample's rows sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// Networks: seconds drawing the sample here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepare_seconds: Option<f64>,
    /// Seconds the worker reported.
    pub worker_seconds: f64,
    /// Wall seconds of the job here.
    pub seconds: f64,
}

/// The workers that train models, shared by the threads that ask for them.
pub struct Trainers {
    rt: tokio::runtime::Handle,
    members: Mutex<Members>,
    deadline: Duration,
    log: Mutex<Vec<TrainingJob>>,
}

impl Trainers {
    /// The trainers over `workers`; `deadline` is the deadline of one worker call.
    pub fn new(rt: tokio::runtime::Handle, workers: &[WorkerConn], deadline: Duration) -> Self {
        Self {
            rt,
            members: Mutex::new(Members::new(workers.to_vec())),
            deadline: deadline * JOB_DEADLINES,
            log: Mutex::new(Vec::new()),
        }
    }

    /// Where and how long every job ran so far (run.json `training`).
    pub fn log(&self) -> Vec<TrainingJob> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Runs one job on the least busy live worker until one answers it (redone on
    /// another worker after each failure); a refusal (bad input) is an error.
    fn run(&self, job: &str, kind: Kind, msgs: Vec<TrainJobChunk>) -> anyhow::Result<Done> {
        let work = Arc::new(Job {
            name: job.to_string(),
            kind,
            msgs,
            deadline: self.deadline,
        });
        match units::deal(&self.rt, self.deadline, &self.members, &work, 1, false) {
            Ok(mut d) => {
                let w = d.by[0];
                let worker = self
                    .members
                    .lock()
                    .map(|m| m.all()[w].conn.addr.clone())
                    .unwrap_or_default();
                Ok(Done {
                    reply: d.replies.remove(0),
                    worker,
                    attempts: d.tally.rounds,
                })
            }
            Err(Stop::Refused(m)) => anyhow::bail!("{m}"),
            Err(Stop::AllLost) => {
                anyhow::bail!("training job {job}: every worker is lost; none left to train on")
            }
        }
    }

    fn record(&self, entry: TrainingJob) {
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
        let msgs = wire::train::ann_messages(job, set, settings, seed)?;
        let done = self.run(job, Kind::Ann, msgs)?;
        let trained = wire::train::trained_ann(job, &done.reply.result_json)?;
        self.record(TrainingJob {
            job: job.to_string(),
            model: "ann".into(),
            worker: done.worker,
            attempts: done.attempts,
            rows: set.train.cells.len() + set.holdout.cells.len(),
            bytes: Some(set.row_bytes()),
            prepare_seconds: Some(prepare_seconds),
            worker_seconds: done.reply.seconds,
            seconds: t0.elapsed().as_secs_f64(),
            ..TrainingJob::default()
        });
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
            .members
            .lock()
            .map(|m| m.live())
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
                        let msgs = wire::train::tree_messages(&job, s, settings, seed, key, r)?;
                        let done = self.run(&job, Kind::Trees, msgs)?;
                        let trees =
                            wire::train::fitted_trees(&job, &done.reply.result_json, r.1 - r.0)?;
                        self.record(TrainingJob {
                            job,
                            model: "forest".into(),
                            forest_key: Some(key),
                            trees: Some([r.0, r.1]),
                            worker: done.worker,
                            attempts: done.attempts,
                            rows: s.len(),
                            worker_seconds: done.reply.seconds,
                            seconds: t0.elapsed().as_secs_f64(),
                            ..TrainingJob::default()
                        });
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
