//! The `flus.v1.GwrWorker` service: holds GWR samples sent by the coordinator and
//! computes the per-point local fits of point ranges with `flus_shared::gwr` (the same
//! functions the coordinator runs locally, so the values are the same bits).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use flus_proto::v1::gwr_worker_server::GwrWorker;
use flus_proto::v1::{
    gwr_load_chunk, GwrArray, GwrDropReply, GwrDropRequest, GwrFitKind, GwrFitReply, GwrFitRequest,
    GwrKernel, GwrLoadChunk, GwrLoaded, GwrSampleHeader,
};
use flus_shared::gwr::{self, GwrData, GwrError, GwrModel, Kernel, Weighting};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

/// A loaded sample: every X and Y column, the coordinates, and the models built from
/// it so far (keyed by Y column and X columns).
struct Sample {
    header: GwrSampleHeader,
    x: Vec<f64>,
    y: Vec<f64>,
    coords: Vec<[f64; 2]>,
    models: HashMap<(u32, Vec<u32>), Arc<GwrModel>>,
}

impl Sample {
    fn n(&self) -> usize {
        self.header.points as usize
    }

    /// The data of the factor table's permutation fits of `r` (kind PERMUTATION_R2):
    /// Y column `y_column`, X column `columns[1]`, copied out of the sample.
    #[allow(clippy::result_large_err)]
    fn factor_data(&self, r: &GwrFitRequest) -> Result<FactorColumns, Status> {
        let (n, c, m) = (
            self.n(),
            self.header.columns.len(),
            self.header.y_columns.len(),
        );
        let (y, factor) = match r.columns[..] {
            [0, f] if (f as usize) < c && (r.y_column as usize) < m => {
                (r.y_column as usize, f as usize)
            }
            _ => {
                return Err(Status::invalid_argument(format!(
                    "permutation fits of y column {} on X columns {:?}: expected a y column \
                     below {m} and the intercept (0) and one factor below {c}",
                    r.y_column, r.columns
                )))
            }
        };
        if r.start > r.end || r.end > u64::from(u32::MAX) {
            return Err(Status::invalid_argument(format!(
                "permutations {}..{}: expected a range of 32-bit indices",
                r.start, r.end
            )));
        }
        Ok(FactorColumns {
            y_name: self.header.y_columns[y].clone(),
            y: (0..n).map(|i| self.y[i * m + y]).collect(),
            factor_name: self.header.columns[factor].clone(),
            factor: (0..n).map(|i| self.x[i * c + factor]).collect(),
            coords: self.coords.clone(),
            spherical: self.header.spherical,
        })
    }

    /// The model of Y column `y` on X columns `columns` (built once, then kept).
    #[allow(clippy::result_large_err)]
    fn model(&mut self, y: u32, columns: &[u32]) -> Result<Arc<GwrModel>, Status> {
        let key = (y, columns.to_vec());
        if let Some(m) = self.models.get(&key) {
            return Ok(m.clone());
        }
        let (n, c, m) = (
            self.n(),
            self.header.columns.len(),
            self.header.y_columns.len(),
        );
        if y as usize >= m {
            return Err(Status::invalid_argument(format!(
                "y column {y} asked, the sample has {m}"
            )));
        }
        if columns.first() != Some(&0) || columns.iter().any(|&k| k as usize >= c) {
            return Err(Status::invalid_argument(format!(
                "X columns {columns:?}: expected the intercept (0) first and indices below {c}"
            )));
        }
        let p = columns.len();
        let mut x = Vec::with_capacity(n * p);
        for i in 0..n {
            x.extend(columns.iter().map(|&k| self.x[i * c + k as usize]));
        }
        let yv: Vec<f64> = (0..n).map(|i| self.y[i * m + y as usize]).collect();
        let names = columns
            .iter()
            .map(|&k| self.header.columns[k as usize].clone())
            .collect();
        let data = GwrData::from_design(
            &self.header.y_columns[y as usize],
            names,
            x,
            yv,
            self.coords.clone(),
        )
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let model = Arc::new(GwrModel::new(data.with_spherical(self.header.spherical)));
        // a few models per sample (one per GWR of the analysis) at most
        if self.models.len() >= 64 {
            self.models.clear();
        }
        self.models.insert(key, model.clone());
        Ok(model)
    }
}

/// A copy of the columns of one factor-table test.
struct FactorColumns {
    y_name: String,
    y: Vec<f64>,
    factor_name: String,
    factor: Vec<f64>,
    coords: Vec<[f64; 2]>,
    spherical: bool,
}

impl FactorColumns {
    /// The permutation fits `start..end` of request `r`, packed (CPU work).
    #[allow(clippy::result_large_err)]
    fn permutation_r2(&self, r: &GwrFitRequest) -> Result<GwrFitReply, Status> {
        let data = gwr::FactorData {
            y_name: &self.y_name,
            y: &self.y,
            factor_name: &self.factor_name,
            factor: &self.factor,
            coords: &self.coords,
            spherical: self.spherical,
        };
        let key = gwr::PermutationKey {
            seed: r.permutation_seed,
            class: r.permutation_class,
            factor: r.permutation_factor,
        };
        let range = r.start as u32..r.end as u32;
        let fits = gwr::null_r2(&data, &weighting_of(r)?, r.bandwidth, key, range);
        let values = gwr::pack_null(&fits, &self.factor_name)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(GwrFitReply {
            stride: gwr::NULL_STRIDE as u32,
            values,
            ..Default::default()
        })
    }
}

/// The GwrWorker service.
#[derive(Clone)]
pub struct GwrService {
    samples: Arc<Mutex<HashMap<String, Arc<Mutex<Sample>>>>>,
    max_bytes: u64,
    max_samples: usize,
}

impl GwrService {
    /// A service holding at most `max_samples` samples of at most `max_bytes` each.
    pub fn new(max_bytes: u64, max_samples: usize) -> Self {
        Self {
            samples: Arc::default(),
            max_bytes,
            max_samples,
        }
    }
}

fn kernel_of(k: i32) -> Result<Kernel, Status> {
    match GwrKernel::try_from(k) {
        Ok(GwrKernel::Bisquare) => Ok(Kernel::Bisquare),
        Ok(GwrKernel::Gaussian) => Ok(Kernel::Gaussian),
        Ok(GwrKernel::Exponential) => Ok(Kernel::Exponential),
        _ => Err(Status::invalid_argument(format!(
            "kernel {k}: expected bisquare, gaussian or exponential"
        ))),
    }
}

/// The reply of a singular local fit, or the error status of other GWR errors.
fn reply_of_error(e: GwrError, model: &GwrModel) -> Result<GwrFitReply, Status> {
    match e {
        GwrError::SingularLocal {
            point,
            column,
            neighbours,
            ..
        } => Ok(GwrFitReply {
            stride: 0,
            values: Vec::new(),
            singular: true,
            singular_point: point as u64,
            singular_column: model
                .data()
                .names()
                .iter()
                .position(|n| *n == column)
                .unwrap_or(0) as u32,
            singular_neighbours: neighbours as u64,
        }),
        other => Err(Status::invalid_argument(other.to_string())),
    }
}

/// The kernel weighting of a request.
#[allow(clippy::result_large_err)]
fn weighting_of(r: &GwrFitRequest) -> Result<Weighting, Status> {
    Ok(Weighting {
        kernel: kernel_of(r.kernel)?,
        adaptive: r.adaptive,
        min_weight: r.min_weight,
    })
}

/// Computes the reply of `r` on `model` (CPU work: call on the blocking pool).
#[allow(clippy::result_large_err)]
fn compute(model: &GwrModel, r: &GwrFitRequest) -> Result<GwrFitReply, Status> {
    let weighting = weighting_of(r)?;
    let (n, p) = (model.data().n(), model.data().p());
    let kind = GwrFitKind::try_from(r.kind).unwrap_or(GwrFitKind::Unspecified);
    let range = r.start as usize..r.end as usize;
    if kind != GwrFitKind::Predict && (range.start > range.end || range.end > n) {
        return Err(Status::invalid_argument(format!(
            "points {}..{} outside the sample's 0..{n}",
            r.start, r.end
        )));
    }
    let ok = |stride: usize, values: Vec<f64>| GwrFitReply {
        stride: stride as u32,
        values,
        ..Default::default()
    };
    let bw = r.bandwidth;
    let res = match kind {
        GwrFitKind::Lite => gwr::lite_fits(model, &weighting, bw, range)
            .map(|f| ok(gwr::LITE_STRIDE, gwr::pack_lite(&f))),
        GwrFitKind::Full => gwr::local_fits(model, &weighting, bw, range)
            .map(|f| ok(gwr::full_stride(p), gwr::pack_full(&f, p))),
        GwrFitKind::LocalR2 => {
            gwr::local_r2(model, &weighting, bw, range, &r.residuals).map(|v| ok(1, v))
        }
        GwrFitKind::Predict => {
            if !r.at.len().is_multiple_of(2) {
                return Err(Status::invalid_argument(
                    "prediction locations: expected x, y pairs",
                ));
            }
            let at: Vec<[f64; 2]> = r.at.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
            gwr::predict(model, &weighting, bw, &at).map(|v| ok(p, v))
        }
        GwrFitKind::PermutationR2 | GwrFitKind::Unspecified => {
            return Err(Status::invalid_argument(format!(
                "fit kind {}: expected lite, full, local R2 or predict",
                r.kind
            )))
        }
    };
    res.or_else(|e| reply_of_error(e, model))
}

#[tonic::async_trait]
impl GwrWorker for GwrService {
    async fn gwr_load(
        &self,
        req: Request<Streaming<GwrLoadChunk>>,
    ) -> Result<Response<GwrLoaded>, Status> {
        let mut stream = req.into_inner();
        let mut sample: Option<Sample> = None;
        let mut received = 0u64;
        while let Some(msg) = stream.next().await {
            match msg?.part {
                Some(gwr_load_chunk::Part::Header(h)) => {
                    if sample.is_some() {
                        return Err(Status::invalid_argument("two GWR sample headers"));
                    }
                    let n = h.points;
                    let (c, m) = (h.columns.len() as u64, h.y_columns.len() as u64);
                    let bytes = n.saturating_mul(c + m + 2).saturating_mul(8);
                    if c == 0 || m == 0 || bytes > self.max_bytes {
                        return Err(Status::invalid_argument(format!(
                            "GWR sample of {n} points, {c} X and {m} Y columns ({bytes} bytes): expected at least one column of each and at most {} bytes",
                            self.max_bytes
                        )));
                    }
                    let n = n as usize;
                    sample = Some(Sample {
                        x: vec![f64::NAN; n * c as usize],
                        y: vec![f64::NAN; n * m as usize],
                        coords: vec![[f64::NAN; 2]; n],
                        header: h,
                        models: HashMap::new(),
                    });
                }
                Some(gwr_load_chunk::Part::Chunk(ch)) => {
                    let s = sample
                        .as_mut()
                        .ok_or_else(|| Status::invalid_argument("GWR data before the header"))?;
                    let off = ch.offset as usize;
                    let dst: &mut [f64] = match GwrArray::try_from(ch.array) {
                        Ok(GwrArray::X) => &mut s.x,
                        Ok(GwrArray::Y) => &mut s.y,
                        Ok(GwrArray::Coords) => s.coords.as_flattened_mut(),
                        _ => {
                            return Err(Status::invalid_argument(format!(
                                "unknown GWR array {}",
                                ch.array
                            )))
                        }
                    };
                    let end = off.saturating_add(ch.values.len());
                    if end > dst.len() {
                        return Err(Status::invalid_argument(format!(
                            "GWR chunk {off}..{end} beyond its array of {} values",
                            dst.len()
                        )));
                    }
                    dst[off..end].copy_from_slice(&ch.values);
                    received += ch.values.len() as u64;
                }
                None => return Err(Status::invalid_argument("empty GWR load message")),
            }
        }
        let s = sample.ok_or_else(|| Status::invalid_argument("no GWR sample header"))?;
        let expected = (s.x.len() + s.y.len() + 2 * s.coords.len()) as u64;
        if received != expected {
            return Err(Status::invalid_argument(format!(
                "GWR sample {}: {received} values received, expected {expected}",
                s.header.sample_id
            )));
        }
        let id = s.header.sample_id.clone();
        let mut map = self
            .samples
            .lock()
            .map_err(|_| Status::internal("GWR store poisoned"))?;
        if !map.contains_key(&id) && map.len() >= self.max_samples {
            return Err(Status::resource_exhausted(format!(
                "this worker holds {} GWR samples, its limit",
                self.max_samples
            )));
        }
        map.insert(id.clone(), Arc::new(Mutex::new(s)));
        tracing::debug!(sample = %id, values = received, "GWR sample loaded");
        Ok(Response::new(GwrLoaded {
            sample_id: id,
            values: received,
        }))
    }

    async fn gwr_fit(&self, req: Request<GwrFitRequest>) -> Result<Response<GwrFitReply>, Status> {
        let r = req.into_inner();
        let sample = self
            .samples
            .lock()
            .map_err(|_| Status::internal("GWR store poisoned"))?
            .get(&r.sample_id)
            .cloned()
            .ok_or_else(|| {
                Status::failed_precondition(format!("no GWR sample {:?} here", r.sample_id))
            })?;
        let reply = tokio::task::spawn_blocking(move || {
            // test builds: a fault test can kill the worker inside a fit request
            flus_shared::hooks::hold(|| {
                let kind = r.kind().as_str_name().trim_start_matches("GWR_FIT_KIND_");
                format!("gwr-fit-{}", kind.to_lowercase())
            });
            let mut sample = sample
                .lock()
                .map_err(|_| Status::internal("GWR sample poisoned"))?;
            if r.kind() == GwrFitKind::PermutationR2 {
                let columns = sample.factor_data(&r)?;
                drop(sample);
                return columns.permutation_r2(&r);
            }
            let model = sample.model(r.y_column, &r.columns)?;
            drop(sample);
            compute(&model, &r)
        })
        .await
        .map_err(|e| Status::internal(format!("GWR task failed: {e}")))??;
        Ok(Response::new(reply))
    }

    async fn gwr_drop(
        &self,
        req: Request<GwrDropRequest>,
    ) -> Result<Response<GwrDropReply>, Status> {
        let id = req.into_inner().sample_id;
        let dropped = self
            .samples
            .lock()
            .map_err(|_| Status::internal("GWR store poisoned"))?
            .remove(&id)
            .is_some();
        Ok(Response::new(GwrDropReply { dropped }))
    }
}
