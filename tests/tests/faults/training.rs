//! A worker lost while the scenarios' ANN trains beside the validation's CA.

use std::path::Path;

use flus_e2e::hold::Holds;
use flus_e2e::Output;

use crate::common::{addrs, held_together, run_study, same_map, workers, SCENARIO};

/// `flus run` of `scenarios` with the validation (its own session) over `addrs`.
fn run_with_validation(
    out: &Path,
    addrs: &[String],
    scenarios: &[&str],
    holds: &Holds,
    act: impl FnMut(&str, u32),
) -> Output {
    run_study(out, addrs, scenarios, &["--rejoin-probe", "0"], holds, act)
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
