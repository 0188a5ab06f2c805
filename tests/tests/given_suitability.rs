//! `flus run` with the user's own suitability (issue #18 item 4): `[ann] suitability`
//! for the scenarios and `[ann] validation_suitability` for the validation, checked
//! against the single-process commands that already took a given raster (`flus
//! simulate`, `flus validate`) and against the run whose suitability raster is given
//! back (the CA steps on the same fixed-point values, so the map is the same).

use std::path::Path;
use std::time::Duration;

use flus_e2e::{crop, flus};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(900);

fn ok(args: &[&str]) -> Value {
    let o = flus(args, None, TIMEOUT);
    assert_eq!(o.code, Some(0), "flus {args:?}: {}", o.stderr);
    o.json()
}

/// The study with `[ann] suitability` and `[ann] validation_suitability` = `raster`.
fn with_given(study: &Path, raster: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(study).unwrap();
    assert!(text.contains("[ann]\n"), "{text}");
    let r = raster.display();
    let text = text.replace(
        "[ann]\n",
        &format!("[ann]\nsuitability = \"{r}\"\nvalidation_suitability = \"{r}\"\n"),
    );
    let out = study.with_file_name("given.toml");
    std::fs::write(&out, text).unwrap();
    out
}

#[test]
fn a_run_with_a_given_suitability_equals_flus_simulate_and_flus_validate() {
    let dir = tempfile::tempdir().unwrap();
    let study = crop::test_window(&dir.path().join("study"));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // a run with the ANN gives the suitability raster of the 2020 map
    let ann_out = dir.path().join("ann");
    let ann = ok(&[
        "run",
        &s(&study),
        "--local-workers",
        "2",
        "--scenario",
        "urbanized",
        "--no-validation",
        "--json",
        "--out",
        &s(&ann_out),
    ]);
    let raster = ann_out.join("suitability_2020.tif");
    assert!(raster.exists());
    let given = with_given(&study, &raster);

    let run_out = dir.path().join("given");
    let run = ok(&[
        "run",
        &s(&given),
        "--local-workers",
        "2",
        "--scenario",
        "urbanized",
        "--json",
        "--out",
        &s(&run_out),
    ]);
    let sim = ok(&[
        "simulate",
        &s(&given),
        "--scenario",
        "urbanized",
        "--json",
        "--out",
        &s(&dir.path().join("simulate")),
    ]);
    let val = ok(&[
        "validate",
        &s(&given),
        "--json",
        "--out",
        &s(&dir.path().join("validate")),
    ]);
    let run_map = run["scenarios"]["urbanized"]["map_sha256"]
        .as_str()
        .unwrap();
    // the scenario: the cluster run on the given raster is flus simulate's map
    assert_eq!(
        run_map,
        sim["map_sha256"].as_str().unwrap(),
        "{}",
        run["scenarios"]
    );
    // and the ANN run's: its suitability raster is what its CA stepped on
    assert_eq!(
        run_map,
        ann["scenarios"]["urbanized"]["map_sha256"]
            .as_str()
            .unwrap()
    );
    // the validation on [ann] validation_suitability: flus validate's map and metrics
    assert_eq!(run["validation"]["map_sha256"], val["map_sha256"]);
    assert_eq!(run["validation"]["fom"], val["fom"]);
    assert_eq!(run["validation"]["hits"], val["hits"]);
    // no ANN was trained for the scenarios: the report names the raster
    assert!(run["ann_network_sha256"].is_null(), "{}", run["ann"]);
    assert!(
        run["ann"]["suitability_raster"]
            .as_str()
            .is_some_and(|p| p.ends_with("suitability_2020.tif")),
        "{}",
        run["ann"]
    );
    // the driver analysis ran on the given suitability at the sample points
    assert!(run["gwr"]["factor_r2"]
        .as_array()
        .is_some_and(|a| a.len() == 4));
}
