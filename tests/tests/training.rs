//! Model training on the workers (docs/design.md §3b), on the 300 x 300 window of Ben
//! Cat: the ANNs of `flus run` (the validation's and the scenarios') are the bits of
//! the in-process training (`flus_shared::model::train`, computed here) for 1, 2 and 3
//! workers with 1 or 2 threads each; the LEAS forests grown over 1, 2 and 3 workers give
//! `flus validate`'s (in-process) driver contributions and validation map; a worker
//! killed inside a training job (hold point `ann-training`) costs nothing but the redo.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use flus_e2e::hold::Holds;
use flus_e2e::{crop, flus, flus_watch, start_worker, start_worker_env, TEST_TOKEN};
use flus_shared::config::Study;
use flus_shared::{files, model, stack};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(600);
const SCENARIO: &str = "urbanized";

/// The window's study and the SHA-256 of its two networks trained in this process
/// (the scenarios' on the `[markov] to` map, the validation's on the `from` map).
struct Reference {
    study: PathBuf,
    scenarios_ann: String,
    validation_ann: String,
}

fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("training-bencat-window");
        let study_path = crop::test_window(&dir);
        let study = Study::load(&study_path).unwrap();
        let st = stack::load(&study).unwrap();
        let mk = &study.config.markov;
        let sha = |year| {
            let t = model::train(&study, &st, year).unwrap();
            files::sha256_hex(&serde_json::to_vec(&t.network).unwrap())
        };
        Reference {
            scenarios_ann: sha(mk.to),
            validation_ann: sha(mk.from),
            study: study_path,
        }
    })
}

/// `flus run` of the window's first scenario with `extra` flags into `out`.
fn run(study: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "run",
        study.to_str().unwrap(),
        "--scenario",
        SCENARIO,
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = flus(&args, None, TIMEOUT);
    assert_eq!(o.code, Some(0), "{extra:?}: {}", o.stderr);
    o.json()
}

/// The run.json `training` entries of model `model`.
fn jobs<'a>(j: &'a Value, model: &str) -> Vec<&'a Value> {
    j["training"]
        .as_array()
        .unwrap_or_else(|| panic!("no training log: {j}"))
        .iter()
        .filter(|e| e["model"] == model)
        .collect()
}

#[test]
fn the_networks_trained_on_1_2_3_workers_with_1_or_2_threads_are_the_in_process_bits() {
    let r = reference();
    let mut maps = Vec::new();
    for (workers, threads) in [("1", "1"), ("2", "2"), ("3", "1"), ("1", "2")] {
        let dir = tempfile::tempdir().unwrap();
        let j = run(
            &r.study,
            dir.path(),
            &["--local-workers", workers, "--worker-threads", threads],
        );
        let case = format!("{workers} worker(s) x {threads} thread(s)");
        assert_eq!(j["ann_network_sha256"], r.scenarios_ann.as_str(), "{case}");
        assert_eq!(
            j["validation"]["ann_network_sha256"],
            r.validation_ann.as_str(),
            "{case}"
        );
        // both networks trained on workers, on two different ones when there are two
        let anns = jobs(&j, "ann");
        let names: Vec<&str> = anns.iter().map(|e| e["job"].as_str().unwrap()).collect();
        assert_eq!(anns.len(), 2, "{case}: {names:?}");
        assert!(names.contains(&"validation") && names.contains(&"scenarios"));
        if workers != "1" {
            assert_ne!(anns[0]["worker"], anns[1]["worker"], "{case}");
        }
        for e in &anns {
            assert_eq!(e["attempts"], 1, "{case}: {e}");
        }
        maps.push((
            j["validation"]["map_sha256"].clone(),
            j["scenarios"][SCENARIO]["map_sha256"].clone(),
        ));
    }
    assert!(maps.windows(2).all(|w| w[0] == w[1]), "{maps:?}");
}

/// `flus run` of `study`'s first scenario into `out` on two workers, the second of
/// which is killed once it reaches hold point `point` (inside a training job): the
/// run's output and the first worker's address.
fn run_killing_the_second_worker(
    study: &Path,
    out: &Path,
    point: &str,
) -> (flus_e2e::Output, String) {
    let holds = Holds::new();
    holds.arm(point);
    let a = start_worker(&["--threads", "1"]);
    let mut b = start_worker_env("127.0.0.1:0", &["--threads", "1"], &[holds.env()]);
    let list = format!("{},{}", a.addr, b.addr);
    let args = [
        "run",
        study.to_str().unwrap(),
        "--scenario",
        SCENARIO,
        "--json",
        "--out",
        out.to_str().unwrap(),
        "--workers",
        &list,
        "--rejoin-probe",
        "0",
    ];
    let out = std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            holds.wait_held(point, TIMEOUT);
            b.guard.kill_and_reap();
        });
        let out = flus_watch(&args, &[("FLUS_TOKEN", TEST_TOKEN)], TIMEOUT, |_, _| {});
        killer
            .join()
            .unwrap_or_else(|_| panic!("the second worker was not killed at {point}"));
        out
    });
    (out, a.addr.clone())
}

#[test]
fn a_worker_killed_while_it_trains_a_network_leaves_every_hash_undisturbed() {
    let r = reference();
    let calm_dir = tempfile::tempdir().unwrap();
    let calm = run(&r.study, calm_dir.path(), &["--local-workers", "2"]);
    // two workers; the second holds inside its training job (the second job asked for
    // goes to it: the first went to the first worker) and is killed there
    let dir = tempfile::tempdir().unwrap();
    let (out, first) = run_killing_the_second_worker(&r.study, dir.path(), "ann-training");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("worker lost during training job"),
        "the coordinator did not notice the dead worker:\n{}",
        out.stderr
    );
    let j = out.json();
    let anns = jobs(&j, "ann");
    let redone: Vec<&&Value> = anns.iter().filter(|e| e["attempts"] == 2).collect();
    assert_eq!(redone.len(), 1, "{anns:?}");
    assert_eq!(redone[0]["worker"], first.as_str());
    for (key, what) in [
        (&j["ann_network_sha256"], &calm["ann_network_sha256"]),
        (
            &j["validation"]["ann_network_sha256"],
            &calm["validation"]["ann_network_sha256"],
        ),
        (
            &j["validation"]["map_sha256"],
            &calm["validation"]["map_sha256"],
        ),
        (
            &j["scenarios"][SCENARIO]["map_sha256"],
            &calm["scenarios"][SCENARIO]["map_sha256"],
        ),
    ] {
        assert_eq!(key, what, "{}", out.stderr);
    }
    assert_eq!(j["ann_network_sha256"], r.scenarios_ann.as_str());
}

/// The window in PLUS mode written into `dir`, and `flus validate`'s (in-process
/// forests) JSON and output folder.
fn plus_study(dir: &Path) -> (PathBuf, Value, PathBuf) {
    let base = crop::test_window(&dir.join("study"));
    let text = std::fs::read_to_string(&base).unwrap();
    // PLUS mode; the window's 49 new water cells need a larger sample than 1 %
    let forest = base.with_file_name("forest.toml");
    std::fs::write(
        &forest,
        format!(
            "{text}\n[suitability]\nmodel = \"random_forest\"\n[random_forest]\nsample_rate = 0.2\n"
        ),
    )
    .unwrap();
    let val_dir = dir.join("validate");
    let o = flus(
        &[
            "validate",
            forest.to_str().unwrap(),
            "--json",
            "--out",
            val_dir.to_str().unwrap(),
        ],
        None,
        TIMEOUT,
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    (forest, o.json(), val_dir)
}

fn contributions(d: &Path) -> String {
    std::fs::read_to_string(d.join("driver_contributions.csv")).unwrap()
}

#[test]
fn the_forests_grown_over_1_2_3_workers_are_flus_validates_in_process_forests() {
    let dir = tempfile::tempdir().unwrap();
    let (forest, val, val_dir) = plus_study(dir.path());
    let k = val["classes"].as_array().unwrap().len();
    for workers in [1usize, 2, 3] {
        let out = dir.path().join(format!("run{workers}"));
        let j = run(
            &forest,
            &out,
            &[
                "--local-workers",
                &workers.to_string(),
                "--worker-threads",
                "1",
            ],
        );
        assert_eq!(
            j["validation"]["map_sha256"], val["map_sha256"],
            "{workers}"
        );
        assert_eq!(
            contributions(&out),
            contributions(&val_dir),
            "{workers} worker(s)"
        );
        // every class that grew has its forest's trees in `workers` ranges, one per
        // worker (each on its own worker), covering the trees 0..n_trees in order
        let trees = jobs(&j, "forest");
        assert!(!trees.is_empty(), "{j}");
        for key in 0..k {
            let mut of: Vec<&&Value> = trees.iter().filter(|e| e["forest_key"] == key).collect();
            if of.is_empty() {
                continue;
            }
            assert_eq!(of.len(), workers, "class {key}: {of:?}");
            of.sort_by_key(|e| e["trees"][0].as_u64());
            assert_eq!(of[0]["trees"][0], 0);
            for w in of.windows(2) {
                assert_eq!(w[0]["trees"][1], w[1]["trees"][0]);
            }
            let mut on: Vec<&str> = of.iter().map(|e| e["worker"].as_str().unwrap()).collect();
            on.sort_unstable();
            on.dedup();
            assert_eq!(on.len(), workers, "class {key}: {of:?}");
        }
    }
}

#[test]
fn a_worker_killed_while_it_grows_trees_leaves_the_forests_of_flus_validate() {
    let dir = tempfile::tempdir().unwrap();
    let (forest, val, val_dir) = plus_study(dir.path());
    // two workers; the second holds inside its first range of trees and is killed there
    let out_dir = dir.path().join("run");
    let (out, first) = run_killing_the_second_worker(&forest, &out_dir, "forest-trees");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("worker lost during training job"),
        "{}",
        out.stderr
    );
    let j = out.json();
    // the killed worker's range was redone on the first worker, every later range too
    let trees = jobs(&j, "forest");
    assert_eq!(
        trees.iter().filter(|e| e["attempts"] == 2).count(),
        1,
        "{trees:?}"
    );
    assert!(
        trees.iter().all(|e| e["worker"] == first.as_str()),
        "{trees:?}"
    );
    assert_eq!(j["validation"]["map_sha256"], val["map_sha256"]);
    assert_eq!(contributions(&out_dir), contributions(&val_dir));
}
