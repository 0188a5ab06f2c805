//! The one fan-out layer of the remote CA: boxed RPCs, a worker's calls of one phase,
//! and starting them on the runtime (every worker at once) and joining them in the
//! order they were given, never in arrival order.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// One RPC to a worker, boxed so that calls of different kinds share one helper.
pub(super) type Rpc<T> =
    Pin<Box<dyn Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send>>;

/// `rpc` with its reply turned by `f`, so calls of different kinds can follow one
/// another in one [`Calls`].
pub(super) fn map_reply<T: Send + 'static, U: 'static>(rpc: Rpc<T>, f: fn(T) -> U) -> Rpc<U> {
    Box::pin(async move { rpc.await.map(|r| r.map(f)) })
}

/// The calls of one phase to worker `w`, run one after another (each within the
/// deadline); the first that fails ends them.
pub(super) struct Calls<T> {
    pub w: usize,
    pub what: String,
    pub rpcs: Vec<Rpc<T>>,
}

/// Why a worker's calls ended early.
pub(super) enum Failure {
    Deadline,
    Status(tonic::Status),
}

/// Each worker's replies of a phase, in the order of its calls; `Err` for a worker
/// that failed.
pub(super) type Replies<T> = Vec<(usize, Result<Vec<T>, ()>)>;

/// Calls started on the runtime, not yet waited for: `(worker, what, task)`.
pub(super) type InFlight<T> = Vec<(
    usize,
    String,
    tokio::task::JoinHandle<(Vec<T>, Option<Failure>)>,
)>;

/// Boxes the RPC that `f` makes with a clone of `client`.
pub(super) fn rpc<C, T, F, Fut>(client: &C, f: F) -> Rpc<T>
where
    C: Clone + Send + 'static,
    F: FnOnce(C) -> Fut + Send + 'static,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
{
    let c = client.clone();
    Box::pin(async move { f(c).await })
}

/// A tonic request that carries the deadline (the worker sees it as grpc-timeout).
pub(super) fn request<M>(deadline: Duration, msg: M) -> tonic::Request<M> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(deadline);
    r
}

/// Starts `calls` on `rt`, every worker's at once (each RPC within `deadline`, a
/// worker's RPCs one after another).
pub(super) fn start<T: Send + 'static>(
    rt: &tokio::runtime::Handle,
    deadline: Duration,
    calls: Vec<Calls<T>>,
) -> InFlight<T> {
    calls
        .into_iter()
        .map(|c| {
            let rpcs = c.rpcs;
            // the timers are made inside the runtime
            let job = rt.spawn(async move {
                let _busy = super::super::busy::enter();
                let mut out = Vec::with_capacity(rpcs.len());
                for rpc in rpcs {
                    let started = Instant::now();
                    match tokio::time::timeout(deadline, rpc).await {
                        Ok(Ok(r)) => out.push(r.into_inner()),
                        // tonic enforces the deadline too (grpc-timeout): name it the same way
                        Ok(Err(_)) | Err(_) if started.elapsed() >= deadline => {
                            return (out, Some(Failure::Deadline))
                        }
                        Ok(Err(e)) => return (out, Some(Failure::Status(e))),
                        Err(_) => return (out, Some(Failure::Deadline)),
                    }
                }
                (out, None)
            });
            (c.w, c.what, job)
        })
        .collect()
}

/// Calls that ended: `(worker, what, replies, why they ended early)`.
pub(super) type Joined<T> = Vec<(usize, String, Vec<T>, Option<Failure>)>;

/// Waits for calls started by [`start`], in the order they were given. Blocks the
/// calling thread (never a runtime thread); holds no lock, so several runs of a session
/// wait for their calls at once.
pub(super) fn join<T>(rt: &tokio::runtime::Handle, calls: InFlight<T>) -> Joined<T> {
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
