//! A run folder says whether the run completed: `run.json` has `"completed": false`
//! while a run is going (so a killed run leaves it so), records the error of a failed
//! run, and only a finished run writes `"completed": true`.

use std::path::Path;
use std::time::Duration;

use flus_e2e::hold::{held_at, Holds};
use flus_e2e::{flus, flus_watch, repo_root, signal};

/// A copy of the Dongguan study (outputs in `out/`) whose `tutorial` scenario asks
/// forest to grow to 60000 cells while no conversion into forest is allowed.
fn dongguan_infeasible() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = repo_root().join("examples/dongguan");
    std::fs::create_dir(dir.path().join("drivers")).unwrap();
    for sub in ["", "drivers"] {
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    let p = dir.path().join("study.toml");
    let t = std::fs::read_to_string(&p).unwrap();
    let t = t
        .replace("output = \"../../out/dongguan\"", "output = \"out\"")
        .replace("forest = 42433", "forest = 60000");
    let i = t.find("name = \"tutorial\"").unwrap();
    let (a, b) = t.split_at(i);
    let t = format!(
        "{a}{}",
        b.replacen("  [1, 1, 1, 1, 0],", "  [1, 1, 1, 0, 0],", 1)
    );
    std::fs::write(&p, t).unwrap();
    dir
}

fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_run_that_fails_midway_records_the_error_and_not_completed() {
    let d = dongguan_infeasible();
    let study = d.path().join("study.toml");
    let out = flus(
        &[
            "run",
            study.to_str().unwrap(),
            "--local-workers",
            "1",
            "--no-validation",
        ],
        Some(d.path()),
        Duration::from_secs(300),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let j = run_json(&d.path().join("out"));
    assert_eq!(j["completed"], false, "{j}");
    assert_eq!(j["status"], "failed", "{j}");
    let e = j["error"].as_str().unwrap();
    assert!(
        e.contains("infeasible demand") && e.contains("forest"),
        "{e}"
    );
    // the trend scenario before it finished; the tutorial one left no map
    assert!(d.path().join("out/landuse_trend_2011.tif").exists());
    assert!(!d.path().join("out/landuse_tutorial_2011.tif").exists());
}

#[test]
fn a_killed_run_leaves_run_json_saying_not_completed() {
    let d = dongguan_infeasible();
    let study = d.path().join("study.toml");
    // killed while held after the scenario's first CA iteration (stage 5 of 5)
    let holds = Holds::new();
    let point = "trend_2011-iteration-0";
    holds.arm(point);
    let mut killed = false;
    let out = flus_watch(
        &[
            "run",
            study.to_str().unwrap(),
            "--local-workers",
            "1",
            "--no-validation",
            "--scenario",
            "trend",
        ],
        &[holds.env()],
        Duration::from_secs(300),
        |line, pid| {
            if !killed && held_at(line, point) {
                signal(pid, 9); // SIGKILL
                killed = true;
            }
        },
    );
    assert!(killed, "the run was never held at {point}:\n{}", out.stderr);
    assert_eq!(out.code, None, "killed by a signal");
    let j = run_json(&d.path().join("out"));
    assert_eq!(j["completed"], false, "{j}");
    assert_eq!(j["status"], "running", "{j}");
}
