//! Workers lost while a scenario's CA runs: killed at a seeded random iteration, hung
//! until their deadline (one, or two in the same step), restarted and re-admitted, and
//! lost in or after a Commit call.

use flus_e2e::hold::{held_at, Holds};
use flus_e2e::{signal, start_worker_at, Output, Worker};
use flus_shared::rng::CounterRng;
use serde_json::Value;

use crate::common::{addrs, after_iteration, run, run_held_at, same_map, study, workers, LABEL};

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
