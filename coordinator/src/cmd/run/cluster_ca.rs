//! The CA over the workers: sessions (the tiles of one network, loaded once), the runs
//! in them on lanes of their own, checkpoints and resume; and the networks trained on
//! the workers.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use flus_shared::ca::{self, engine, CaInput};
use flus_shared::config::Study;
use flus_shared::{model, stack};

use super::super::common;
use super::checkpoints::{checkpoint_path, clear_checkpoints, load_checkpoint, CheckpointWriter};
use super::setup::tiling_for;
use crate::cluster::train_remote::Trainers;
use crate::cluster::{pool, remote};
use crate::run_guard;

/// The CA over the workers: sessions (the tiles of one network, loaded once) and the
/// runs in them, with checkpoints every few iterations and resume from the last one.
pub(super) struct ClusterCa<'a> {
    pub(super) rt: &'a tokio::runtime::Runtime,
    pub(super) conns: &'a [pool::WorkerConn],
    pub(super) out: &'a Path,
    pub(super) tiles: usize,
    pub(super) deadline: Duration,
    pub(super) every: u32,
    pub(super) resume: bool,
    pub(super) rejoin_probe: Option<Duration>,
    pub(super) files: Option<Vec<crate::cluster::wire::LayerFile>>,
    /// SHA-256 of the study file and the seed: with the label, whom a checkpoint is of.
    pub(super) study_sha256: &'a str,
    pub(super) seed: u64,
    /// CA runs of one session at once (`--concurrent-runs`).
    pub(super) concurrent: usize,
    /// Set when a part of the run failed: every run stops at its next iteration and no
    /// session opens ([`ClusterCa::stop`]).
    pub(super) stop: AtomicBool,
}

impl ClusterCa<'_> {
    /// Stops every CA run of this cluster at its next iteration (with
    /// [`flus_shared::Error::Stopped`]) and refuses new sessions: a part of the run
    /// failed, so the others end soon instead of running to their end.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether [`Self::stop`] was called.
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The error to report when a part of the run failed with `e` and another part, waited
/// for since, ended with `other`: the other's own failure when `e` only says that this
/// part was stopped because of it, else `e`.
pub(super) fn cause<T>(e: anyhow::Error, other: anyhow::Result<T>) -> anyhow::Error {
    match other {
        Err(o) if is_stopped(&e) && !is_stopped(&o) => o,
        _ => e,
    }
}

/// Whether `e` is [`flus_shared::Error::Stopped`]: this part was stopped because
/// another failed, whose error is the one to report.
pub(super) fn is_stopped(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<flus_shared::Error>(),
            Some(flus_shared::Error::Stopped(_))
        )
    })
}

/// CA runs of a session at once when `--concurrent-runs` is not given (fewer when the
/// session has fewer runs).
pub const DEFAULT_CONCURRENT_RUNS: usize = 8;

/// The ANN of the map of `year` trained on a worker (`job` names it): the sample drawn
/// here ([`model::training_set`]), the network fitted there with the bits of
/// [`model::train`]; `drawn` is called once the sample is drawn (or its draw failed).
pub(super) fn train_on_workers(
    trainers: &Trainers,
    study: &Study,
    st: &stack::Stack,
    (year, job): (i32, &str),
    drawn: &dyn Fn(),
) -> anyhow::Result<flus_shared::ann::TrainedAnn> {
    let t0 = Instant::now();
    let set = model::training_set(study, st, year);
    drawn();
    let set = set?;
    let prepare = t0.elapsed().as_secs_f64();
    tracing::info!(
        job,
        rows = set.train.cells.len() + set.holdout.cells.len(),
        bytes = set.row_bytes(),
        prepare_seconds = prepare,
        "ANN training set drawn; training on a worker"
    );
    let settings = model::ann_settings(study);
    trainers.train_ann(job, &set, &settings, study.config.study.seed, prepare)
}

/// The suitability of the scenarios: an ANN trained on a worker, a given raster, or the LEAS
/// forests trained before the validation (PLUS mode).
/// Where a session's suitability comes from.
#[derive(Clone, Copy)]
pub(super) enum SuitabilitySource<'a> {
    /// The workers compute it from this network and their tiles' drivers.
    Network(&'a flus_shared::ann::Network),
    /// A given raster (`[ann] suitability`, `[ann] validation_suitability`), cell-major,
    /// sent to the workers with the tiles.
    Given(&'a [f32]),
}

/// The largest suitability per class over the cells a CA may change (valid, not
/// restricted) of a cell-major suitability held here.
pub(super) fn free_maxima_here(values: &[f32], st: &stack::Stack, k: usize) -> Vec<f32> {
    let free: Vec<bool> = st
        .mask
        .iter()
        .zip(&st.restricted)
        .map(|(&v, &r)| v && !r)
        .collect();
    flus_shared::ann::max_suitability_per_class(values, &free, k)
}

/// A session shared by the runs that proceed in it at once (each on its own lane).
pub(super) type Session<'s> = std::sync::Mutex<remote::Remote<'s>>;

/// An open session and its start map padded by the halo (kept until the session's
/// first-load work is done: base counts; then dropped).
pub(super) struct OpenSession<'s> {
    pub(super) remote: remote::Remote<'s>,
    pub(super) padded_start: Vec<u8>,
    pub(super) stride: usize,
}

impl ClusterCa<'_> {
    /// Opens the session `name` from the start map `start`: every tile (class window,
    /// static layers) is sent once and its suitability computed on its worker from the
    /// network, or sent with it when the suitability is given; the CA runs with
    /// neighbourhood radius up to `radius` and `k` classes.
    pub(super) fn open<'s>(
        &self,
        name: &str,
        start: &'s [u8],
        restricted: &'s [bool],
        (k, radius): (usize, usize),
        suitability: SuitabilitySource<'s>,
        st: &'s stack::Stack,
    ) -> anyhow::Result<OpenSession<'s>> {
        if self.stopped() {
            return Err(flus_shared::Error::Stopped(format!(
                "session {name}: another part of the run failed"
            ))
            .into());
        }
        let (width, height) = (st.grid.width, st.grid.height);
        let tiling = tiling_for(self.tiles, width, height);
        let rects = tiling.rects(width, height)?;
        let layers = remote::StaticLayers {
            start,
            restricted,
            drivers: &st.drivers,
            suitability: match suitability {
                SuitabilitySource::Given(v) => Some(v),
                SuitabilitySource::Network(_) => None,
            },
            zones: st.zones.as_deref(),
        };
        let mut backend = remote::Remote::new(
            self.rt.handle().clone(),
            self.conns.to_vec(),
            rects,
            height,
            k,
            radius,
            format!("{name}-{}", std::process::id()),
            self.deadline,
            layers,
        );
        backend.set_rejoin_probe(self.rejoin_probe);
        if let SuitabilitySource::Network(network) = suitability {
            backend.set_network(serde_json::to_vec(network)?);
            // workers that read their layers from files (the suitability is shipped)
            if let Some(f) = &self.files {
                backend.set_files(f.clone());
            }
        }
        let padded_start = ca::pad(start, width, height, radius)?;
        let mut session = OpenSession {
            remote: backend,
            padded_start,
            stride: width + 2 * radius,
        };
        session
            .remote
            .open()
            .with_context(|| format!("session {name}: loading the tiles"))?;
        tracing::info!(
            session = name,
            bytes = session.remote.session.first_load_bytes,
            secs = session.remote.session.load_seconds,
            "session open: tiles loaded and their suitability computed on the workers"
        );
        Ok(session)
    }

    /// One CA run `label` in `session` on a lane of its own (other runs of the session
    /// may run at once from other threads), from `input.classes` or from its checkpoint;
    /// returns its output, traffic and the workers' cell counts per (zone, class) of the
    /// final map.
    pub(super) fn run(
        &self,
        session: &Session<'_>,
        label: &str,
        params: &ca::CaParams,
        input: &CaInput,
    ) -> anyhow::Result<(
        ca::CaOutput,
        remote::Traffic,
        flus_shared::tables::ZoneCounts,
    )> {
        session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .session
            .runs += 1;
        let mut lane = remote::RunLane::new(session, label);
        if input.quota.is_some() {
            // transition mode: the workers skip the cells off the run's start map (a
            // later stage starts from the previous stage's map, not the session's)
            lane.set_run_start(input.classes);
        }
        tracing::debug!(label, lane = lane.lane(), "run on its lane of the session");
        let backend = &mut lane;
        let cp_path = checkpoint_path(self.out, label);
        let identity = run_guard::identity(self.study_sha256, self.seed, label);
        let resume = if self.resume {
            run_guard::resume_from(&cp_path, &identity)?
        } else {
            None
        };
        if let Some(c) = &resume {
            tracing::info!(label, iteration = c.t, "resuming from checkpoint");
        }
        let every = self.every.max(1);
        let mut progress = common::progress_logger(label.to_string(), params.max_iterations);
        // built on this thread (a copy of the map), serialised and written on another
        // while the workers step the next iterations
        let mut writer = CheckpointWriter::new(cp_path.clone());
        let mut checkpoint = |t: u32, make: &dyn Fn() -> engine::Checkpoint| {
            // another part of the run failed: its error is the one reported
            if self.stopped() {
                return Err(flus_shared::Error::Stopped(format!(
                    "{label} at iteration {t}: another part of the run failed"
                )));
            }
            if t.is_multiple_of(every) {
                let mut c = make();
                c.identity = Some(identity.clone());
                writer.submit(c)?;
            }
            Ok(())
        };
        let started = Instant::now();
        let res = engine::run_loop(
            params,
            input,
            backend,
            resume,
            &mut progress,
            &mut checkpoint,
        );
        // the last checkpoint is on disk before the result is reported or cleared
        let written = writer.finish();
        let out = match res.and_then(|o| written.map(|_| o)) {
            Ok(out) => out,
            Err(e) => {
                let kept = match load_checkpoint(&cp_path) {
                    Ok(Some(c)) => format!(
                        "{label} stopped; checkpoint {} (iteration {}) kept",
                        cp_path.display(),
                        c.t
                    ),
                    _ => format!("{label} stopped before its first checkpoint"),
                };
                return Err(anyhow::Error::new(e).context(kept));
            }
        };
        // carbon partial sums: cell counts per (zone, class) of the workers' final maps
        let r = params.radius();
        let padded = ca::pad(&out.map, input.width, input.height, r)?;
        let counts = backend.carbon_counts(&engine::MapView {
            padded: &padded,
            stride: input.width + 2 * r,
        })?;
        backend.traffic().seconds.total = started.elapsed().as_secs_f64();
        let traffic = backend.traffic().clone();
        clear_checkpoints(&cp_path);
        Ok((out, traffic, counts))
    }
}
