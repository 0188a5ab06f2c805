//! A part of `flus run` that fails stops the others: the run ends with that failure at
//! the other parts' next CA iteration, not once they have run to their end.
//!
//! Driven by hold points (`flus_e2e::hold`): the validation's CA is held after its first
//! iteration while the scenario's files are made to fail, so the order of events is the
//! same on any machine.

use std::path::Path;
use std::time::Duration;

use flus_e2e::hold::{held_at, Holds};
use flus_e2e::{crop, flus_watch, start_worker, TEST_TOKEN};

const TIMEOUT: Duration = Duration::from_secs(300);
const LABEL: &str = "urbanized_2060";

#[test]
fn a_scenario_that_fails_stops_the_validation_at_its_next_iteration() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stopping-bencat-window");
    let toml = crop::test_window(&dir);
    let worker = start_worker(&[]);
    let out = tempfile::tempdir().unwrap();
    let holds = Holds::new();
    let (validation_held, outputs_held) = (
        "validation-iteration-1".to_string(),
        format!("scenario-outputs-{LABEL}"),
    );
    holds.arm(&validation_held);
    holds.arm(&outputs_held);
    let blocked = out.path().join(format!("landuse_{LABEL}.tif"));
    let (mut seen_validation, mut seen_outputs, mut broke, mut stopping) =
        (false, false, false, false);
    let args = [
        "run",
        toml.to_str().unwrap(),
        "--json",
        "--out",
        out.path().to_str().unwrap(),
        "--workers",
        &worker.addr,
        "--scenario",
        "urbanized",
    ];
    let env = [("FLUS_TOKEN", TEST_TOKEN), holds.env()];
    let run = flus_watch(&args, &env, TIMEOUT, |line, _| {
        seen_validation |= held_at(line, &validation_held);
        seen_outputs |= held_at(line, &outputs_held);
        if seen_validation && seen_outputs && !broke {
            // the scenario's map cannot be written: a folder (not empty) has its name
            std::fs::create_dir_all(blocked.join("in_the_way")).unwrap();
            broke = true;
            holds.release(&outputs_held);
        }
        if broke && !stopping && line.contains("stopping the rest of the run") {
            // the scenarios failed while the validation is held after iteration 1
            stopping = true;
            holds.release(&validation_held);
        }
    });
    assert!(
        broke && stopping,
        "never held at both points, or never stopped:\n{}",
        run.stderr
    );
    assert_ne!(run.code, Some(0), "the run succeeded:\n{}", run.stderr);
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
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(status["completed"], serde_json::json!(false), "{status}");
}

#[test]
fn a_suitability_raster_that_cannot_be_written_stops_the_scenario_at_its_next_iteration() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("stopping-raster-bencat-window");
    let toml = crop::test_window(&dir);
    let worker = start_worker(&[]);
    let out = tempfile::tempdir().unwrap();
    let holds = Holds::new();
    // the raster is assembled beside the scenario's run: both are held, the raster is
    // made to fail, and the run goes on only once the failure stops the rest
    let (run_held, raster_held) = (format!("{LABEL}-iteration-1"), "suitability-assembly");
    holds.arm(&run_held);
    holds.arm(raster_held);
    let blocked = out.path().join("suitability_2020.tif");
    let (mut seen_run, mut seen_raster, mut broke, mut stopping) = (false, false, false, false);
    let args = [
        "run",
        toml.to_str().unwrap(),
        "--json",
        "--no-validation",
        "--out",
        out.path().to_str().unwrap(),
        "--workers",
        &worker.addr,
        "--scenario",
        "urbanized",
    ];
    let env = [("FLUS_TOKEN", TEST_TOKEN), holds.env()];
    let run = flus_watch(&args, &env, TIMEOUT, |line, _| {
        seen_run |= held_at(line, &run_held);
        seen_raster |= held_at(line, raster_held);
        if seen_run && seen_raster && !broke {
            // the raster cannot be written: a folder (not empty) has its name
            std::fs::create_dir_all(blocked.join("in_the_way")).unwrap();
            broke = true;
            holds.release(raster_held);
        }
        if broke && !stopping && line.contains("stopping the rest of the run") {
            stopping = true;
            holds.release(&run_held);
        }
    });
    assert!(
        broke && stopping,
        "never held at both points, or never stopped:\n{}",
        run.stderr
    );
    assert_ne!(run.code, Some(0), "the run succeeded:\n{}", run.stderr);
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
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(status["completed"], serde_json::json!(false), "{status}");
}
