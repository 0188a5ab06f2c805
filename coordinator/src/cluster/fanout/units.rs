//! Phases whose work comes in independent units (a GWR point range, a training job):
//! the units are dealt to live workers, every worker's calls run at once within the
//! deadline, and by the rule of [`super::Failure::verdict`] a refusal stops the deal
//! while a lost worker is dropped and its unfinished units go to the live ones. Replies
//! are put back in unit order, never in arrival order, so what a phase computes from
//! them does not depend on which worker answered which unit, nor on failures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{refusal_message, timed, Failure, Rpc, Verdict};
use crate::cluster::pool::WorkerConn;

/// How many times a deal gives a worker its data again after it answered that it lacks
/// it ([`Verdict::Stale`]) before dropping it.
pub(crate) const RESENDS: u32 = 2;

/// One worker of a dealing phase.
pub(crate) struct Member {
    /// The connection.
    pub conn: WorkerConn,
    /// Not dropped.
    pub alive: bool,
    /// Holds the data the phase's units need ([`Work::setup`] answered).
    pub ready: bool,
    /// Units dealt to it and not yet ended.
    in_flight: usize,
    /// Units dealt to it so far.
    assigned: usize,
}

/// The workers of a dealing phase: who is alive and holds the phase's data.
pub(crate) struct Members(Vec<Member>);

impl Members {
    /// All of `workers`, alive, none holding the phase's data yet.
    pub(crate) fn new(workers: Vec<WorkerConn>) -> Self {
        Self(
            workers
                .into_iter()
                .map(|conn| Member {
                    conn,
                    alive: true,
                    ready: false,
                    in_flight: 0,
                    assigned: 0,
                })
                .collect(),
        )
    }

    /// The workers, in the order given.
    pub(crate) fn all(&self) -> &[Member] {
        &self.0
    }

    /// How many are alive.
    pub(crate) fn live(&self) -> usize {
        self.0.iter().filter(|m| m.alive).count()
    }

    /// The workers that take the next round of a deal (`spread`: every live one, each
    /// pulling units until none is left; otherwise the live one with the fewest units in
    /// flight, then the fewest so far, then the lowest index), marked busy.
    fn pick(&mut self, spread: bool) -> Vec<usize> {
        let live = (0..self.0.len()).filter(|&w| self.0[w].alive);
        let picked: Vec<usize> = if spread {
            live.collect()
        } else {
            live.min_by_key(|&w| (self.0[w].in_flight, self.0[w].assigned, w))
                .into_iter()
                .collect()
        };
        for &w in &picked {
            self.0[w].in_flight += 1;
            self.0[w].assigned += 1;
        }
        picked
    }
}

/// What a dealing phase says about its units.
pub(crate) trait Work: Send + Sync + 'static {
    /// The reply of one unit.
    type Reply: Send + 'static;
    /// The call of unit `u` for messages (`GwrFit`, `TrainAnn (training job ...)`).
    fn what(&self, u: usize) -> String;
    /// The RPC of unit `u` to worker `conn`.
    fn call(&self, conn: &WorkerConn, u: usize) -> Rpc<Self::Reply>;
    /// Whether the units need data given to each worker first ([`Work::setup`]).
    fn has_setup(&self) -> bool {
        false
    }
    /// The call (named for messages) that gives worker `conn` the data every unit needs,
    /// sent before its first unit and again when it answers that it lacks it
    /// ([`Verdict::Stale`]); None when units carry all their data.
    fn setup(&self, _conn: &WorkerConn) -> Option<(String, Rpc<()>)> {
        None
    }
    /// Logs that the worker at `addr` was dropped (`why`) and its units go elsewhere.
    fn lost(&self, addr: &str, why: &str);
}

/// Why a deal stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A worker refused a call; the message names it, the call and the gRPC code.
    Refused(String),
    /// No live worker is left.
    AllLost,
}

/// What a deal counted.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// Units answered.
    pub answered: u64,
    /// Setup calls answered.
    pub setups: u64,
    /// Units given to another worker after a failure.
    pub moved: u64,
    /// Workers dropped.
    pub lost: u64,
    /// Rounds (each round's workers took units until none was left or they failed).
    pub rounds: u32,
}

/// The replies of a deal in unit order, the worker that answered each, and the counts.
pub(crate) struct Dealt<R> {
    pub replies: Vec<R>,
    pub by: Vec<usize>,
    pub tally: Tally,
}

/// How one worker's part of a round ended.
struct Part<R> {
    w: usize,
    ready: bool,
    setups: u64,
    answers: Vec<(usize, R)>,
    /// The failure that ended it early, with the call that failed.
    failure: Option<(String, Failure)>,
}

/// The queue of units not answered yet.
type Queue = Arc<Mutex<VecDeque<usize>>>;

/// Runs units `0..units` of `work` on `members` until every unit is answered. Each
/// round, the workers picked (`spread`: every live worker, each taking the next unit
/// from a shared queue when it has answered one; otherwise the least busy live worker)
/// run at once, every call within `deadline`. By the one rule a refusal stops the deal;
/// a worker that fails otherwise is dropped, and the unit it held goes back to the
/// queue for the live workers of the next round.
pub(crate) fn deal<W: Work>(
    rt: &tokio::runtime::Handle,
    deadline: Duration,
    members: &Mutex<Members>,
    work: &Arc<W>,
    units: usize,
    spread: bool,
) -> Result<Dealt<W::Reply>, Stop> {
    let queue: Queue = Arc::new(Mutex::new((0..units).collect()));
    let mut answers: Vec<Option<(usize, W::Reply)>> = (0..units).map(|_| None).collect();
    let mut tally = Tally::default();
    while answers.iter().any(Option::is_none) {
        // every unit not answered yet, in unit order (a part that ended put its unit back;
        // one whose task died could not)
        if let Ok(mut q) = queue.lock() {
            *q = (0..units).filter(|&u| answers[u].is_none()).collect();
        }
        let started = {
            let mut m = lock(members);
            let picked = m.pick(spread);
            if picked.is_empty() {
                return Err(Stop::AllLost);
            }
            picked
                .into_iter()
                .map(|w| {
                    let (conn, ready) = (m.0[w].conn.clone(), m.0[w].ready);
                    let part = pull(w, conn, ready, queue.clone(), work.clone(), deadline);
                    (w, rt.spawn(part))
                })
                .collect::<Vec<_>>()
        };
        tally.rounds += 1;
        // joined in the order started, never in arrival order; a task that died is a
        // lost worker
        let parts: Vec<Part<W::Reply>> = started
            .into_iter()
            .map(|(w, h)| {
                rt.block_on(h).unwrap_or_else(|e| Part {
                    w,
                    ready: false,
                    setups: 0,
                    answers: Vec::new(),
                    failure: Some((
                        "the worker's calls".to_string(),
                        Failure::Status(tonic::Status::internal(format!("call task ended: {e}"))),
                    )),
                })
            })
            .collect();
        let refused = settle(
            &mut lock(members),
            parts,
            &mut answers,
            &mut tally,
            &**work,
            deadline,
        );
        if let Some(msg) = refused {
            return Err(Stop::Refused(msg));
        }
    }
    let (by, replies) = answers.into_iter().flatten().unzip();
    Ok(Dealt { replies, by, tally })
}

/// Accounts for the parts of a round: their answers into `answers`, the counts into
/// `tally`, and the one rule for the parts that failed (a lost worker is dropped; a
/// refusal drops nobody). The message of the first refusal, if any.
fn settle<W: Work>(
    m: &mut Members,
    parts: Vec<Part<W::Reply>>,
    answers: &mut [Option<(usize, W::Reply)>],
    tally: &mut Tally,
    work: &W,
    deadline: Duration,
) -> Option<String> {
    let mut refused = None;
    for part in parts {
        let member = &mut m.0[part.w];
        member.in_flight -= 1;
        member.ready = part.ready;
        tally.setups += part.setups;
        tally.answered += part.answers.len() as u64;
        for (u, r) in part.answers {
            answers[u] = Some((part.w, r));
        }
        let Some((what, failure)) = part.failure else {
            continue;
        };
        if let (Verdict::Refused, Failure::Status(e)) = (failure.verdict(), &failure) {
            let mut notes = crate::cluster::cause::Refusals::default();
            let addr = &member.conn.addr;
            refused.get_or_insert_with(|| refusal_message(&mut notes, addr, &what, e));
            continue;
        }
        work.lost(&member.conn.addr, &failure.describe(deadline));
        member.alive = false;
        member.ready = false;
        tally.lost += 1;
        tally.moved += 1;
    }
    refused
}

fn lock(members: &Mutex<Members>) -> std::sync::MutexGuard<'_, Members> {
    // the members are flags and counters, consistent at every unlock
    members.lock().unwrap_or_else(|e| e.into_inner())
}

/// Worker `w`'s part of a round: takes units from `queue` until none is left, giving the
/// worker the phase's data first when it lacks it. A unit whose call fails goes back to
/// the queue and ends the part, unless the worker only lacked the data and the phase can
/// give it again (at most [`RESENDS`] times).
async fn pull<W: Work>(
    w: usize,
    conn: WorkerConn,
    ready: bool,
    queue: Queue,
    work: Arc<W>,
    deadline: Duration,
) -> Part<W::Reply> {
    let _busy = crate::cluster::busy::enter();
    let mut part = Part {
        w,
        ready,
        setups: 0,
        answers: Vec::new(),
        failure: None,
    };
    let mut resends = 0;
    while let Some(u) = queue.lock().ok().and_then(|mut q| q.pop_front()) {
        let failure = match step(&mut part, &conn, u, &*work, deadline).await {
            Ok(()) => continue,
            Err((what, f)) => (what, f),
        };
        if let Ok(mut q) = queue.lock() {
            q.push_front(u);
        }
        if failure.1.verdict() == Verdict::Stale && work.has_setup() && resends < RESENDS {
            // the worker lost the data (restarted): give it again
            resends += 1;
            part.ready = false;
            continue;
        }
        part.failure = Some(failure);
        break;
    }
    part
}

/// Unit `u` on the worker of `part`, after the phase's data when it lacks it.
async fn step<W: Work>(
    part: &mut Part<W::Reply>,
    conn: &WorkerConn,
    u: usize,
    work: &W,
    deadline: Duration,
) -> Result<(), (String, Failure)> {
    if !part.ready {
        if let Some((what, setup)) = work.setup(conn) {
            timed(deadline, setup).await.map_err(|f| (what, f))?;
            part.setups += 1;
        }
        part.ready = true;
    }
    let r = timed(deadline, work.call(conn, u))
        .await
        .map_err(|f| (work.what(u), f))?;
    part.answers.push((u, r));
    Ok(())
}
