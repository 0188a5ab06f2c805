//! GWR local fits on the workers: a [`GwrCluster`] sends a sample (X columns, Y columns,
//! coordinates) once to each worker that needs it and splits every per-point request
//! into point ranges over the live workers; a [`RemoteFitter`] is the
//! [`LocalFitter`] of one model (a Y column on some X columns) of that sample.
//!
//! Every call has a deadline. A worker that fails or times out is dropped and its
//! ranges go to the others (which get the sample first if they lack it). Ranges are
//! put back together in point order, and each value is computed by the same
//! `flus_shared::gwr` function as on this machine, so the results are the same bits
//! whatever the number of workers or failures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flus_proto::v1::{
    gwr_load_chunk, GwrArray, GwrDataChunk, GwrDropRequest, GwrFitKind, GwrFitReply, GwrFitRequest,
    GwrKernel, GwrLoadChunk, GwrSampleHeader,
};
use flus_shared::gwr::{
    self, GwrError, GwrModel, Kernel, LiteFit, LocalFit, LocalFitter, Weighting,
};

use super::pool::{WorkerConn, MAX_MESSAGE};

/// Doubles per GwrLoad chunk (1 MiB).
const LOAD_CHUNK: usize = 1 << 17;

/// Largest reply aimed at, bytes (a quarter of the message limit).
const REPLY_BYTES: usize = MAX_MESSAGE / 4;

/// Ranges per live worker (over-decomposition, so a lost worker's share spreads).
const RANGES_PER_WORKER: usize = 4;

/// The data of a GWR sample: X columns (column 0 the intercept), Y columns, coordinates.
#[derive(Debug, Clone)]
pub struct GwrSample {
    /// Names of the X columns.
    pub columns: Vec<String>,
    /// Names of the Y columns.
    pub y_columns: Vec<String>,
    /// n x columns, row-major.
    pub x: Vec<f64>,
    /// n x y_columns, row-major.
    pub y: Vec<f64>,
    /// Point coordinates.
    pub coords: Vec<[f64; 2]>,
    /// Coordinates are (lon, lat) degrees: great-circle distances.
    pub spherical: bool,
}

impl GwrSample {
    /// The GwrLoad messages of the sample `id`.
    fn messages(&self, id: &str) -> Vec<GwrLoadChunk> {
        let mut msgs = vec![GwrLoadChunk {
            part: Some(gwr_load_chunk::Part::Header(GwrSampleHeader {
                sample_id: id.to_string(),
                points: self.coords.len() as u64,
                columns: self.columns.clone(),
                y_columns: self.y_columns.clone(),
                spherical: self.spherical,
            })),
        }];
        for (array, values) in [
            (GwrArray::X, self.x.as_slice()),
            (GwrArray::Y, self.y.as_slice()),
            (GwrArray::Coords, self.coords.as_flattened()),
        ] {
            for (k, c) in values.chunks(LOAD_CHUNK).enumerate() {
                msgs.push(GwrLoadChunk {
                    part: Some(gwr_load_chunk::Part::Chunk(GwrDataChunk {
                        array: array as i32,
                        offset: (k * LOAD_CHUNK) as u64,
                        values: c.to_vec(),
                    })),
                });
            }
        }
        msgs
    }
}

struct Slot {
    conn: WorkerConn,
    alive: bool,
    loaded: bool,
}

/// Counters of the GWR work on the cluster.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GwrTraffic {
    /// Fit requests answered.
    pub requests: u64,
    /// Sample loads (one per worker, more after failures).
    pub loads: u64,
    /// Ranges re-sent to another worker after a failure.
    pub ranges_moved: u64,
    /// Workers dropped.
    pub workers_lost: u64,
    /// Permutation fits of the factor table's test computed on the workers.
    pub permutation_fits: u64,
}

/// A GWR sample on the cluster's workers.
pub struct GwrCluster {
    rt: tokio::runtime::Handle,
    slots: Mutex<Vec<Slot>>,
    deadline: Duration,
    id: String,
    load: Arc<Vec<GwrLoadChunk>>,
    traffic: Mutex<GwrTraffic>,
}

/// Answers that another worker would give as well ([`super::pool::is_refusal`]).
fn refusal(e: &tonic::Status) -> bool {
    super::pool::is_refusal(e)
}

fn poisoned<T>(_: T) -> GwrError {
    GwrError::Cluster("internal lock poisoned".into())
}

/// How one worker's share of a request ended.
enum Outcome {
    Done,
    Lost(usize),
    Fatal(String),
}

impl GwrCluster {
    /// The sample `id` (unique per analysis) over `workers`; nothing is sent until the
    /// first fit.
    pub fn new(
        rt: tokio::runtime::Handle,
        workers: Vec<WorkerConn>,
        deadline: Duration,
        id: String,
        sample: &GwrSample,
    ) -> Self {
        Self {
            rt,
            slots: Mutex::new(
                workers
                    .into_iter()
                    .map(|conn| Slot {
                        conn,
                        alive: true,
                        loaded: false,
                    })
                    .collect(),
            ),
            deadline,
            load: Arc::new(sample.messages(&id)),
            id,
            traffic: Mutex::new(GwrTraffic::default()),
        }
    }

    /// What went over the wire so far.
    pub fn traffic(&self) -> GwrTraffic {
        self.traffic.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Drops the sample from every live worker.
    pub fn release(&self) {
        let slots: Vec<WorkerConn> = match self.slots.lock() {
            Ok(s) => s
                .iter()
                .filter(|s| s.alive && s.loaded)
                .map(|s| s.conn.clone())
                .collect(),
            Err(_) => return,
        };
        for conn in slots {
            let mut client = conn.gwr;
            let req = GwrDropRequest {
                sample_id: self.id.clone(),
            };
            let _ = self.rt.block_on(async move {
                tokio::time::timeout(Duration::from_secs(10), client.gwr_drop(req)).await
            });
        }
    }

    /// Runs `requests` over the live workers, answers in request order.
    fn dispatch(&self, requests: Vec<GwrFitRequest>) -> Result<Vec<GwrFitReply>, GwrError> {
        let total = requests.len();
        let requests = Arc::new(requests);
        let queue = Arc::new(Mutex::new((0..total).collect::<VecDeque<usize>>()));
        let answers: Arc<Mutex<Vec<Option<GwrFitReply>>>> = Arc::new(Mutex::new(vec![None; total]));
        loop {
            let workers: Vec<(usize, WorkerConn, bool)> = self
                .slots
                .lock()
                .map_err(poisoned)?
                .iter()
                .enumerate()
                .filter(|(_, s)| s.alive)
                .map(|(w, s)| (w, s.conn.clone(), s.loaded))
                .collect();
            if workers.is_empty() {
                return Err(GwrError::Cluster(
                    "every worker is lost; no worker left for the local fits".into(),
                ));
            }
            let deadline = self.deadline;
            let busy = super::busy::enter();
            let outcomes: Vec<(usize, bool, u64, Outcome)> = self.rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for (w, conn, loaded) in workers {
                    let (queue, answers, requests, load) = (
                        queue.clone(),
                        answers.clone(),
                        requests.clone(),
                        self.load.clone(),
                    );
                    set.spawn(async move {
                        let mut client = conn.gwr;
                        let mut loaded = loaded;
                        let mut done = 0u64;
                        let mut reloads = 0;
                        loop {
                            let Some(idx) = queue.lock().ok().and_then(|mut q| q.pop_front())
                            else {
                                return (w, loaded, done, Outcome::Done);
                            };
                            let put_back = |queue: &Mutex<VecDeque<usize>>| {
                                if let Ok(mut q) = queue.lock() {
                                    q.push_back(idx);
                                }
                            };
                            if !loaded {
                                let msgs = (*load).clone();
                                let mut req = tonic::Request::new(tokio_stream::iter(msgs));
                                req.set_timeout(deadline);
                                match tokio::time::timeout(deadline, client.gwr_load(req)).await {
                                    Ok(Ok(_)) => loaded = true,
                                    Ok(Err(e)) if refusal(&e) => {
                                        put_back(&queue);
                                        return (
                                            w,
                                            false,
                                            done,
                                            Outcome::Fatal(format!(
                                                "worker {} refused the sample: {}",
                                                conn.addr,
                                                e.message()
                                            )),
                                        );
                                    }
                                    _ => {
                                        put_back(&queue);
                                        return (w, false, done, Outcome::Lost(w));
                                    }
                                }
                            }
                            let mut req = tonic::Request::new(requests[idx].clone());
                            req.set_timeout(deadline);
                            match tokio::time::timeout(deadline, client.gwr_fit(req)).await {
                                Ok(Ok(r)) => {
                                    if let Ok(mut a) = answers.lock() {
                                        a[idx] = Some(r.into_inner());
                                    }
                                    done += 1;
                                }
                                Ok(Err(e)) if refusal(&e) => {
                                    put_back(&queue);
                                    return (
                                        w,
                                        loaded,
                                        done,
                                        Outcome::Fatal(format!(
                                            "worker {}: {}",
                                            conn.addr,
                                            e.message()
                                        )),
                                    );
                                }
                                Ok(Err(e))
                                    if e.code() == tonic::Code::FailedPrecondition
                                        && reloads < 2 =>
                                {
                                    // the worker lost the sample (restarted): send it again
                                    reloads += 1;
                                    loaded = false;
                                    put_back(&queue);
                                }
                                _ => {
                                    put_back(&queue);
                                    return (w, loaded, done, Outcome::Lost(w));
                                }
                            }
                        }
                    });
                }
                let mut out = Vec::new();
                while let Some(r) = set.join_next().await {
                    if let Ok(r) = r {
                        out.push(r);
                    }
                }
                out
            });
            drop(busy);
            let mut fatal = None;
            {
                let mut slots = self.slots.lock().map_err(poisoned)?;
                let mut traffic = self.traffic.lock().map_err(poisoned)?;
                for (w, loaded, done, outcome) in outcomes {
                    traffic.requests += done;
                    if loaded && !slots[w].loaded {
                        traffic.loads += 1;
                    }
                    slots[w].loaded = loaded;
                    match outcome {
                        Outcome::Done => {}
                        Outcome::Lost(w) => {
                            tracing::warn!(worker = %slots[w].conn.addr, "worker lost during GWR fits; its ranges go to the others");
                            slots[w].alive = false;
                            slots[w].loaded = false;
                            traffic.workers_lost += 1;
                            traffic.ranges_moved += 1;
                        }
                        Outcome::Fatal(m) => fatal = Some(m),
                    }
                }
            }
            if let Some(m) = fatal {
                return Err(GwrError::Cluster(m));
            }
            let mut a = answers.lock().map_err(poisoned)?;
            if a.iter().all(Option::is_some) {
                return Ok(a.drain(..).flatten().collect());
            }
        }
    }
}

impl GwrCluster {
    /// Ranges covering 0..items, about RANGES_PER_WORKER per live worker, each reply of
    /// `stride` values per item under REPLY_BYTES.
    fn ranges(&self, items: usize, stride: usize) -> Vec<std::ops::Range<usize>> {
        let workers = self
            .slots
            .lock()
            .map(|s| s.iter().filter(|s| s.alive).count())
            .unwrap_or(1)
            .max(1);
        let by_size = (REPLY_BYTES / (8 * stride.max(1))).max(1);
        let per = items
            .div_ceil(workers * RANGES_PER_WORKER)
            .clamp(1, by_size);
        (0..items)
            .step_by(per)
            .map(|s| s..(s + per).min(items))
            .collect()
    }
}

/// The wire form of a kernel weighting.
fn kernel_code(weighting: &Weighting) -> i32 {
    (match weighting.kernel {
        Kernel::Bisquare => GwrKernel::Bisquare,
        Kernel::Gaussian => GwrKernel::Gaussian,
        Kernel::Exponential => GwrKernel::Exponential,
    }) as i32
}

impl flus_shared::analysis::FitterSource for GwrCluster {
    fn fitter<'a>(
        &'a self,
        model: &'a GwrModel,
        y: usize,
        columns: &[usize],
    ) -> Box<dyn LocalFitter + 'a> {
        Box::new(RemoteFitter::new(self, model, y, columns.to_vec()))
    }

    /// The permutation fits on the workers: ranges of permutations, each computed by a
    /// worker from the sample it holds ([`gwr::null_r2`]: the same bits as here).
    fn null_r2(
        &self,
        data: &gwr::FactorData,
        y: usize,
        factor: usize,
        weighting: &Weighting,
        bandwidth: f64,
        key: gwr::PermutationKey,
        permutations: u32,
    ) -> Result<Vec<Result<f64, GwrError>>, GwrError> {
        let ranges = self.ranges(permutations as usize, gwr::NULL_STRIDE);
        let requests = ranges
            .iter()
            .map(|r| GwrFitRequest {
                sample_id: self.id.clone(),
                kind: GwrFitKind::PermutationR2 as i32,
                y_column: y as u32,
                columns: vec![0, 1 + factor as u32],
                kernel: kernel_code(weighting),
                adaptive: weighting.adaptive,
                min_weight: weighting.min_weight,
                bandwidth,
                start: r.start as u64,
                end: r.end as u64,
                permutation_seed: key.seed,
                permutation_class: key.class,
                permutation_factor: key.factor,
                ..Default::default()
            })
            .collect();
        let replies = self.dispatch(requests)?;
        if let Ok(mut t) = self.traffic.lock() {
            t.permutation_fits += u64::from(permutations);
        }
        let mut out = Vec::with_capacity(permutations as usize);
        for (r, reply) in ranges.iter().zip(replies) {
            if reply.stride as usize != gwr::NULL_STRIDE
                || reply.values.len() != r.len() * gwr::NULL_STRIDE
            {
                return Err(GwrError::Cluster(format!(
                    "a worker answered {} values of stride {} for permutations {}..{}, \
                     expected stride {}",
                    reply.values.len(),
                    reply.stride,
                    r.start,
                    r.end,
                    gwr::NULL_STRIDE
                )));
            }
            out.extend(gwr::unpack_null(
                &reply.values,
                data.factor_name,
                bandwidth,
                data.coords,
            )?);
        }
        Ok(out)
    }
}

/// The [`LocalFitter`] of `model`, whose data is Y column `y_column` on the X columns
/// `columns` of the cluster's sample.
pub struct RemoteFitter<'a> {
    cluster: &'a GwrCluster,
    model: &'a GwrModel,
    y_column: u32,
    columns: Vec<u32>,
}

impl<'a> RemoteFitter<'a> {
    /// The fitter of `model` = Y column `y_column` on X `columns` (intercept, column 0,
    /// first) of `cluster`'s sample.
    pub fn new(
        cluster: &'a GwrCluster,
        model: &'a GwrModel,
        y_column: usize,
        columns: Vec<usize>,
    ) -> Self {
        Self {
            cluster,
            model,
            y_column: y_column as u32,
            columns: columns.into_iter().map(|c| c as u32).collect(),
        }
    }

    fn request(&self, kind: GwrFitKind, weighting: &Weighting, bandwidth: f64) -> GwrFitRequest {
        GwrFitRequest {
            sample_id: self.cluster.id.clone(),
            kind: kind as i32,
            y_column: self.y_column,
            columns: self.columns.clone(),
            kernel: kernel_code(weighting),
            adaptive: weighting.adaptive,
            min_weight: weighting.min_weight,
            bandwidth,
            ..Default::default()
        }
    }

    /// Runs one request per point range and returns the values in point order,
    /// checking each reply's stride and length; a singular local fit becomes
    /// [`GwrError::SingularLocal`] of the lowest such point.
    fn run(
        &self,
        kind: GwrFitKind,
        weighting: &Weighting,
        bandwidth: f64,
        items: usize,
        stride: usize,
        fill: impl Fn(&mut GwrFitRequest, std::ops::Range<usize>),
    ) -> Result<Vec<f64>, GwrError> {
        self.model.check_bandwidth(weighting, bandwidth)?;
        let ranges = self.cluster.ranges(items, stride);
        let requests = ranges
            .iter()
            .map(|r| {
                let mut q = self.request(kind, weighting, bandwidth);
                fill(&mut q, r.clone());
                q
            })
            .collect();
        let replies = self.cluster.dispatch(requests)?;
        let mut out = Vec::with_capacity(items * stride);
        if let Some(s) = replies.iter().find(|r| r.singular) {
            let data = self.model.data();
            let point = s.singular_point as usize;
            let c = data.coords().get(point).copied().unwrap_or([f64::NAN; 2]);
            return Err(GwrError::SingularLocal {
                point,
                x: c[0],
                y: c[1],
                bandwidth,
                column: data
                    .names()
                    .get(s.singular_column as usize)
                    .cloned()
                    .unwrap_or_default(),
                neighbours: s.singular_neighbours as usize,
            });
        }
        for (r, reply) in ranges.iter().zip(replies) {
            if reply.stride as usize != stride || reply.values.len() != r.len() * stride {
                return Err(GwrError::Cluster(format!(
                    "a worker answered {} values of stride {} for points {}..{}, expected stride {stride}",
                    reply.values.len(),
                    reply.stride,
                    r.start,
                    r.end
                )));
            }
            out.extend_from_slice(&reply.values);
        }
        Ok(out)
    }
}

impl LocalFitter for RemoteFitter<'_> {
    fn lite(&self, weighting: &Weighting, bandwidth: f64) -> Result<Vec<LiteFit>, GwrError> {
        let n = self.model.data().n();
        let v = self.run(
            GwrFitKind::Lite,
            weighting,
            bandwidth,
            n,
            gwr::LITE_STRIDE,
            |q, r| {
                q.start = r.start as u64;
                q.end = r.end as u64;
            },
        )?;
        gwr::unpack_lite(&v)
    }

    fn full(&self, weighting: &Weighting, bandwidth: f64) -> Result<Vec<LocalFit>, GwrError> {
        let (n, p) = (self.model.data().n(), self.model.data().p());
        let v = self.run(
            GwrFitKind::Full,
            weighting,
            bandwidth,
            n,
            gwr::full_stride(p),
            |q, r| {
                q.start = r.start as u64;
                q.end = r.end as u64;
            },
        )?;
        gwr::unpack_full(&v, p, 0)
    }

    fn local_r2(
        &self,
        weighting: &Weighting,
        bandwidth: f64,
        residuals: &[f64],
    ) -> Result<Vec<f64>, GwrError> {
        let n = self.model.data().n();
        if residuals.len() * 8 > MAX_MESSAGE / 2 {
            return Err(GwrError::Cluster(format!(
                "{} residuals do not fit in one message of the cluster ({} MiB)",
                residuals.len(),
                MAX_MESSAGE >> 20
            )));
        }
        self.run(GwrFitKind::LocalR2, weighting, bandwidth, n, 1, |q, r| {
            q.start = r.start as u64;
            q.end = r.end as u64;
            q.residuals = residuals.to_vec();
        })
    }

    fn predict(
        &self,
        weighting: &Weighting,
        bandwidth: f64,
        at: &[[f64; 2]],
    ) -> Result<Vec<f64>, GwrError> {
        let p = self.model.data().p();
        self.run(
            GwrFitKind::Predict,
            weighting,
            bandwidth,
            at.len(),
            p,
            |q, r| {
                q.at = at[r].as_flattened().to_vec();
            },
        )
    }
}
