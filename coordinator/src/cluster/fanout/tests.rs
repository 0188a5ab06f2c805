//! The one rule of the fan-out layer against in-process gRPC workers on 127.0.0.1:0:
//! a refusal stops the deal naming the worker and the call and drops nobody; a worker
//! that is unavailable or misses the deadline is dropped and its units are answered by
//! the live ones, in unit order; a worker that lost the phase's data gets it again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flus_proto::v1::gwr_worker_server::{GwrWorker, GwrWorkerServer};
use flus_proto::v1::health_server::{Health, HealthServer};
use flus_proto::v1::{
    GwrDropReply, GwrDropRequest, GwrFitReply, GwrFitRequest, GwrLoadChunk, GwrLoaded,
    HealthRequest, HealthResponse,
};
use tonic::{Request, Response, Status, Streaming};

use super::units::{deal, Members, Stop, Work};
use super::{map_reply, request, rpc, Failure, Rpc, Verdict};
use crate::cluster::pool::{self, WorkerConn};

/// How a test worker answers GwrFit.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Values 2 i + 0.5 for every point i of the range.
    Answer,
    /// INVALID_ARGUMENT (an answer any worker would give).
    Refuse,
    /// UNAVAILABLE.
    Unavailable,
    /// Never answers.
    Hang,
    /// FAILED_PRECONDITION for its first fit (as a restarted worker without the
    /// sample), then answers.
    Forget,
}

#[derive(Clone)]
struct TestWorker {
    mode: Mode,
    loads: Arc<AtomicUsize>,
    fits: Arc<AtomicUsize>,
    /// Fit calls received by the workers that do not answer (shared by all of them), and
    /// how many an answering worker waits for before its first answer: so every failing
    /// worker surely gets a unit before the answering ones take them all.
    failing: Arc<tokio::sync::watch::Sender<usize>>,
    wait_for: usize,
}

#[tonic::async_trait]
impl Health for TestWorker {
    async fn check(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        Ok(Response::new(HealthResponse {
            status: "SERVING".into(),
            protocol: flus_proto::PROTOCOL_REVISION,
            threads: 1,
            ..Default::default()
        }))
    }
}

#[tonic::async_trait]
impl GwrWorker for TestWorker {
    async fn gwr_load(
        &self,
        req: Request<Streaming<GwrLoadChunk>>,
    ) -> Result<Response<GwrLoaded>, Status> {
        let mut s = req.into_inner();
        while s.message().await?.is_some() {}
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(GwrLoaded::default()))
    }

    async fn gwr_fit(&self, req: Request<GwrFitRequest>) -> Result<Response<GwrFitReply>, Status> {
        let r = req.into_inner();
        let n = self.fits.fetch_add(1, Ordering::SeqCst);
        if matches!(self.mode, Mode::Refuse | Mode::Unavailable | Mode::Hang) {
            self.failing.send_modify(|c| *c += 1);
        } else {
            let mut seen = self.failing.subscribe();
            let _ = seen.wait_for(|&c| c >= self.wait_for).await;
        }
        match self.mode {
            Mode::Refuse => return Err(Status::invalid_argument("no such Y column")),
            Mode::Unavailable => return Err(Status::unavailable("connection reset")),
            Mode::Hang => std::future::pending::<()>().await,
            Mode::Forget if n == 0 => return Err(Status::failed_precondition("no GWR sample")),
            Mode::Answer | Mode::Forget => {}
        }
        Ok(Response::new(GwrFitReply {
            stride: 1,
            values: (r.start..r.end).map(|i| 2.0 * i as f64 + 0.5).collect(),
            ..Default::default()
        }))
    }

    async fn gwr_drop(&self, _: Request<GwrDropRequest>) -> Result<Response<GwrDropReply>, Status> {
        Ok(Response::new(GwrDropReply { dropped: true }))
    }
}

/// Test workers of `modes` served on 127.0.0.1:0, connected: the runtime, the
/// connections and each worker's counters. Answering workers answer once every failing
/// worker (Refuse, Unavailable, Hang) has received a fit call.
/// Callers hold [`crate::cluster::busy::TEST_SERIAL`] (their calls count busy time).
fn workers(modes: &[Mode]) -> (tokio::runtime::Runtime, Vec<WorkerConn>, Vec<TestWorker>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut conns = Vec::new();
    let mut servers = Vec::new();
    let failing = Arc::new(tokio::sync::watch::channel(0).0);
    let wait_for = modes
        .iter()
        .filter(|m| matches!(m, Mode::Refuse | Mode::Unavailable | Mode::Hang))
        .count();
    for &mode in modes {
        let w = TestWorker {
            mode,
            loads: Arc::default(),
            fits: Arc::default(),
            failing: failing.clone(),
            wait_for,
        };
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let router = tonic::transport::Server::builder()
            .add_service(HealthServer::new(w.clone()))
            .add_service(GwrWorkerServer::new(w.clone()));
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        rt.spawn(router.serve_with_incoming(incoming));
        let tls = pool::Tls::default();
        let conn = rt
            .block_on(pool::connect(&addr, "t", Duration::from_secs(5), &tls))
            .unwrap();
        conns.push(conn);
        servers.push(w);
    }
    (rt, conns, servers)
}

/// Units of 3 points each (unit u: points 3u..3u+3), after a GwrLoad per worker.
struct Ranges {
    deadline: Duration,
}

impl Work for Ranges {
    type Reply = GwrFitReply;

    fn what(&self, u: usize) -> String {
        format!("GwrFit {}..{}", 3 * u, 3 * u + 3)
    }

    fn call(&self, conn: &WorkerConn, u: usize) -> Rpc<GwrFitReply> {
        let req = request(
            self.deadline,
            GwrFitRequest {
                start: 3 * u as u64,
                end: 3 * u as u64 + 3,
                ..Default::default()
            },
        );
        rpc(&conn.gwr, |mut c| async move { c.gwr_fit(req).await })
    }

    fn has_setup(&self) -> bool {
        true
    }

    fn setup(&self, conn: &WorkerConn) -> Option<(String, Rpc<()>)> {
        let req = request(
            self.deadline,
            tokio_stream::iter(Vec::<GwrLoadChunk>::new()),
        );
        let load = rpc(&conn.gwr, |mut c| async move { c.gwr_load(req).await });
        Some(("the sample (GwrLoad)".into(), map_reply(load, |_| ())))
    }

    fn lost(&self, _: &str, _: &str) {}
}

/// The values of `units` units of 3 points: 2 i + 0.5 for point i, worked out here.
fn expected(units: usize) -> Vec<f64> {
    (0..3 * units).map(|i| 2.0 * i as f64 + 0.5).collect()
}

/// The busy-time test's lock, held while a test makes calls.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    crate::cluster::busy::TEST_SERIAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

const DEADLINE: Duration = Duration::from_millis(700);

#[test]
fn the_rule_refuses_bad_input_and_drops_a_worker_for_anything_else() {
    let status = |c: tonic::Code| Failure::Status(tonic::Status::new(c, "x")).verdict();
    for c in [
        tonic::Code::InvalidArgument,
        tonic::Code::Unauthenticated,
        tonic::Code::PermissionDenied,
    ] {
        assert_eq!(status(c), Verdict::Refused, "{c:?}");
    }
    for c in [
        tonic::Code::Unavailable,
        tonic::Code::Internal,
        tonic::Code::ResourceExhausted,
        tonic::Code::Unknown,
        tonic::Code::Cancelled,
    ] {
        assert_eq!(status(c), Verdict::Lost, "{c:?}");
    }
    assert_eq!(status(tonic::Code::FailedPrecondition), Verdict::Stale);
    assert_eq!(Failure::Deadline.verdict(), Verdict::Lost);
}

#[test]
fn an_unavailable_or_silent_worker_is_dropped_and_the_others_answer_its_units_in_order() {
    let _serial = serial();
    let (rt, conns, servers) = workers(&[Mode::Unavailable, Mode::Answer, Mode::Hang]);
    let members = Mutex::new(Members::new(conns));
    let work = Arc::new(Ranges { deadline: DEADLINE });
    let d = deal(rt.handle(), DEADLINE, &members, &work, 10, true).unwrap();
    let got: Vec<f64> = d.replies.iter().flat_map(|r| r.values.clone()).collect();
    assert_eq!(got, expected(10), "values in unit order");
    assert_eq!(d.by, vec![1; 10], "every unit answered by the live worker");
    assert_eq!((d.tally.lost, d.tally.answered), (2, 10));
    assert_eq!(servers[1].fits.load(Ordering::SeqCst), 10);
    let m = members.lock().unwrap();
    let alive: Vec<bool> = m.all().iter().map(|m| m.alive).collect();
    assert_eq!(alive, vec![false, true, false]);
    // a deal with the survivor alone: its sample is still there, no second load
    drop(m);
    let d = deal(rt.handle(), DEADLINE, &members, &work, 2, true).unwrap();
    assert_eq!((d.tally.setups, d.tally.lost), (0, 0));
    assert_eq!(servers[1].loads.load(Ordering::SeqCst), 1);
}

#[test]
fn a_refusal_stops_the_deal_naming_the_worker_and_the_call_and_drops_nobody() {
    let _serial = serial();
    let (rt, conns, _servers) = workers(&[Mode::Answer, Mode::Refuse]);
    let refuser = conns[1].addr.clone();
    let members = Mutex::new(Members::new(conns));
    let work = Arc::new(Ranges { deadline: DEADLINE });
    let Err(Stop::Refused(m)) = deal(rt.handle(), DEADLINE, &members, &work, 6, true) else {
        panic!("a refusal must stop the deal");
    };
    assert!(
        m.contains(&format!("{refuser}: INVALID_ARGUMENT (GwrFit "))
            && m.contains("no such Y column")
            && m.contains("resuming cannot cure this"),
        "{m}"
    );
    let m = members.lock().unwrap();
    assert!(
        m.all().iter().all(|m| m.alive),
        "nobody dropped for a refusal"
    );
}

#[test]
fn a_worker_that_lost_the_data_gets_it_again_and_is_not_dropped() {
    let _serial = serial();
    let (rt, conns, servers) = workers(&[Mode::Forget]);
    let members = Mutex::new(Members::new(conns));
    let work = Arc::new(Ranges { deadline: DEADLINE });
    let d = deal(rt.handle(), DEADLINE, &members, &work, 4, true).unwrap();
    let got: Vec<f64> = d.replies.iter().flat_map(|r| r.values.clone()).collect();
    assert_eq!(got, expected(4));
    assert_eq!((d.tally.setups, d.tally.lost), (2, 0));
    assert_eq!(servers[0].loads.load(Ordering::SeqCst), 2);
}

#[test]
fn one_job_goes_to_the_least_busy_worker_and_is_redone_on_another_when_it_is_lost() {
    let _serial = serial();
    let (rt, conns, _servers) = workers(&[Mode::Unavailable, Mode::Answer]);
    let members = Mutex::new(Members::new(conns));
    let work = Arc::new(Ranges { deadline: DEADLINE });
    let d = deal(rt.handle(), DEADLINE, &members, &work, 1, false).unwrap();
    // round 1 on worker 0 (lowest index of the idle ones), lost; round 2 on worker 1
    assert_eq!((d.tally.rounds, d.by.clone()), (2, vec![1]));
    assert_eq!(d.replies[0].values, expected(1));
    // every worker lost: the deal says so
    let (rt, conns, _servers) = workers(&[Mode::Unavailable, Mode::Hang]);
    let members = Mutex::new(Members::new(conns));
    let r = deal(rt.handle(), DEADLINE, &members, &work, 3, true);
    assert!(matches!(r, Err(Stop::AllLost)), "{:?}", r.err());
}
