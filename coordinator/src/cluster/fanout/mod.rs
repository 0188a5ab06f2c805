//! The one fan-out layer of every phase (tile loading and the CA steps of
//! [`super::remote`], the GWR fits of [`super::gwr_remote`], the training jobs of
//! [`super::train_remote`]): boxed RPCs, each within the deadline ([`timed`]), a
//! worker's calls of one phase started on the runtime with every other worker's and
//! joined in the order they were given ([`start`], [`join`]), and the one rule that
//! says what a failed call means ([`Failure::verdict`]): a refusal stops the phase with
//! the worker's message ([`refusal_message`]), any other failure drops the worker and
//! its work goes to the live ones. Phases whose work comes in independent units (a GWR
//! point range, a training job) hand them to [`units::deal`], which also keeps who is
//! alive and moves a lost worker's units; the CA moves a lost worker's tiles itself
//! (they must be re-sent before they can be stepped).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

pub(crate) mod units;

#[cfg(test)]
mod tests;

/// One RPC to a worker, boxed so that calls of different kinds share one helper.
pub(crate) type Rpc<T> =
    Pin<Box<dyn Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send>>;

/// `rpc` with its reply turned by `f`, so calls of different kinds can follow one
/// another in one [`Calls`].
pub(crate) fn map_reply<T: Send + 'static, U: 'static>(rpc: Rpc<T>, f: fn(T) -> U) -> Rpc<U> {
    Box::pin(async move { rpc.await.map(|r| r.map(f)) })
}

/// The calls of one phase to worker `w`, run one after another (each within the
/// deadline); the first that fails ends them.
pub(crate) struct Calls<T> {
    pub w: usize,
    pub what: String,
    pub rpcs: Vec<Rpc<T>>,
}

/// Why a worker's calls ended early.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No answer within the deadline (ours, or the worker's grpc-timeout).
    Deadline,
    /// The worker (or the transport) answered with an error.
    Status(tonic::Status),
}

/// What the one rule makes of a failed call ([`Failure::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An answer any worker would give as well ([`super::pool::is_refusal`]: bad input,
    /// a refused token or path): moving the work cannot help, the phase stops.
    Refused,
    /// The worker answers but lacks the data the phase gave it earlier
    /// (FAILED_PRECONDITION: it restarted). A phase that can give it again
    /// ([`units::Work::setup`]) does so, at most [`units::RESENDS`] times per worker and
    /// deal; any other phase drops it like a lost worker.
    Stale,
    /// Unreachable, past the deadline, an internal error: the worker is dropped and its
    /// work goes to the live ones.
    Lost,
}

impl Failure {
    /// The one rule of every phase for a failed call.
    pub(crate) fn verdict(&self) -> Verdict {
        match self {
            Failure::Deadline => Verdict::Lost,
            Failure::Status(e) if super::pool::is_refusal(e) => Verdict::Refused,
            Failure::Status(e) if e.code() == tonic::Code::FailedPrecondition => Verdict::Stale,
            Failure::Status(_) => Verdict::Lost,
        }
    }

    /// The failure for logs: the deadline missed, or the gRPC code and message.
    pub(crate) fn describe(&self, deadline: Duration) -> String {
        match self {
            Failure::Deadline => format!("no answer within the deadline of {deadline:?}"),
            Failure::Status(e) => format!("{:?}: {}", e.code(), e.message()),
        }
    }
}

/// The message of a phase stopped by a refusal of `what` from the worker at `addr`:
/// the gRPC code, the worker's words and, when a resume cannot cure it (a token, a
/// limit), what to do instead (see [`super::cause::Refusals`]).
pub(crate) fn refusal_message(
    refusals: &mut super::cause::Refusals,
    addr: &str,
    what: &str,
    e: &tonic::Status,
) -> String {
    refusals.note(addr, what, e);
    refusals.explain(format!(
        "worker {addr} refused {what}: {}: {}",
        super::cause::code_name(e.code()),
        e.message()
    ))
}

/// Each worker's replies of a phase, in the order of its calls; `Err` for a worker
/// that failed.
pub(crate) type Replies<T> = Vec<(usize, Result<Vec<T>, ()>)>;

/// Calls started on the runtime, not yet waited for: `(worker, what, task)`.
pub(crate) type InFlight<T> = Vec<(
    usize,
    String,
    tokio::task::JoinHandle<(Vec<T>, Option<Failure>)>,
)>;

/// Boxes the RPC that `f` makes with a clone of `client`.
pub(crate) fn rpc<C, T, F, Fut>(client: &C, f: F) -> Rpc<T>
where
    C: Clone + Send + 'static,
    F: FnOnce(C) -> Fut + Send + 'static,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
{
    let c = client.clone();
    Box::pin(async move { f(c).await })
}

/// A tonic request that carries the deadline (the worker sees it as grpc-timeout).
pub(crate) fn request<M>(deadline: Duration, msg: M) -> tonic::Request<M> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(deadline);
    r
}

/// Awaits `rpc` within `deadline` (run inside the runtime: the timer is made there).
/// A failure that comes at or after the deadline is the deadline's (tonic enforces it
/// too, as grpc-timeout), whatever status it carries.
pub(crate) async fn timed<T>(deadline: Duration, rpc: Rpc<T>) -> Result<T, Failure> {
    let started = Instant::now();
    match tokio::time::timeout(deadline, rpc).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(_)) if started.elapsed() >= deadline => Err(Failure::Deadline),
        Ok(Err(e)) => Err(Failure::Status(e)),
        Err(_) => Err(Failure::Deadline),
    }
}

/// Starts `calls` on `rt`, every worker's at once (each RPC within `deadline`, a
/// worker's RPCs one after another).
pub(crate) fn start<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    deadline: Duration,
    calls: Vec<Calls<T>>,
) -> InFlight<T> {
    calls
        .into_iter()
        .map(|c| {
            let rpcs = c.rpcs;
            let job = rt.spawn(async move {
                let _busy = super::busy::enter();
                let mut out = Vec::with_capacity(rpcs.len());
                for rpc in rpcs {
                    match timed(deadline, rpc).await {
                        Ok(r) => out.push(r),
                        Err(f) => return (out, Some(f)),
                    }
                }
                (out, None)
            });
            (c.w, c.what, job)
        })
        .collect()
}

/// Calls that ended: `(worker, what, replies, why they ended early)`.
pub(crate) type Joined<T> = Vec<(usize, String, Vec<T>, Option<Failure>)>;

/// Waits for calls started by [`start`], in the order they were given. Blocks the
/// calling thread (never a runtime thread); holds no lock, so several runs of a session
/// wait for their calls at once.
pub(crate) fn join<T>(rt: &tokio::runtime::Handle, calls: InFlight<T>) -> Joined<T> {
    calls
        .into_iter()
        .map(|(w, what, job)| {
            let (out, failure) = rt.block_on(job).unwrap_or_else(|e| {
                let msg = format!("call task ended: {e}");
                (
                    Vec::new(),
                    Some(Failure::Status(tonic::Status::internal(msg))),
                )
            });
            (w, what, out, failure)
        })
        .collect()
}

/// Calls whose failure changes nothing (dropping a sample, asking for statistics): every
/// worker's at once within `deadline`, joined in the order given; per call its first
/// reply, or None when it failed (logged, no verdict: the work is done either way).
pub(crate) fn best_effort<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    deadline: Duration,
    calls: Vec<Calls<T>>,
) -> Vec<Option<T>> {
    join(rt, start(rt, deadline, calls))
        .into_iter()
        .map(|(w, what, out, failure)| {
            if let Some(f) = failure {
                tracing::debug!(worker = w, "{what}: {}", f.describe(deadline));
            }
            out.into_iter().next()
        })
        .collect()
}
