//! A part of `flus run` that fails stops the others: the run ends with that failure at
//! the other parts' next CA iteration, not once they have run to their end.
//!
//! Driven by hold points (`flus_e2e::hold`): the validation's CA is held after its first
//! iteration while the scenario's files are made to fail, so the order of events is the
//! same on any machine.

use std::path::Path;
use std::time::Duration;

use flus_e2e::hold::{held_at, Holds};
use flus_e2e::{crop, flus_watch, start_worker, Output, TEST_TOKEN};

const TIMEOUT: Duration = Duration::from_secs(300);
const LABEL: &str = "urbanized_2060";

/// `flus run` of the test window's `urbanized` scenario (with `extra` arguments) on one
/// worker, with the part that goes on held at hold point `going_on` and the part made to
/// fail held at `failing`: once both are held, `blocked` (a file of the run folder)
/// becomes a folder, so that part cannot write it; it is released, and `going_on` is
/// released once the failure has stopped the rest of the run. The run and its folder.
fn fail_one_part(
    name: &str,
    extra: &[&str],
    going_on: &str,
    failing: &str,
    blocked: &str,
) -> (Output, tempfile::TempDir) {
    let toml = crop::test_window(&Path::new(env!("CARGO_TARGET_TMPDIR")).join(name));
    let worker = start_worker(&[]);
    let out = tempfile::tempdir().unwrap();
    let holds = Holds::new();
    holds.arm(going_on);
    holds.arm(failing);
    let blocked = out.path().join(blocked);
    let (mut seen_going_on, mut seen_failing, mut broke, mut stopping) =
        (false, false, false, false);
    let mut args = vec!["run", toml.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    args.extend([
        "--out",
        out.path().to_str().unwrap(),
        "--workers",
        &worker.addr,
        "--scenario",
        "urbanized",
    ]);
    let env = [("FLUS_TOKEN", TEST_TOKEN), holds.env()];
    let run = flus_watch(&args, &env, TIMEOUT, |line, _| {
        seen_going_on |= held_at(line, going_on);
        seen_failing |= held_at(line, failing);
        if seen_going_on && seen_failing && !broke {
            // the file cannot be written: a folder (not empty) has its name
            std::fs::create_dir_all(blocked.join("in_the_way")).unwrap();
            broke = true;
            holds.release(failing);
        }
        if broke && !stopping && line.contains("stopping the rest of the run") {
            stopping = true;
            holds.release(going_on);
        }
    });
    assert!(
        broke && stopping,
        "never held at both points, or never stopped:\n{}",
        run.stderr
    );
    assert_ne!(run.code, Some(0), "the run succeeded:\n{}", run.stderr);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(status["completed"], serde_json::json!(false), "{status}");
    (run, out)
}

#[test]
fn a_scenario_that_fails_stops_the_validation_at_its_next_iteration() {
    // the scenario's map cannot be written while the validation is held after iteration 1
    let (run, out) = fail_one_part(
        "stopping-bencat-window",
        &[],
        "validation-iteration-1",
        &format!("scenario-outputs-{LABEL}"),
        &format!("landuse_{LABEL}.tif"),
    );
    // the scenario's own error is reported, not the validation's stop
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("landuse_{LABEL}.tif")),
        "the last line is not the scenario's error: {last}\n{}",
        run.stderr
    );
    // the validation ran no iteration after the one it was held at, and wrote nothing
    assert!(
        !run.stderr.contains("validation: iteration 2,"),
        "the validation went on after the failure:\n{}",
        run.stderr
    );
    assert!(!out.path().join("validation_metrics.csv").exists());
}

#[test]
fn a_suitability_raster_that_cannot_be_written_stops_the_scenario_at_its_next_iteration() {
    // the raster is assembled beside the scenario's run: both are held, the raster is
    // made to fail, and the run goes on only once the failure stops the rest
    let (run, out) = fail_one_part(
        "stopping-raster-bencat-window",
        &["--no-validation"],
        &format!("{LABEL}-iteration-1"),
        "suitability-assembly",
        "suitability_2020.tif",
    );
    // the raster's own error is reported, not the scenario's stop
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("suitability_2020.tif"),
        "the last line is not the raster's error: {last}\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&format!("{LABEL}: iteration 2,")),
        "the scenario went on after the failure:\n{}",
        run.stderr
    );
    assert!(!out.path().join(format!("landuse_{LABEL}.tif")).exists());
}
