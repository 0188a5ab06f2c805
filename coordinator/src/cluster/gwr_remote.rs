//! GWR local fits on the workers: a [`GwrCluster`] sends a sample (X columns, Y columns,
//! coordinates) once to each worker that needs it and splits every per-point request
//! into point ranges over the live workers; a [`RemoteFitter`] is the
//! [`LocalFitter`] of one model (a Y column on some X columns) of that sample.
//!
//! The ranges are units of work of the fan-out layer ([`super::fanout::units::deal`]):
//! every call has a deadline, a refusal stops the analysis with the worker's message,
//! and a worker that fails otherwise is dropped and its ranges go to the others (which
//! get the sample first if they lack it). Ranges are
//! put back together in point order, and each value is computed by the same
//! `flus_shared::gwr` function as on this machine, so the results are the same bits
//! whatever the number of workers or failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flus_proto::v1::{GwrDropRequest, GwrFitKind, GwrFitReply, GwrFitRequest, GwrLoadChunk};
use flus_shared::gwr::{self, GwrError, GwrModel, LiteFit, LocalFit, LocalFitter, Weighting};

use super::fanout::units::{self, Members, Stop, Work};
use super::fanout::{self, map_reply, request, rpc, Calls, Rpc};
use super::pool::{WorkerConn, MAX_MESSAGE};
use super::wire;

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

/// Counters of the GWR work on the cluster (run.json `gwr.cluster`).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
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
    members: Mutex<Members>,
    deadline: Duration,
    id: String,
    load: Arc<Vec<GwrLoadChunk>>,
    traffic: Mutex<GwrTraffic>,
}

/// The fit requests of one deal: each a range of points (or permutations), run on
/// workers that hold the sample.
struct Fits {
    requests: Vec<GwrFitRequest>,
    load: Arc<Vec<GwrLoadChunk>>,
    deadline: Duration,
}

impl Work for Fits {
    type Reply = GwrFitReply;

    fn what(&self, u: usize) -> String {
        let r = &self.requests[u];
        format!("GwrFit {}..{}", r.start, r.end)
    }

    fn call(&self, conn: &WorkerConn, u: usize) -> Rpc<GwrFitReply> {
        let req = request(self.deadline, self.requests[u].clone());
        rpc(&conn.gwr, |mut c| async move { c.gwr_fit(req).await })
    }

    fn has_setup(&self) -> bool {
        true
    }

    fn setup(&self, conn: &WorkerConn) -> Option<(String, Rpc<()>)> {
        let req = request(self.deadline, tokio_stream::iter((*self.load).clone()));
        let load = rpc(&conn.gwr, |mut c| async move { c.gwr_load(req).await });
        Some(("the sample (GwrLoad)".into(), map_reply(load, |_| ())))
    }

    fn lost(&self, addr: &str, why: &str) {
        tracing::warn!(worker = %addr, %why, "worker lost during GWR fits; its ranges go to the others");
    }
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
            members: Mutex::new(Members::new(workers)),
            deadline,
            load: Arc::new(wire::gwr::sample_chunks(sample, &id)),
            id,
            traffic: Mutex::new(GwrTraffic::default()),
        }
    }

    /// What went over the wire so far.
    pub fn traffic(&self) -> GwrTraffic {
        self.traffic.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Drops the sample from every live worker that holds it.
    pub fn release(&self) {
        let calls = match self.members.lock() {
            Ok(m) => m
                .all()
                .iter()
                .enumerate()
                .filter(|(_, m)| m.alive && m.ready)
                .map(|(w, m)| {
                    let req = GwrDropRequest {
                        sample_id: self.id.clone(),
                    };
                    Calls {
                        w,
                        what: "GwrDrop".into(),
                        rpcs: vec![rpc(
                            &m.conn.gwr,
                            |mut c| async move { c.gwr_drop(req).await },
                        )],
                    }
                })
                .collect(),
            Err(_) => return,
        };
        fanout::best_effort(&self.rt, Duration::from_secs(10), calls);
    }

    /// Runs `requests` over the live workers (each taking the next range when it has
    /// answered one), answers in request order.
    fn dispatch(&self, requests: Vec<GwrFitRequest>) -> Result<Vec<GwrFitReply>, GwrError> {
        let n = requests.len();
        let fits = Arc::new(Fits {
            requests,
            load: self.load.clone(),
            deadline: self.deadline,
        });
        let dealt = units::deal(&self.rt, self.deadline, &self.members, &fits, n, true);
        let dealt = match dealt {
            Ok(d) => d,
            Err(Stop::Refused(m)) => return Err(GwrError::Cluster(m)),
            Err(Stop::AllLost) => {
                return Err(GwrError::Cluster(
                    "every worker is lost; no worker left for the local fits".into(),
                ))
            }
        };
        if let Ok(mut t) = self.traffic.lock() {
            t.requests += dealt.tally.answered;
            t.loads += dealt.tally.setups;
            t.ranges_moved += dealt.tally.moved;
            t.workers_lost += dealt.tally.lost;
        }
        Ok(dealt.replies)
    }
}

impl GwrCluster {
    /// Ranges covering 0..items, about RANGES_PER_WORKER per live worker, each reply of
    /// `stride` values per item under REPLY_BYTES.
    fn ranges(&self, items: usize, stride: usize) -> Vec<std::ops::Range<usize>> {
        let workers = self.members.lock().map(|m| m.live()).unwrap_or(1).max(1);
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

impl flus_shared::analysis::FitterSource for GwrCluster {
    /// Two targets per live worker: while one target's bandwidth search waits for this
    /// machine (its AICc, its files) the workers fit another's points.
    fn concurrent_targets(&self) -> usize {
        2 * self.members.lock().map(|m| m.live()).unwrap_or(1).max(1)
    }

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
                kernel: wire::gwr::kernel_code(weighting),
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
        for (r, reply) in ranges.iter().zip(&replies) {
            let values = wire::gwr::values(reply, r, gwr::NULL_STRIDE, "permutations")?;
            out.extend(gwr::unpack_null(
                values,
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
            kernel: wire::gwr::kernel_code(weighting),
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
            return Err(wire::gwr::singular(s, self.model, bandwidth));
        }
        for (r, reply) in ranges.iter().zip(&replies) {
            out.extend_from_slice(wire::gwr::values(reply, r, stride, "points")?);
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
