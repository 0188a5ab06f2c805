//! The session's calls through the fan-out layer ([`crate::cluster::fanout`]): started
//! on every worker at once, joined in the order given, each failure judged by the one
//! rule (a refusal stops the run with its message; a lost worker is dropped by the
//! caller, whose tiles then move).

use super::super::fanout::{self, join, Calls, Failure, InFlight, Replies, Rpc, Verdict};
use super::Remote;

impl Remote<'_> {
    /// Starts `calls` on the runtime, every worker's at once (each RPC within the
    /// deadline, a worker's RPCs one after another).
    pub(super) fn start<T: Send + 'static>(&self, calls: Vec<Calls<T>>) -> InFlight<T> {
        fanout::start(&self.rt, self.deadline, calls)
    }

    /// Waits for calls started by [`Self::start`] (holding the session: for the
    /// session's own work) and accounts for them ([`Self::account`]).
    pub(super) fn wait<T>(&mut self, calls: InFlight<T>) -> Replies<T> {
        let joined = join(&self.rt, calls);
        self.account(joined)
    }

    /// Each worker's replies of calls that ended, in the order the calls were given
    /// (never in arrival order), or `Err` for a worker that failed or missed the
    /// deadline (logged with its reason and address).
    pub(super) fn account<T>(&mut self, joined: fanout::Joined<T>) -> Replies<T> {
        let deadline = self.deadline;
        joined
            .into_iter()
            .map(|(w, what, out, failure)| {
                let s = &mut self.traffic.per_worker[w];
                s.calls += out.len() as u64;
                s.calls_since_rejoin += out.len() as u64;
                let Some(failure) = failure else {
                    return (w, Ok(out));
                };
                let addr = &self.workers[w].conn.addr;
                let why = failure.describe(deadline);
                match (failure.verdict(), failure) {
                    (Verdict::Refused, Failure::Status(e)) => {
                        // any worker would answer so: the run stops with the message
                        let m = fanout::refusal_message(&mut self.refusals, addr, &what, &e);
                        self.refused.get_or_insert(m);
                    }
                    // lost, or a restarted worker without the session's tiles: the caller
                    // drops it and moves its tiles (a rejoin brings it back)
                    (_, Failure::Deadline) => {
                        tracing::warn!(worker = %addr, "{what}: {why}");
                    }
                    (_, Failure::Status(e)) => {
                        tracing::warn!(worker = %addr, "{what} failed: {why}");
                        self.refusals.note(addr, &what, &e);
                    }
                }
                (w, Err(()))
            })
            .collect()
    }

    /// Runs `calls` (several workers at once) and waits for all of them: the one helper
    /// every phase goes through. Replies come back in the order of `calls`; a refusal
    /// ([`crate::cluster::pool::is_refusal`]) is an error, other failures are `Err(())` for the
    /// caller to drop the worker.
    pub(super) fn call<T: Send + 'static>(
        &mut self,
        calls: Vec<Calls<T>>,
    ) -> flus_shared::Result<Replies<T>> {
        let started = self.start(calls);
        let out = self.wait(started);
        self.check_refused()?;
        Ok(out)
    }

    /// The error of a refusal seen by [`Self::wait`], if any.
    pub(super) fn check_refused(&mut self) -> flus_shared::Result<()> {
        match self.refused.take() {
            Some(m) => Err(flus_shared::Error::Data(self.refusals.explain(m))),
            None => Ok(()),
        }
    }

    /// One RPC to worker `w` through [`Self::call`]; `Ok(Err(()))` when it failed.
    pub(super) fn call_one<T: Send + 'static>(
        &mut self,
        w: usize,
        what: &str,
        rpc: Rpc<T>,
    ) -> flus_shared::Result<Result<T, ()>> {
        let mut r = self.call(vec![Calls {
            w,
            what: what.to_string(),
            rpcs: vec![rpc],
        }])?;
        Ok(match r.pop() {
            Some((_, Ok(mut v))) => v.pop().ok_or(()),
            _ => Err(()),
        })
    }

    /// The workers whose calls failed in `results`.
    pub(super) fn failed<T>(results: &[(usize, Result<T, ()>)]) -> Vec<usize> {
        results
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|&(w, _)| w)
            .collect()
    }
}
