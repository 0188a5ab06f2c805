//! Workers lost in a session of several scenarios: in the second scenario, while a
//! scenario is written and the next runs, while two scenarios run at once (killed in a
//! step or in a Commit), and restarted and re-admitted while two run.

use flus_e2e::hold::{held_at, Holds};
use flus_e2e::start_worker_at;

use crate::common::{
    addrs, after_iteration, held_together, other_hashes, run_held, run_scenarios, same_map,
    same_maps, workers, LABEL, SCENARIO,
};

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
