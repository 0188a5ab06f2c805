//! The fault matrix of the cluster (issue #9): real coordinator and worker processes on a
//! 300 x 300 window of Ben Cat. Each case ends with the class map of the undisturbed
//! single-process run (same SHA-256), or stops with a clear error and a checkpoint that
//! `flus run --resume` finishes with that same map.
//!
//! Every disturbance happens at a hold point of the test build (`flus_e2e::hold`): the
//! coordinator stops after iteration k (or inside a checkpoint write) until the test has
//! acted, so no case depends on how fast the machine is.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use flus_e2e::hold::{held_at, Holds};
use flus_e2e::proxy::Proxy;
use flus_e2e::TEST_TOKEN;
use flus_e2e::{crop, flus_watch, signal, start_worker, start_worker_at, Output, Worker};
use flus_shared::rng::CounterRng;
use serde_json::Value;

const SCENARIO: &str = "urbanized";
const LABEL: &str = "urbanized_2060";
const TIMEOUT: Duration = Duration::from_secs(300);

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
        let toml = crop::test_window(&dir);
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

/// `flus run` of the study's first scenario over `addrs` into `out`, with the hold
/// points of `holds`; `act(line, coordinator pid)` sees every stderr line while it runs.
fn run(
    out: &Path,
    addrs: &[String],
    extra: &[&str],
    holds: &Holds,
    act: impl FnMut(&str, u32),
) -> Output {
    run_scenarios(out, addrs, &[SCENARIO], extra, holds, act)
}

/// [`run`] of `scenarios` (in one session).
fn run_scenarios(
    out: &Path,
    addrs: &[String],
    scenarios: &[&str],
    extra: &[&str],
    holds: &Holds,
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
    let env = [("FLUS_TOKEN", TEST_TOKEN), holds.env()];
    flus_watch(&args, &env, TIMEOUT, act)
}

/// The hold point after iteration `t` of the scenario.
fn after_iteration(t: u64) -> String {
    format!("{LABEL}-iteration-{t}")
}

/// A run of the first scenario held after iteration `t`, where `at_hold()` runs while
/// the coordinator waits; the hold is then released. Panics unless it was reached.
fn run_held_at(
    t: u64,
    out: &Path,
    addrs: &[String],
    extra: &[&str],
    at_hold: impl FnMut(),
) -> Output {
    run_held(&after_iteration(t), out, addrs, &[SCENARIO], extra, at_hold)
}

/// A run of `scenarios` held at hold point `point`, where `at_hold()` runs while the
/// coordinator waits; the hold is then released. Panics unless it was reached.
fn run_held(
    point: &str,
    out: &Path,
    addrs: &[String],
    scenarios: &[&str],
    extra: &[&str],
    mut at_hold: impl FnMut(),
) -> Output {
    let holds = Holds::new();
    holds.arm(point);
    let mut acted = false;
    let out = run_scenarios(out, addrs, scenarios, extra, &holds, |line, _| {
        if !acted && held_at(line, point) {
            at_hold();
            acted = true;
            holds.release(point);
        }
    });
    assert!(acted, "the run was never held at {point}:\n{}", out.stderr);
    out
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

/// [`same_map`], and every scenario of `others` with its undisturbed map: run.json.
fn same_maps(out: &Output, case: &str, others: &[(&str, String)]) -> Value {
    same_map(out, case);
    let j = out.json();
    for (sc, hash) in others {
        assert_eq!(
            j["scenarios"][sc]["map_sha256"],
            hash.as_str(),
            "{case}: {sc}: the class map differs from the undisturbed run"
        );
    }
    j
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
    let size = crop::TEST_WINDOW.2;
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
    // two repetitions at a time: each is held at its own iteration, so the lanes do not
    // race each other
    std::thread::scope(|scope| {
        for lane in 0..2 {
            let plans = &plans;
            scope.spawn(move || {
                for &(rep, it, victim) in plans.iter().filter(|p| p.0 % 2 == lane) {
                    let mut ws = workers(3);
                    let list = addrs(&ws);
                    let dir = tempfile::tempdir().unwrap();
                    let out = run_held_at(it, dir.path(), &list, &["--rejoin-probe", "0"], || {
                        ws[victim].guard.kill_and_reap()
                    });
                    let case = format!("repetition {rep} (kill after iteration {it})");
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
    let pid = ws[2].guard.pid();
    // stopped between iterations 5 and 6: its Propose of iteration 6 gets no answer
    let out = run_held_at(
        5,
        dir.path(),
        &addrs(&ws),
        &["--deadline", "4", "--rejoin-probe", "0"],
        || signal(pid, libc::SIGSTOP),
    );
    signal(pid, libc::SIGCONT);
    let sc = same_map(&out, "hung worker");
    assert_eq!(sc["traffic"]["workers_lost"], 1, "{}", out.stderr);
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
    let stopped = [ws[0].guard.pid(), ws[2].guard.pid()];
    // both stopped before the calls of iteration 6, which go to every worker at once
    let out = run_held_at(
        5,
        dir.path(),
        &addrs(&ws),
        &["--deadline", "4", "--rejoin-probe", "0"],
        || {
            for pid in stopped {
                signal(pid, libc::SIGSTOP);
            }
        },
    );
    for pid in stopped {
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
    let s = study();
    assert!(s.iterations > 7, "the run outlasts the re-admission");
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    // held after iteration 3: worker 0 is killed (its loss shows in iteration 4); held
    // after iteration 5: a new process starts on its address, and the hold is released
    // once the coordinator's probe has found it, so it is re-admitted in iteration 6
    let (kill_at, restart_at) = (after_iteration(3), after_iteration(5));
    let holds = Holds::new();
    holds.arm(&kill_at);
    holds.arm(&restart_at);
    let mut restarted: Option<Worker> = None;
    let out = run(
        dir.path(),
        &list,
        &["--rejoin-probe", "0.2"],
        &holds,
        |line, _| {
            if held_at(line, &kill_at) {
                ws[0].guard.kill_and_reap();
                holds.release(&kill_at);
            } else if held_at(line, &restart_at) {
                restarted = Some(start_worker_at(&list[0], &[]));
            } else if restarted.is_some()
                && line.contains("lost worker answers its health check again")
            {
                holds.release(&restart_at);
            }
        },
    );
    let again = restarted.expect("the run was held after iteration 5");
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
    let mut ws = workers(2);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    let holds = Holds::new();
    let point = after_iteration(10);
    holds.arm(&point);
    let mut stored = None;
    let first = run(
        dir.path(),
        &list,
        &["--checkpoint-every", "4", "--rejoin-probe", "0"],
        &holds,
        |line, _| {
            if let Some(t) = stored_iteration(line) {
                stored = Some(t);
            }
            if held_at(line, &point) {
                for w in &mut ws {
                    w.guard.kill_and_reap();
                }
                holds.release(&point);
            }
        },
    );
    assert!(holds.reached(&point), "the run reached iteration 10");
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
    // checkpoints after iterations 4 and 8; the loss shows in iteration 11
    let cp = read_checkpoint(&checkpoint_path(dir.path()));
    assert_eq!(cp["t"].as_u64(), Some(8), "the last checkpoint is kept");
    assert_eq!(stored, Some(8), "{}", first.stderr);
    assert!(last.contains("(iteration 8) kept"), "{last}");
    // new workers, same output folder
    let fresh = workers(2);
    let second = run(
        dir.path(),
        &addrs(&fresh),
        &["--resume"],
        &Holds::new(),
        |_, _| {},
    );
    same_map(&second, "resumed after all workers were lost");
    assert!(second.stderr.contains("resuming from checkpoint"));
    assert!(!checkpoint_path(dir.path()).exists(), "checkpoint cleared");
}

#[test]
fn a_coordinator_killed_while_writing_a_checkpoint_leaves_the_previous_one_intact() {
    let ws = workers(2);
    let dir = tempfile::tempdir().unwrap();
    // held between writing the checkpoint of iteration 8 and renaming it: killed there
    let holds = Holds::new();
    let point = format!("checkpoint-{LABEL}-8");
    holds.arm(&point);
    let mut stored = None;
    let mut killed = false;
    let first = run(
        dir.path(),
        &addrs(&ws),
        &["--checkpoint-every", "4"],
        &holds,
        |line, pid| {
            if let Some(t) = stored_iteration(line) {
                stored = Some(t);
            }
            if !killed && held_at(line, &point) {
                signal(pid, libc::SIGKILL);
                killed = true;
            }
        },
    );
    assert!(killed, "the checkpoint write of iteration 8 was held");
    assert_eq!(first.code, None, "killed by the signal");
    assert_eq!(stored, Some(4), "{}", first.stderr);
    // the final name holds the previous checkpoint, complete
    let cp = read_checkpoint(&checkpoint_path(dir.path()));
    assert_eq!(cp["t"].as_u64(), Some(4));
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
    assert_eq!(newer["t"].as_u64(), Some(8));
    let second = run(
        dir.path(),
        &addrs(&ws),
        &["--resume"],
        &Holds::new(),
        |_, _| {},
    );
    same_map(&second, "resumed after a kill during a checkpoint write");
    assert!(second.stderr.contains("resuming from checkpoint"));
    assert!(
        !dir.path().join("checkpoints").exists(),
        "finished: checkpoint and temporary files cleared"
    );
}

/// Runs over three workers, the second behind a proxy that `disturb` acts on while the
/// coordinator is held after iteration 5.
fn over_a_proxy(extra: &[&str], disturb: impl Fn(&Proxy), case: &str) -> (Output, Value) {
    let ws = workers(3);
    let proxy = Proxy::start(&ws[1].addr);
    let mut list = addrs(&ws);
    list[1] = proxy.addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = run_held_at(5, dir.path(), &list, extra, || disturb(&proxy));
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
    let mut ws = workers(2);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    // the raster is assembled beside the scenario's run: the run is held after its first
    // iteration and the assembly before its first rows, the worker is killed, the
    // assembly finds it gone (the only part calling the workers) and re-sends its tiles,
    // and only then does the run go on, on the moved tiles
    let (point, iteration) = ("suitability-assembly", after_iteration(1));
    let holds = Holds::new();
    holds.arm(point);
    holds.arm(&iteration);
    let (mut at_point, mut at_iteration, mut killed, mut resent) = (false, false, false, false);
    let out = run(
        dir.path(),
        &list,
        &["--rejoin-probe", "0"],
        &holds,
        |line, _| {
            at_point |= held_at(line, point);
            at_iteration |= held_at(line, &iteration);
            if at_point && at_iteration && !killed {
                ws[1].guard.kill_and_reap();
                killed = true;
                holds.release(point);
            }
            if killed && !resent && line.contains("tiles re-sent") {
                resent = true;
                holds.release(&iteration);
            }
        },
    );
    assert!(
        killed && resent,
        "held at both points, then tiles re-sent:\n{}",
        out.stderr
    );
    same_map(&out, "worker killed during the suitability assembly");
    let j = out.json();
    let s = &j["sessions"]["scenarios"];
    assert_eq!(s["workers_lost"], 1, "{s}");
    // its tiles went to the survivor: sent twice in the session
    assert!(
        s["tile_bytes"].as_u64().unwrap() > s["first_load_bytes"].as_u64().unwrap(),
        "{s}"
    );
    // the raster holds the single-process inference's values in the tiles' fixed point
    // (round(s * 65535) / 65535), every band and cell
    let name = "suitability_2020.tif";
    let reference = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("faults-bencat-window")
        .join("reference")
        .join(name);
    let (ours, theirs) = (bands(&dir.path().join(name)), bands(&reference));
    assert_eq!(ours.len(), theirs.len(), "bands");
    for (b, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(ours.len(), theirs.len());
        for (i, (&a, &s)) in ours.iter().zip(theirs).enumerate() {
            let want = ((s as f64 * 65535.0).round() * (1.0 / 65535.0)) as f32;
            assert_eq!(a, want, "band {}, cell {i}: {a} vs {s}", b + 1);
        }
    }
}

/// Every band of the raster at `path`.
fn bands(path: &Path) -> Vec<Vec<f32>> {
    let ds = gdal::Dataset::open(path).unwrap();
    (1..=ds.raster_count())
        .map(|b| {
            let band = ds.rasterband(b).unwrap();
            band.read_as::<f32>((0, 0), band.size(), band.size(), None)
                .unwrap()
                .data()
                .to_vec()
        })
        .collect()
}

#[test]
fn a_worker_killed_in_the_second_scenario_of_a_session_keeps_every_map() {
    let others = other_hashes();
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    let scenarios = [SCENARIO, others[0].0, others[1].0];
    // after the second scenario's third iteration: its tiles re-sent mid-run carry the
    // session's start map, from which the third scenario starts; one run at a time, so
    // that the second scenario is the one that finds the worker gone
    let point = format!("{}_2060-iteration-3", others[0].0);
    let out = run_held(
        &point,
        dir.path(),
        &list,
        &scenarios,
        &["--rejoin-probe", "0", "--concurrent-runs", "1"],
        || ws[1].guard.kill_and_reap(),
    );
    let j = same_maps(&out, "worker killed in the second scenario", others);
    assert_eq!(j["scenarios"][others[0].0]["traffic"]["workers_lost"], 1);
    assert_eq!(j["sessions"]["scenarios"]["workers_lost"], 1);
    assert_eq!(j["sessions"]["scenarios"]["runs"], 3);
}

/// Three workers; the coordinator is held before the Commit calls of iteration 6,
/// where `first` are killed (their Commit fails), and, when `second` is given, held
/// again once the first loss is handled and before its tiles are re-sent, where
/// `second` is killed: a worker that already committed its own tiles in that iteration,
/// which must then move with the changes they committed.
fn lost_in_a_commit(first: &[usize], second: Option<usize>) -> (Output, Value) {
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    let (commit, moved) = (
        format!("{LABEL}-commit-6"),
        format!("{LABEL}-tiles-moved-6"),
    );
    let holds = Holds::new();
    holds.arm(&commit);
    if second.is_some() {
        holds.arm(&moved);
    }
    let out = run(
        dir.path(),
        &list,
        &["--rejoin-probe", "0"],
        &holds,
        |line, _| {
            if held_at(line, &commit) {
                for &w in first {
                    ws[w].guard.kill_and_reap();
                }
                holds.release(&commit);
            } else if held_at(line, &moved) {
                if let Some(w) = second {
                    ws[w].guard.kill_and_reap();
                }
                holds.release(&moved);
            }
        },
    );
    assert!(
        holds.reached(&commit),
        "held before the commit: {}",
        out.stderr
    );
    if second.is_some() {
        assert!(
            holds.reached(&moved),
            "held before the re-send: {}",
            out.stderr
        );
    }
    let case = format!("killed {first:?} before the commit of iteration 6, then {second:?}");
    let sc = same_map(&out, &case);
    let t = &sc["traffic"];
    assert_eq!(t["workers_lost"], 2, "{case}: {}", out.stderr);
    for w in first.iter().chain(&second) {
        assert_eq!(t["per_worker"][*w]["lost"], 1, "{case}");
    }
    (out, sc)
}

#[test]
fn a_worker_lost_after_committing_moves_its_tiles_with_their_changes_in_either_order() {
    // 3 workers x 4 tiles. The first victim's 4 tiles are dealt to the two others (2
    // each); the second victim, lost while they are re-sent, gives up its own 4
    // committed tiles too: 8 tiles moved, all onto the last worker. Before the fix its
    // committed tiles were re-sent with the iteration's old map and lost their changes.
    for (first, second) in [(0, 2), (2, 0)] {
        let (out, sc) = lost_in_a_commit(&[first], Some(second));
        assert_eq!(sc["traffic"]["tiles_moved"], 8, "{}", out.stderr);
        assert_eq!(sc["traffic"]["per_worker"][1]["lost"], 0);
    }
    // both lost in the same Commit call: none of their tiles had committed
    let (out, sc) = lost_in_a_commit(&[0, 2], None);
    assert_eq!(sc["traffic"]["tiles_moved"], 8, "{}", out.stderr);
}

/// `flus run` of `scenarios` with the validation (its own session) over `addrs`.
fn run_with_validation(
    out: &Path,
    addrs: &[String],
    scenarios: &[&str],
    holds: &Holds,
    act: impl FnMut(&str, u32),
) -> Output {
    let s = study();
    let list = addrs.join(",");
    let mut args = vec![
        "run",
        &s.toml,
        "--json",
        "--out",
        out.to_str().unwrap(),
        "--workers",
        &list,
        "--rejoin-probe",
        "0",
    ];
    for sc in scenarios {
        args.extend(["--scenario", sc]);
    }
    let env = [("FLUS_TOKEN", TEST_TOKEN), holds.env()];
    flus_watch(&args, &env, TIMEOUT, act)
}

/// Runs with the hold points `points` armed; once every one of them holds a thread of
/// the coordinator at the same time, `at_hold()` runs and they are all released.
fn held_together(
    points: &[String],
    start: impl FnOnce(&Holds, &mut dyn FnMut(&str, u32)) -> Output,
    mut at_hold: impl FnMut(),
) -> Output {
    let holds = Holds::new();
    for p in points {
        holds.arm(p);
    }
    let mut seen = vec![false; points.len()];
    let mut acted = false;
    let out = start(&holds, &mut |line, _| {
        for (p, s) in points.iter().zip(seen.iter_mut()) {
            *s |= held_at(line, p);
        }
        if !acted && seen.iter().all(|&s| s) {
            at_hold();
            acted = true;
            for p in points {
                holds.release(p);
            }
        }
    });
    assert!(
        acted,
        "never held at all of {points:?} at once:\n{}",
        out.stderr
    );
    out
}

#[test]
fn a_worker_killed_while_the_scenarios_network_trains_keeps_the_validation_and_scenario_maps() {
    // undisturbed: the validation's and the scenario's map over three workers
    let ws = workers(3);
    let dir = tempfile::tempdir().unwrap();
    let calm = run_with_validation(
        dir.path(),
        &addrs(&ws),
        &[SCENARIO],
        &Holds::new(),
        |_, _| {},
    );
    same_map(&calm, "undisturbed run with the validation");
    let calm = calm.json();
    let validation_hash = calm["validation"]["map_sha256"].clone();
    assert!(validation_hash.is_string(), "{calm}");
    assert!(calm["validation"]["iterations"].as_u64().unwrap() >= 2);
    // disturbed: the scenarios' ANN training thread is held while the validation's CA
    // is held after its iteration 1; a worker is killed with both held, so the
    // validation loses it while the network trains beside it
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    let points = [
        "scenarios-ann-training".to_string(),
        "validation-iteration-1".to_string(),
    ];
    let out = held_together(
        &points,
        |holds, act| run_with_validation(dir.path(), &list, &[SCENARIO], holds, act),
        || ws[1].guard.kill_and_reap(),
    );
    same_map(&out, "worker killed while the network trains");
    let j = out.json();
    assert_eq!(
        j["validation"]["map_sha256"], validation_hash,
        "the validation map differs from the undisturbed run"
    );
    assert_eq!(
        j["validation"]["traffic"]["workers_lost"], 1,
        "{}",
        out.stderr
    );
    assert_eq!(j["validation"]["traffic"]["per_worker"][1]["lost"], 1);
    assert_eq!(j["ann_network_sha256"], calm["ann_network_sha256"]);
    // the scenarios' session finds the worker gone when it loads its tiles
    assert_eq!(j["sessions"]["scenarios"]["workers_lost"], 1);
}

#[test]
fn a_worker_killed_while_a_scenario_is_written_and_the_next_runs_keeps_every_map_and_file() {
    let others = other_hashes();
    let scenarios = [SCENARIO, others[0].0];
    let label2 = format!("{}_2060", others[0].0);
    let files = [
        format!("landuse_{LABEL}.tif"),
        format!("iterations_{LABEL}.csv"),
        format!("landuse_{label2}.tif"),
    ];
    // undisturbed
    let ws = workers(3);
    let calm_dir = tempfile::tempdir().unwrap();
    let calm = run_scenarios(
        calm_dir.path(),
        &addrs(&ws),
        &scenarios,
        &["--rejoin-probe", "0"],
        &Holds::new(),
        |_, _| {},
    );
    same_map(&calm, "undisturbed two scenarios");
    let calm = calm.json();
    assert_eq!(
        calm["scenarios"][others[0].0]["map_sha256"],
        others[0].1.as_str()
    );
    // disturbed: the first scenario's files are held on the writer thread while the
    // second scenario's CA is held after its iteration 2; a worker is killed there
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    let points = [
        format!("scenario-outputs-{LABEL}"),
        format!("{label2}-iteration-2"),
    ];
    let out = held_together(
        &points,
        |holds, act| {
            run_scenarios(
                dir.path(),
                &list,
                &scenarios,
                &["--rejoin-probe", "0"],
                holds,
                act,
            )
        },
        || ws[2].guard.kill_and_reap(),
    );
    same_map(&out, "worker killed while a scenario is written");
    let j = out.json();
    for sc in scenarios {
        assert_eq!(
            j["scenarios"][sc]["map_sha256"], calm["scenarios"][sc]["map_sha256"],
            "{sc}: the class map differs from the undisturbed run"
        );
    }
    assert_eq!(j["scenarios"][SCENARIO]["traffic"]["workers_lost"], 0);
    assert_eq!(j["scenarios"][others[0].0]["traffic"]["workers_lost"], 1);
    assert_eq!(j["sessions"]["scenarios"]["workers_lost"], 1);
    // the files written while the worker was lost are those of the undisturbed run
    for f in &files {
        let a = std::fs::read(calm_dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let b = std::fs::read(dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(a == b, "{f} differs from the undisturbed run's");
    }
}

#[test]
fn a_worker_killed_while_two_scenarios_run_at_once_keeps_both_maps() {
    let others = other_hashes();
    let scenarios = [SCENARIO, others[0].0];
    let label2 = format!("{}_2060", others[0].0);
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    // both runs held at once, each after an iteration of its own (so they run at the
    // same time, on two lanes of the session's tiles): a worker is killed there, and
    // each run finds its tiles moved, whichever saw the loss
    let points = [after_iteration(3), format!("{label2}-iteration-3")];
    let out = held_together(
        &points,
        |holds, act| {
            run_scenarios(
                dir.path(),
                &list,
                &scenarios,
                &["--rejoin-probe", "0", "--concurrent-runs", "2"],
                holds,
                act,
            )
        },
        || ws[1].guard.kill_and_reap(),
    );
    let j = same_maps(
        &out,
        "worker killed while two scenarios run at once",
        &others[..1],
    );
    assert_eq!(j["concurrent_runs"], 2);
    // one loss, counted by the run that saw it
    assert_eq!(j["sessions"]["scenarios"]["workers_lost"], 1);
    let lost: u64 = scenarios
        .iter()
        .map(|sc| {
            j["scenarios"][sc]["traffic"]["workers_lost"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(lost, 1, "{}", out.stderr);
}

#[test]
fn a_worker_killed_in_a_commit_while_another_scenario_runs_keeps_both_maps() {
    let others = other_hashes();
    let scenarios = [SCENARIO, others[0].0];
    let label2 = format!("{}_2060", others[0].0);
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    // the first run held before its Commit calls of iteration 6 (it holds its
    // proposals), the second after its iteration 2: the worker killed there takes one
    // run's stepped tiles and the other's lane with it
    let points = [format!("{LABEL}-commit-6"), format!("{label2}-iteration-2")];
    let out = held_together(
        &points,
        |holds, act| {
            run_scenarios(
                dir.path(),
                &list,
                &scenarios,
                &["--rejoin-probe", "0"],
                holds,
                act,
            )
        },
        || ws[0].guard.kill_and_reap(),
    );
    let j = same_maps(
        &out,
        "worker killed in a commit while another scenario runs",
        &others[..1],
    );
    assert_eq!(j["sessions"]["scenarios"]["workers_lost"], 1);
}

#[test]
fn a_worker_restarted_while_two_scenarios_run_is_readmitted_and_both_keep_their_maps() {
    let others = other_hashes();
    let scenarios = [SCENARIO, others[0].0];
    let label2 = format!("{}_2060", others[0].0);
    let mut ws = workers(3);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    // both runs held after their iteration 3: worker 0 is killed. The first run held
    // after its iteration 5: a new process starts on the address, released once the
    // probe found it. The second run held after its iteration 6 until the worker is
    // re-admitted (by either run): the re-admission moves tiles on which the second run
    // has its lane, which it must set again on the re-admitted worker.
    let (u3, a3) = (after_iteration(3), format!("{label2}-iteration-3"));
    let (u5, a6) = (after_iteration(5), format!("{label2}-iteration-6"));
    let holds = Holds::new();
    for p in [&u3, &a3, &u5, &a6] {
        holds.arm(p);
    }
    let (mut held3, mut restarted, mut readmitted, mut a6_held) = (0, None, false, false);
    let out = run_scenarios(
        dir.path(),
        &list,
        &scenarios,
        &["--rejoin-probe", "0.2", "--concurrent-runs", "2"],
        &holds,
        |line, _| {
            if held_at(line, &u3) || held_at(line, &a3) {
                held3 += 1;
                if held3 == 2 {
                    ws[0].guard.kill_and_reap();
                    holds.release(&u3);
                    holds.release(&a3);
                }
            } else if held_at(line, &u5) {
                restarted = Some(start_worker_at(&list[0], &[]));
            } else if restarted.is_some()
                && line.contains("lost worker answers its health check again")
            {
                holds.release(&u5);
            } else if held_at(line, &a6) {
                a6_held = true;
            }
            readmitted |= line.contains("worker re-admitted");
            if a6_held && readmitted {
                holds.release(&a6);
            }
        },
    );
    assert!(
        restarted.is_some(),
        "never held after iteration 5:\n{}",
        out.stderr
    );
    assert!(a6_held, "the second run was never held:\n{}", out.stderr);
    let j = same_maps(
        &out,
        "worker restarted while two scenarios run",
        &others[..1],
    );
    assert_eq!(j["sessions"]["scenarios"]["workers_lost"], 1);
    let rejoined: u64 = scenarios
        .iter()
        .map(|sc| {
            j["scenarios"][sc]["traffic"]["workers_rejoined"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(rejoined, 1, "{}", out.stderr);
}
