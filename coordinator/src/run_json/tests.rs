//! run.json written and read back: today's shape parses and serializes to the same
//! keys and values, the sections that were serde_json values keep their sorted keys, a
//! missing key is named, an older run folder's keys that came later may be absent.

use super::*;

fn folder_with(text: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("run.json"), text).unwrap();
    d
}

#[test]
fn a_run_that_did_not_complete_is_refused_with_its_status_and_error() {
    let d = folder_with(r#"{"completed": false, "status": "failed", "error": "worker lost"}"#);
    let e = format!("{:#}", RunJson::read(d.path()).unwrap_err());
    assert!(e.contains("did not complete"), "{e}");
    assert!(e.contains("\"failed\"") && e.contains("worker lost"), "{e}");
}

#[test]
fn a_completed_run_json_missing_a_key_names_the_file_and_the_key() {
    let d = folder_with(r#"{"completed": true, "study": "s"}"#);
    let e = format!("{:#}", RunJson::read(d.path()).unwrap_err());
    assert!(e.contains("run.json") && e.contains("missing field"), "{e}");
}

#[test]
fn what_a_run_writes_reads_back_the_same() {
    let stage = StageJson {
        label: "urban_2030".into(),
        year: 2030,
        demand: [("forest".to_string(), 10)].into(),
        final_gap: [("forest".to_string(), 0)].into(),
        unmet: None,
        demand_met: true,
        transitions: None,
        iterations: 12,
        stop_reason: flus_shared::ca::StopReason::DemandMet,
        map: "landuse_urban_2030.tif".into(),
        map_sha256: "ab".into(),
        start_map_sha256: "cd".into(),
        stream: 3,
        carbon: "c.tif".into(),
        carbon_change: "d.tif".into(),
        traffic: Traffic::default(),
    };
    let run = RunJson {
        study: "s".into(),
        target_years: vec![2030],
        scenarios: [(
            "urban".to_string(),
            ScenarioJson {
                last: stage.clone(),
                stages: vec![stage],
            },
        )]
        .into(),
        completed: true,
        ..RunJson::default()
    };
    let text = serde_json::to_string(&run).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    // the last stage's figures sit on the scenario itself, as they always did
    assert_eq!(v["scenarios"]["urban"]["stop_reason"], "demand_met");
    assert_eq!(v["scenarios"]["urban"]["stages"][0]["year"], 2030);
    let d = folder_with(&text);
    let back = RunJson::read(d.path()).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}

/// `Traffic::default()` as run.json holds it (not a section under test here).
fn traffic() -> String {
    serde_json::to_string(&Traffic::default()).unwrap()
}

/// A run.json of today's shape, written by hand: the validation in transition mode
/// with its ensemble, the given suitability, PLUS's forests, one scenario stage, tables
/// 7-9, the GWR on the workers with one failed target.
fn todays_run_json() -> String {
    let stage = r#"{
        "label": "urban_2030", "year": 2030,
        "demand": {"built": 2, "forest": 2}, "final_gap": {"built": 0, "forest": 0},
        "unmet": null, "demand_met": true,
        "transitions": {"forest -> built": {"quota": 1, "simulated": 1}},
        "iterations": 4, "stop_reason": "demand_met",
        "map": "landuse_urban_2030.tif", "map_sha256": "ee", "start_map_sha256": "ff",
        "stream": 1, "carbon": "carbon_urban_2030.tif",
        "carbon_change": "carbon_change_urban_2030.tif", "traffic": TRAFFIC
    }"#;
    let members = r#"{
        "fom": null,
        "kappa": {"max": 0.5, "mean": 0.45, "members": [0.5, 0.4], "min": 0.4},
        "members": 2,
        "oa": {"max": 0.75, "mean": 0.7, "members": [0.75, 0.65], "min": 0.65}
    }"#;
    let text = r##"{
      "study": "s", "seed": 42, "workers": ["127.0.0.1:1"], "classes": ["forest", "built"],
      "valid_cells": 4, "config_sha256": "aa", "base_year": 2020, "target_year": 2030,
      "target_years": [2030],
      "legend": [{"code": 1, "name": "forest", "color": "#00ff00"},
                 {"code": 2, "name": "built", "color": "#ff0000"}],
      "validation": {
        "cells": 4, "confusion": [[2, 0], [1, 1]], "oa": 0.75, "kappa": 0.5, "kloc": 0.6,
        "khisto": 0.8, "fom": 0.5, "producer_accuracy": 0.5, "user_accuracy": 1.0,
        "hits": 1, "misses": 1, "wrong_hits": 0, "false_alarms": 0,
        "persistence": {"cells": 4, "confusion": [[2, 0], [2, 0]], "oa": 0.5, "kappa": null,
          "kloc": null, "khisto": null, "fom": 0.0, "producer_accuracy": 0.0,
          "user_accuracy": null, "hits": 0, "misses": 2, "wrong_hits": 0, "false_alarms": 0},
        "random": {"cells": 4, "confusion": [[1, 1], [1, 1]], "oa": 0.5, "kappa": 0.0,
          "kloc": 0.0, "khisto": 1.0, "fom": 0.3333333333333333, "producer_accuracy": 0.5,
          "user_accuracy": 0.5, "hits": 1, "misses": 1, "wrong_hits": 0, "false_alarms": 1},
        "allocation": "transitions",
        "gross_change_simulated": 1, "gross_change_observed": 2, "net_change": 2,
        "transitions": {"forest -> built": {"quota": 2, "simulated": 1}},
        "demand_met": true, "final_gap": {"built": 0, "forest": 0}, "iterations": 3,
        "map_sha256": "bb", "stop_reason": "demand_met",
        "patches": {"by_class": {
            "built": {"observed": {"cells": 2, "largest": 2, "mean_size": 2.0, "patches": 1},
                      "simulated": {"cells": 1, "largest": 1, "mean_size": 1.0, "patches": 1}},
            "forest": {"observed": {"cells": 0, "largest": 0, "mean_size": null, "patches": 0},
                       "simulated": {"cells": 0, "largest": 0, "mean_size": null, "patches": 0}}},
          "connectivity": 8, "size_unit": "cells"},
        "ca_patches": {"decay": 0.5, "seeds": 0.01, "threshold": 0.4},
        "maps": {"components": "fom_components_2020.tif",
                 "observed_change": "observed_change_2020.tif",
                 "simulated_change": "simulated_change_2020.tif"},
        "from": 2010, "to": 2020, "classes": ["forest", "built"],
        "ann": {"best_epoch": 7, "constant_drivers": [], "epochs_run": 9, "hidden": 12,
          "holdout_accuracy": 0.8, "holdout_loss": 0.5, "holdout_per_class": [1, 1],
          "train_accuracy": 0.9, "train_loss": 0.3, "train_per_class": [4, 4],
          "valid_cells": 4},
        "mean_proposals_per_iteration": 1.5,
        "traffic": TRAFFIC,
        "ann_network_sha256": "cc",
        "ensemble": MEMBERS
      },
      "ann": {"suitability_raster": "/data/suitability.tif"},
      "random_forest": {
        "classes": [
          {"class": "forest", "expansion_cells": 0, "oob_accuracy": null, "rmse": null,
           "sample_cells": 10},
          {"class": "built", "expansion_cells": 3, "oob_accuracy": 0.9, "rmse": 0.125,
           "sample_cells": 10}],
        "contributions": {"built": [0.25, 0.75], "forest": null},
        "oob_importance": {"built": [0.0625, 0.125], "forest": null},
        "driver_contributions": "/out/driver_contributions.csv",
        "drivers": ["dem", "slope"]},
      "ann_seconds": 1.5, "training": [], "suitability": "suitability_2020.tif",
      "base_map": "landuse_2020.tif", "base_carbon": "carbon_2020.tif",
      "scenario_ca_seconds": 2.5, "scenario_ca_wall_seconds": 2.5, "concurrent_runs": 1,
      "ensemble": {"members": 2, "seeds": [42, 7], "carbon": [], "carbon_csv": null,
        "maps": [], "validation": MEMBERS},
      "sessions": {"scenarios": null},
      "scenarios": {"urban": STAGE_AND_STAGES},
      "maps": [{"label": "2020", "year": 2020, "landuse": "landuse_2020.tif",
                "carbon": "carbon_2020.tif"}],
      "tables": {"carbon": [
          {"cells_per_class": [3, 1], "change_percent": 0.0, "change_t": 0.0, "map": "2020",
           "mean_density_kg_m2": 20.5, "storage_t": 1000.25},
          {"cells_per_class": [2, 2], "change_percent": -10.05, "change_t": -100.5,
           "map": "urban_2030", "mean_density_kg_m2": 18.4, "storage_t": 899.75}],
        "ecological_cells": [3, 2]},
      "gwr": {
        "carbon": {"urban": {"error": "the GWR's matrix is singular"}},
        "classes": {"built": {"adj_r2": 0.4, "aicc": -12.5, "bandwidth": 50.0,
          "coefficient_map": "/out/gwr_coef_built.tif", "ols_r2": 0.2,
          "points_csv": "/out/gwr_points_built.csv", "r2": 0.5}},
        "cluster": {"loads": 1, "permutation_fits": 0, "ranges_moved": 0, "requests": 4,
          "workers_lost": 0},
        "coefficient_grid": {"factor": 4, "height": 2, "width": 3},
        "factor_r2": [{"bandwidth": [40.0, null], "class": "built", "p_value": [0.01, null],
          "r2": [0.3, null], "r2_intercept_only": [0.1, null], "r2_null_p95": [0.2, null]}],
        "factors": ["dem", "slope"], "fits_on": "workers", "permutations": 99,
        "points": 100, "summary_csv": "/out/gwr_summary.csv"},
      "shared_data": false,
      "memory": {"grid_cells": 4, "coordinator_peak_rss_bytes": 1000,
        "coordinator_peak_rss_bytes_per_cell": 250.0,
        "workers": [{"addr": "127.0.0.1:1", "peak_rss_bytes": null}],
        "all_processes_peak_rss_bytes": null, "all_processes_peak_rss_bytes_per_cell": null},
      "wall_seconds": 9.5, "worker_busy_seconds": 5.5,
      "timings": [{"stage": "validation", "seconds": 1.0, "worker_busy_seconds": 0.5,
                   "overlapped": true}],
      "version": "0.1.0", "versions": {"flus": "0.1.0", "gdal": "3.6.2"},
      "outputs": {"run.json": "dd"}, "warnings": [], "completed": true
    }"##;
    let scenario = stage.replacen('{', &format!("{{\"stages\": [{stage}],"), 1);
    text.replace("STAGE_AND_STAGES", &scenario)
        .replace("MEMBERS", members)
        .replace("TRAFFIC", &traffic())
}

/// `text` with `edit` applied to its JSON.
fn edited(text: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(text).unwrap();
    edit(&mut v);
    v.to_string()
}

#[test]
fn todays_run_json_reads_and_writes_back_the_same_keys_and_values() {
    let text = todays_run_json();
    let d = folder_with(&text);
    let run = RunJson::read(d.path()).unwrap();
    // the typed sections hold what the file says
    let v = run.validation.as_ref().unwrap();
    assert_eq!((v.simulation.hits, v.persistence.kappa), (1, None));
    assert_eq!(v.transitions.as_ref().unwrap()["forest -> built"].quota, 2);
    assert_eq!(v.ensemble.as_ref().unwrap().oa.members, [0.75, 0.65]);
    assert_eq!(v.ann.as_ref().unwrap().best_epoch, 7);
    assert!(
        matches!(&run.ann, Some(AnnJson::Given { suitability_raster: Some(p) })
        if p == Path::new("/data/suitability.tif"))
    );
    let rf = run.random_forest.as_ref().unwrap();
    assert_eq!(rf.leas.classes[1].expansion_cells, 3);
    assert_eq!(rf.contributions["built"], Some(vec![0.25, 0.75]));
    assert_eq!(rf.oob_importance["built"], Some(vec![0.0625, 0.125]));
    assert_eq!(rf.leas.classes[1].rmse, Some(0.125));
    assert_eq!(run.tables.carbon[1].change_t, -100.5);
    let g = run.gwr.as_ref().unwrap();
    assert_eq!(g.analysis.classes["built"].fit().unwrap().bandwidth, 50.0);
    assert!(g.analysis.carbon["urban"].fit().is_none());
    assert_eq!(g.analysis.permutations, Some(99));
    let stage = &run.scenarios["urban"].last;
    assert_eq!(
        stage.transitions.as_ref().unwrap()["forest -> built"].simulated,
        1
    );
    // written back: the same keys and values
    let back = serde_json::to_string_pretty(&run).unwrap();
    let want: Value = serde_json::from_str(&text).unwrap();
    let got: Value = serde_json::from_str(&back).unwrap();
    assert_eq!(got, want);
    // the sections that were serde_json values keep their keys sorted (as a serde_json
    // map, without preserve_order, writes them)
    let compact = serde_json::to_string(&run).unwrap();
    for key in ["validation", "ann", "random_forest", "tables", "gwr"] {
        let section = format!("\"{key}\":{}", want[key]);
        assert!(compact.contains(&section), "{key} not in sorted order");
    }
    let members = format!("\"validation\":{}", want["ensemble"]["validation"]);
    assert!(compact.contains(&members), "ensemble.validation not sorted");
}

#[test]
fn a_trained_networks_report_reads_as_the_trained_variant() {
    let text = edited(&todays_run_json(), |v| {
        v["ann"] = v["validation"]["ann"].clone();
    });
    let run: RunJson = serde_json::from_str(&text).unwrap();
    let Some(AnnJson::Trained(r)) = &run.ann else {
        panic!("not a training report: {:?}", run.ann)
    };
    assert_eq!((r.hidden, r.train_per_class.as_slice()), (12, &[4, 4][..]));
}

#[test]
fn a_missing_key_of_a_section_is_named() {
    let text = todays_run_json();
    // (the object's path, the key taken out of it)
    let cases: [(&[&str], &str); 5] = [
        (&["validation"], "oa"),
        (&["validation"], "map_sha256"),
        (&["tables"], "carbon"),
        (&["gwr", "classes", "built"], "r2"),
        (&["validation", "ann"], "valid_cells"),
    ];
    for (path, key) in cases {
        let d = folder_with(&edited(&text, |v| {
            let object = path.iter().fold(v, |v, p| &mut v[*p]);
            object.as_object_mut().unwrap().remove(key).unwrap();
        }));
        let e = format!("{:#}", RunJson::read(d.path()).unwrap_err());
        assert!(
            e.contains("run.json") && e.contains(&format!("missing field `{key}`")),
            "{key}: {e}"
        );
    }
}

#[test]
fn an_older_run_json_without_the_later_keys_still_reads() {
    // keys added over the versions: the validation's change counts, patches, change
    // maps, ANN, proposals and run figures; the GWR's fits_on, grid, factor table
    let text = edited(&todays_run_json(), |v| {
        let val = v["validation"].as_object_mut().unwrap();
        for k in [
            "allocation",
            "gross_change_simulated",
            "gross_change_observed",
            "net_change",
            "transitions",
            "patches",
            "ca_patches",
            "maps",
            "ann",
            "random_forest",
            "mean_proposals_per_iteration",
            "traffic",
            "ann_network_sha256",
            "ensemble",
        ] {
            val.remove(k);
        }
        let g = v["gwr"].as_object_mut().unwrap();
        for k in [
            "carbon",
            "summary_csv",
            "coefficient_grid",
            "factors",
            "permutations",
            "factor_r2",
            "fits_on",
            "cluster",
        ] {
            g.remove(k);
        }
        v["tables"]
            .as_object_mut()
            .unwrap()
            .remove("ecological_cells");
        let rf = v["random_forest"].as_object_mut().unwrap();
        rf.remove("oob_importance");
        for c in rf["classes"].as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("rmse");
        }
    });
    let run: RunJson = serde_json::from_str(&text).unwrap();
    let rf = run.random_forest.as_ref().unwrap();
    assert!(rf.oob_importance.is_empty() && rf.leas.classes[1].rmse.is_none());
    let v = run.validation.unwrap();
    assert!(v.patches.is_none() && v.maps.is_none() && v.ann.is_none());
    let g = run.gwr.unwrap();
    assert_eq!((g.analysis.points, g.analysis.permutations), (100, None));
    assert!(g.fits_on.is_none());
}
