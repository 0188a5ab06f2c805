//! The fault matrix of the cluster (issue #9): real coordinator and worker processes on a
//! 300 x 300 window of Ben Cat. Each case ends with the class map of the undisturbed
//! single-process run (same SHA-256), or stops with a clear error and a checkpoint that
//! `flus run --resume` finishes with that same map.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use flus_e2e::proxy::Proxy;
use flus_e2e::TEST_TOKEN;
use flus_e2e::{crop, flus_watch, signal, start_worker, start_worker_at, Output, Worker};
use flus_shared::rng::CounterRng;
use serde_json::Value;

const SCENARIO: &str = "urbanized";
const LABEL: &str = "urbanized_2060";
const TIMEOUT: Duration = Duration::from_secs(300);
/// Window of Ben Cat: all four classes, built-up growing 2010 -> 2020.
const WINDOW: (usize, usize, usize) = (350, 600, 300);

/// The small study and its undisturbed result.
struct Study {
    toml: String,
    /// SHA-256 of the single-process driver's class map (2x3 tiles, 1 thread).
    hash: String,
    /// CA iterations of that run.
    iterations: u64,
}

/// Crops the study and runs the single-process driver once per test binary.
fn study() -> &'static Study {
    static STUDY: OnceLock<Study> = OnceLock::new();
    STUDY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-bencat-window");
        let _ = std::fs::remove_dir_all(&dir);
        let (x0, y0, size) = WINDOW;
        let toml = crop::bencat_window(&dir, x0, y0, size);
        let toml = toml.to_str().unwrap().to_string();
        let (hash, iterations) =
            flus_e2e::reference_run(&toml, SCENARIO, &dir.join("reference"), TIMEOUT);
        assert!(
            iterations >= 10,
            "{iterations} iterations: too few to disturb"
        );
        Study {
            toml,
            hash,
            iterations,
        }
    })
}

fn workers(n: usize) -> Vec<Worker> {
    (0..n).map(|_| start_worker(&[])).collect()
}

/// `flus run` of the study's first scenario over `addrs` into `out`; `act(line,
/// coordinator pid)` sees every stderr line while it runs.
fn run(
    out: &Path,
    addrs: &[String],
    extra: &[&str],
    env: &[(&str, &str)],
    act: impl FnMut(&str, u32),
) -> Output {
    run_scenarios(out, addrs, &[SCENARIO], extra, env, act)
}

/// [`run`] of `scenarios` (in one session).
fn run_scenarios(
    out: &Path,
    addrs: &[String],
    scenarios: &[&str],
    extra: &[&str],
    env: &[(&str, &str)],
    act: impl FnMut(&str, u32),
) -> Output {
    let s = study();
    let list = addrs.join(",");
    let mut args = vec![
        "run",
        &s.toml,
        "--no-validation",
        "--json",
        "--out",
        out.to_str().unwrap(),
        "--workers",
        &list,
    ];
    for sc in scenarios {
        args.extend(["--scenario", sc]);
    }
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("FLUS_TOKEN", TEST_TOKEN));
    flus_watch(&args, &env, TIMEOUT, act)
}

fn addrs(ws: &[Worker]) -> Vec<String> {
    ws.iter().map(|w| w.addr.clone()).collect()
}

/// The scenario's part of a successful run's JSON, checked to hold the undisturbed map.
fn same_map(out: &Output, case: &str) -> Value {
    assert_eq!(out.code, Some(0), "{case}: {}", out.stderr);
    let j = out.json();
    let s = j["scenarios"][SCENARIO].clone();
    assert_eq!(
        s["map_sha256"],
        study().hash.as_str(),
        "{case}: the class map differs from the undisturbed run"
    );
    assert_eq!(s["demand_met"], true, "{case}");
    assert_eq!(j["completed"], true, "{case}");
    s
}

fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("checkpoints").join(format!("{LABEL}.ckpt"))
}

/// The checkpoint under its final name, complete: a line of JSON, then the whole map
/// (one byte per cell).
fn read_checkpoint(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or_else(|| panic!("{}: no line of JSON", path.display()));
    let c: Value = serde_json::from_slice(&bytes[..line])
        .unwrap_or_else(|e| panic!("{} does not start with complete JSON: {e}", path.display()));
    let size = WINDOW.2;
    assert_eq!(bytes.len() - line - 1, size * size, "{}", path.display());
    c
}

/// "... checkpoint of iteration N stored" -> N.
fn stored_iteration(line: &str) -> Option<u64> {
    let rest = line.split("checkpoint of iteration ").nth(1)?;
    let (n, tail) = rest.split_once(' ')?;
    tail.starts_with("stored").then(|| n.parse().ok())?
}

#[test]
fn a_worker_killed_at_a_seeded_random_iteration_keeps_the_map_ten_times() {
    const SEED: u64 = 0x5EED_0009;
    let s = study();
    let rng = CounterRng::new(SEED);
    // kill after iteration 1 .. last-2, so the loss is seen while the CA still runs
    let plans: Vec<(u64, u64, usize)> = (0..10u64)
        .map(|rep| {
            let it = 1 + rng.below(0, 0, rep, 0, s.iterations - 2);
            let victim = rng.below(0, 0, rep, 1, 3) as usize;
            (rep, it, victim)
        })
        .collect();
    for (rep, it, victim) in &plans {
        println!(
            "seed {SEED:#x}, repetition {rep}: worker {victim} of 3 killed after iteration {it}"
        );
    }
    // two repetitions at a time
    std::thread::scope(|scope| {
        for lane in 0..2 {
            let plans = &plans;
            scope.spawn(move || {
                for &(rep, it, victim) in plans.iter().filter(|p| p.0 % 2 == lane) {
                    let ws = workers(3);
                    let dir = tempfile::tempdir().unwrap();
                    let mark = format!("iteration {it},");
                    let mut killed = false;
                    let out = run(
                        dir.path(),
                        &addrs(&ws),
                        &["--rejoin-probe", "0"],
                        &[],
                        |line, _| {
                            if !killed && line.contains(&mark) {
                                signal(ws[victim].guard.pid(), libc::SIGKILL);
                                killed = true;
                            }
                        },
                    );
                    let case = format!("repetition {rep} (kill after iteration {it})");
                    assert!(killed, "{case}: the run reached iteration {it}");
                    let sc = same_map(&out, &case);
                    assert_eq!(sc["traffic"]["workers_lost"], 1, "{case}");
                    assert_eq!(sc["traffic"]["per_worker"][victim]["lost"], 1, "{case}");
                    assert!(sc["traffic"]["tiles_moved"].as_u64().unwrap() > 0, "{case}");
                }
            });
        }
    });
}

#[test]
fn a_worker_hung_until_its_deadline_loses_its_tiles_and_keeps_the_map() {
    let ws = workers(3);
    let dir = tempfile::tempdir().unwrap();
    let mut stopped = None;
    let out = run(
        dir.path(),
        &addrs(&ws),
        &["--deadline", "4", "--rejoin-probe", "0"],
        &[],
        |line, _| {
            if stopped.is_none() && line.contains("iteration 5,") {
                let pid = ws[2].guard.pid();
                signal(pid, libc::SIGSTOP);
                stopped = Some(pid);
            }
        },
    );
    let pid = stopped.expect("the run reached iteration 5");
    signal(pid, libc::SIGCONT);
    let sc = same_map(&out, "hung worker");
    assert_eq!(sc["traffic"]["workers_lost"], 1);
    assert_eq!(sc["traffic"]["per_worker"][2]["lost"], 1);
    assert!(
        out.stderr.contains("no answer within the deadline"),
        "{}",
        out.stderr
    );
}

#[test]
fn two_workers_hung_in_the_same_step_both_lose_their_tiles_and_keep_the_map() {
    let ws = workers(3);
    let dir = tempfile::tempdir().unwrap();
    let mut stopped = Vec::new();
    let out = run(
        dir.path(),
        &addrs(&ws),
        &["--deadline", "4", "--rejoin-probe", "0"],
        &[],
        |line, _| {
            if stopped.is_empty() && line.contains("iteration 5,") {
                // both stop before the next call: the calls of one phase go to every
                // worker at once, so both miss the same deadline
                for w in [0, 2] {
                    let pid = ws[w].guard.pid();
                    signal(pid, libc::SIGSTOP);
                    stopped.push(pid);
                }
            }
        },
    );
    assert_eq!(stopped.len(), 2, "the run reached iteration 5");
    for &pid in &stopped {
        signal(pid, libc::SIGCONT);
    }
    let sc = same_map(&out, "two hung workers");
    let t = &sc["traffic"];
    assert_eq!(t["workers_lost"], 2, "{}", out.stderr);
    assert_eq!(t["per_worker"][0]["lost"], 1);
    assert_eq!(t["per_worker"][1]["lost"], 0);
    assert_eq!(t["per_worker"][2]["lost"], 1);
    // 3 workers x 4 tiles: the two lost workers held 8 tiles, all now on worker 1
    assert_eq!(t["tiles_moved"], 8, "{}", out.stderr);
    let timeouts: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("no answer within the deadline"))
        .collect();
    for w in [0, 2] {
        assert!(
            timeouts.iter().any(|l| l.contains(ws[w].addr.as_str())),
            "worker {w} timed out: {}",
            out.stderr
        );
    }
}

#[test]
fn a_restarted_worker_is_readmitted_takes_its_tiles_back_and_keeps_the_map() {
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    let mut restarted: Option<Worker> = None;
    let out = run(
        dir.path(),
        &list,
        &["--rejoin-probe", "0.3"],
        // 40 ms per iteration: the rest of the run outlasts the restart and a probe
        &[("FLUS_TEST_ITERATION_DELAY_MS", "40")],
        |line, _| {
            if restarted.is_none() && line.contains("iteration 3,") {
                // kill worker 0 and start a new process on its address
                let old = ws.remove(0);
                let addr = old.addr.clone();
                drop(old.guard);
                restarted = Some(start_worker_at(&addr, &[]));
            }
        },
    );
    let again = restarted.expect("the run reached iteration 3");
    assert_eq!(again.addr, list[0], "restarted on the same address");
    let sc = same_map(&out, "restarted worker");
    let t = &sc["traffic"];
    assert_eq!(t["workers_lost"], 1, "{}", out.stderr);
    assert_eq!(t["workers_rejoined"], 1, "{}", out.stderr);
    assert!(t["tiles_returned"].as_u64().unwrap() > 0);
    let w0 = &t["per_worker"][0];
    assert_eq!(w0["addr"], list[0].as_str());
    assert_eq!(w0["rejoined"], 1);
    // the new process loaded tiles, computed their suitability and stepped them
    assert!(
        w0["calls_since_rejoin"].as_u64().unwrap() >= 4,
        "the re-admitted worker did work: {w0}"
    );
    assert!(out.stderr.contains("worker re-admitted"), "{}", out.stderr);
}

#[test]
fn all_workers_lost_stop_the_run_with_a_message_and_resume_finishes_it() {
    let ws = workers(2);
    let dir = tempfile::tempdir().unwrap();
    let mut killed = false;
    let mut stored = None;
    let first = run(
        dir.path(),
        &addrs(&ws),
        &["--checkpoint-every", "4", "--rejoin-probe", "0"],
        &[],
        |line, _| {
            if let Some(t) = stored_iteration(line) {
                stored = Some(t);
            }
            if !killed && line.contains("iteration 10,") {
                for w in &ws {
                    signal(w.guard.pid(), libc::SIGKILL);
                }
                killed = true;
            }
        },
    );
    assert!(killed, "the run reached iteration 10");
    assert_eq!(first.code, Some(1), "a clear failure: {}", first.stderr);
    let last = first.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error:")
            && last.contains("all workers lost (2 of 2)")
            && last.contains("flus run --resume")
            && last.contains("kept"),
        "{last}"
    );
    // run.json marks the run incomplete and names the error
    let marker: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(
        marker["completed"],
        Value::Bool(false),
        "not complete: {marker}"
    );
    assert_eq!(marker["status"], "failed", "{marker}");
    assert!(
        marker["error"]
            .as_str()
            .is_some_and(|e| e.contains("all workers lost")),
        "{marker}"
    );
    let cp = read_checkpoint(&checkpoint_path(dir.path()));
    assert_eq!(
        cp["t"].as_u64(),
        stored,
        "the last stored checkpoint is kept"
    );
    assert!(
        last.contains(&format!("(iteration {}) kept", stored.unwrap())),
        "{last}"
    );
    // new workers, same output folder
    let fresh = workers(2);
    let second = run(dir.path(), &addrs(&fresh), &["--resume"], &[], |_, _| {});
    same_map(&second, "resumed after all workers were lost");
    assert!(second.stderr.contains("resuming from checkpoint"));
    assert!(!checkpoint_path(dir.path()).exists(), "checkpoint cleared");
}

#[test]
fn a_coordinator_killed_while_writing_a_checkpoint_leaves_the_previous_one_intact() {
    let ws = workers(2);
    let dir = tempfile::tempdir().unwrap();
    let mut stored = None;
    let mut killed_during = None;
    let first = run(
        dir.path(),
        &addrs(&ws),
        &["--checkpoint-every", "4"],
        &[("FLUS_TEST_CHECKPOINT_DELAY_MS", "1500")],
        |line, pid| {
            if let Some(t) = stored_iteration(line) {
                stored = Some(t);
            }
            if killed_during.is_none() && stored.is_some() && line.contains("renaming in") {
                signal(pid, libc::SIGKILL);
                killed_during = Some(line.to_string());
            }
        },
    );
    let during = killed_during.expect("a second checkpoint write was reached");
    assert_eq!(first.code, None, "killed by the signal");
    let stored = stored.unwrap();
    // the final name holds the previous checkpoint, complete
    let cp = read_checkpoint(&checkpoint_path(dir.path()));
    assert_eq!(cp["t"].as_u64(), Some(stored), "killed during: {during}");
    // the interrupted write is only a temporary file beside it
    let partial: Vec<PathBuf> = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".partial-")
        })
        .collect();
    assert_eq!(partial.len(), 1, "{partial:?}");
    // complete too, only not renamed yet
    let newer = read_checkpoint(&partial[0]);
    assert_eq!(newer["t"].as_u64(), Some(stored + 4));
    let second = run(dir.path(), &addrs(&ws), &["--resume"], &[], |_, _| {});
    same_map(&second, "resumed after a kill during a checkpoint write");
    assert!(second.stderr.contains("resuming from checkpoint"));
    assert!(
        !dir.path().join("checkpoints").exists(),
        "finished: checkpoint and temporary files cleared"
    );
}

/// Runs over three workers, the second behind a proxy that `disturb` acts on after
/// iteration 5.
fn over_a_proxy(extra: &[&str], disturb: impl Fn(&Proxy), case: &str) -> (Output, Value) {
    let ws = workers(3);
    let proxy = Proxy::start(&ws[1].addr);
    let mut list = addrs(&ws);
    list[1] = proxy.addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut done = false;
    let out = run(dir.path(), &list, extra, &[], |line, _| {
        if !done && line.contains("iteration 5,") {
            disturb(&proxy);
            done = true;
        }
    });
    assert!(done, "{case}: the run reached iteration 5");
    let sc = same_map(&out, case);
    assert_eq!(sc["traffic"]["workers_lost"], 1, "{case}: {}", out.stderr);
    assert_eq!(sc["traffic"]["per_worker"][1]["addr"], proxy.addr.as_str());
    assert_eq!(sc["traffic"]["per_worker"][1]["lost"], 1, "{case}");
    assert!(sc["traffic"]["tiles_moved"].as_u64().unwrap() > 0);
    (out, sc)
}

#[test]
fn a_network_cut_to_one_worker_moves_its_tiles_and_keeps_the_map() {
    // the default rejoin probe keeps knocking: the cut link never answers it
    over_a_proxy(&[], Proxy::cut, "network cut");
}

#[test]
fn a_blackholed_link_to_one_worker_times_out_and_keeps_the_map() {
    let (out, _) = over_a_proxy(&["--deadline", "4"], Proxy::blackhole, "blackholed link");
    assert!(
        out.stderr.contains("no answer within the deadline"),
        "{}",
        out.stderr
    );
}

/// The single-process map hash of each of the study's other scenarios (once per binary).
fn other_hashes() -> &'static Vec<(&'static str, String)> {
    static HASHES: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    HASHES.get_or_init(|| {
        let s = study();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-bencat-window");
        ["agricultural", "ecological"]
            .into_iter()
            .map(|sc| {
                let (hash, _) =
                    flus_e2e::reference_run(&s.toml, sc, &dir.join(format!("ref-{sc}")), TIMEOUT);
                (sc, hash)
            })
            .collect()
    })
}

#[test]
fn a_worker_killed_during_the_suitability_assembly_gives_its_tiles_to_the_other_and_keeps_the_map()
{
    let ws = workers(2);
    let dir = tempfile::tempdir().unwrap();
    let mut killed = false;
    let out = run(
        dir.path(),
        &addrs(&ws),
        &["--rejoin-probe", "0"],
        &[(ASSEMBLY_DELAY_ENV, "1500")],
        |line, _| {
            if !killed && line.contains("assembling the suitability raster") {
                signal(ws[1].guard.pid(), libc::SIGKILL);
                killed = true;
            }
        },
    );
    assert!(killed, "the run reached the suitability assembly");
    same_map(&out, "worker killed during the suitability assembly");
    let j = out.json();
    let s = &j["sessions"]["scenarios"];
    assert_eq!(s["workers_lost"], 1, "{s}");
    // its tiles went to the survivor: sent twice in the session
    assert!(
        s["tile_bytes"].as_u64().unwrap() > s["first_load_bytes"].as_u64().unwrap(),
        "{s}"
    );
    assert!(dir.path().join("suitability_2020.tif").exists());
}

/// The coordinator's test hook: milliseconds between logging the start of the
/// suitability raster's assembly and fetching the first rows (`remote::ASSEMBLY_DELAY_ENV`).
const ASSEMBLY_DELAY_ENV: &str = "FLUS_TEST_ASSEMBLY_DELAY_MS";

#[test]
fn a_worker_killed_in_the_second_scenario_of_a_session_keeps_every_map() {
    let others = other_hashes();
    let ws = workers(3);
    let dir = tempfile::tempdir().unwrap();
    let mut killed = false;
    let scenarios = [SCENARIO, others[0].0, others[1].0];
    // the second scenario's third iteration: its tiles re-sent mid-run carry the
    // session's start map, from which the third scenario starts
    let mark = format!("{}_2060: iteration 3,", others[0].0);
    let out = run_scenarios(
        dir.path(),
        &addrs(&ws),
        &scenarios,
        &["--rejoin-probe", "0"],
        &[],
        |line, _| {
            if !killed && line.contains(&mark) {
                signal(ws[1].guard.pid(), libc::SIGKILL);
                killed = true;
            }
        },
    );
    assert!(killed, "the run reached {mark:?}");
    same_map(&out, "worker killed in the second scenario");
    let j = out.json();
    for (sc, hash) in others {
        assert_eq!(
            j["scenarios"][sc]["map_sha256"],
            hash.as_str(),
            "{sc}: the class map differs from the undisturbed run"
        );
    }
    assert_eq!(j["scenarios"][others[0].0]["traffic"]["workers_lost"], 1);
    assert_eq!(j["sessions"]["scenarios"]["workers_lost"], 1);
    assert_eq!(j["sessions"]["scenarios"]["runs"], 3);
}
