//! GWR local fits on worker processes: `flus gwr` on the Georgia data with its fits on
//! 1 and 2 workers (started with `start_worker`) gives the same bits as on this
//! machine: every per-point value of gwr_points.csv (printed with shortest round-trip
//! formatting) and every figure of the JSON summary, search probes included.

use std::time::Duration;

use flus_e2e::hold::Holds;
use flus_e2e::{flus, flus_watch, repo_root, start_worker, start_worker_env, TEST_TOKEN};

const TIMEOUT: Duration = Duration::from_secs(300);

fn gwr_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "gwr",
        "--csv",
        "tests/data/georgia/GData_utm.csv",
        "--y",
        "PctBach",
        "--x",
        "PctRural,PctPov,PctBlack",
        "--coords",
        "X,Y",
        "--json",
        "--out",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

/// (points CSV, JSON summary without the output paths) of one `flus gwr` run.
fn run(extra: &[&str]) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = flus(
        &gwr_args(dir.path().to_str().unwrap(), extra),
        Some(&repo_root()),
        TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{extra:?}: {}", out.stderr);
    let mut j = out.json();
    j.as_object_mut().unwrap().remove("outputs");
    let csv = std::fs::read_to_string(dir.path().join("gwr_points.csv")).unwrap();
    (csv, j)
}

#[test]
fn fits_on_one_and_two_workers_equal_the_local_fits_bit_for_bit() {
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), TEST_TOKEN).unwrap();
    let tf = token.path().to_str().unwrap();
    let a = start_worker(&["--threads", "1"]);
    let b = start_worker(&["--threads", "1"]);
    let two = format!("{},{}", a.addr, b.addr);
    for extra in [
        // adaptive bisquare with the AICc search (mgwr's bandwidth 93)
        vec![],
        // fixed gaussian at a given bandwidth
        vec!["--kernel", "gaussian", "--fixed", "--bandwidth", "87308.3"],
    ] {
        let (csv, json) = run(&extra);
        assert_eq!(json["n"], 159);
        if extra.is_empty() {
            assert_eq!(json["bandwidth"], 93.0, "mgwr's bandwidth");
        }
        for workers in [a.addr.as_str(), two.as_str()] {
            let mut e = extra.clone();
            e.extend(["--workers", workers, "--token-file", tf]);
            let (rcsv, rjson) = run(&e);
            assert_eq!(rcsv, csv, "points on workers {workers} {extra:?}");
            assert_eq!(rjson, json, "summary on workers {workers} {extra:?}");
        }
    }
}

/// Two workers; the second is held inside a fit request (a hold point of the test
/// build: `gwr-fit-lite`, its first request of the bandwidth search, or `gwr-fit-full`,
/// its first request of the final fits) and killed (SIGKILL) there. The coordinator
/// must move the dead worker's point ranges to the survivor, and the points CSV and JSON
/// summary must equal the run without workers bit for bit.
#[test]
fn a_worker_killed_during_the_local_fits_leaves_the_results_bit_identical() {
    let (csv, json) = run(&[]);
    assert_eq!(json["bandwidth"], 93.0, "mgwr's bandwidth");
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), TEST_TOKEN).unwrap();
    let tf = token.path().to_str().unwrap();
    for point in ["gwr-fit-lite", "gwr-fit-full"] {
        let holds = Holds::new();
        holds.arm(point);
        let a = start_worker(&["--threads", "1"]);
        let mut b = start_worker_env("127.0.0.1:0", &["--threads", "1"], &[holds.env()]);
        let two = format!("{},{}", a.addr, b.addr);
        let dir = tempfile::tempdir().unwrap();
        let mut args = gwr_args(dir.path().to_str().unwrap(), &[]);
        args.extend(["--workers", two.as_str(), "--token-file", tf]);
        let out = std::thread::scope(|scope| {
            // the worker's log is not read: wait for its mark, then kill it while held
            let killer = scope.spawn(|| {
                holds.wait_held(point, TIMEOUT);
                b.guard.kill_and_reap();
            });
            let out = flus_watch(&args, &[], TIMEOUT, |_, _| {});
            killer
                .join()
                .expect("the worker was killed at its hold point");
            out
        });
        assert_eq!(out.code, Some(0), "{point}: {}", out.stderr);
        assert!(
            out.stderr.contains("worker lost during GWR fits"),
            "{point}: the coordinator did not notice the dead worker:\n{}",
            out.stderr
        );
        let mut rjson = out.json();
        rjson.as_object_mut().unwrap().remove("outputs");
        let rcsv = std::fs::read_to_string(dir.path().join("gwr_points.csv")).unwrap();
        assert_eq!(rcsv, csv, "points after killing a worker at {point}");
        assert_eq!(rjson, json, "summary after killing a worker at {point}");
    }
}

#[test]
fn a_worker_refuses_gwr_calls_without_the_token() {
    let w = start_worker(&["--threads", "1"]);
    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "not-the-token").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = gwr_args(dir.path().to_str().unwrap(), &[]);
    args.extend([
        "--workers",
        &w.addr,
        "--token-file",
        token.path().to_str().unwrap(),
    ]);
    let out = flus(&args, Some(&repo_root()), TIMEOUT);
    assert_ne!(out.code, Some(0));
    assert!(
        // the message of a refusal in every phase: the worker, the gRPC code, the call,
        // the worker's words and what to do (no resume suggested)
        out.stderr.contains(&format!(
            "{}: UNAUTHENTICATED (the sample (GwrLoad)",
            w.addr
        )) && out.stderr.contains("wrong cluster token")
            && out.stderr.contains("resuming cannot cure this"),
        "{}",
        out.stderr
    );
}
