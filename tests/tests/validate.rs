//! `flus validate` on the shipped studies: the CA reaches the later map's demand
//! exactly, beats a random allocation of the same demand on the figure of merit, and
//! gives the same map whatever the tiling and thread count.

use std::time::Duration;

use flus_e2e::flus;

fn validate(study: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "validate",
        study,
        "--json",
        "--out",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = flus(&args, None, Duration::from_secs(900));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(dir.path().join("validation_metrics.csv").exists());
    out.json()
}

fn check(j: &serde_json::Value) {
    assert_eq!(j["demand_met"], true, "{j}");
    assert_eq!(j["stop_reason"], "demand_met");
    for (_, g) in j["final_gap"].as_object().unwrap() {
        assert_eq!(g, 0);
    }
    let fom = j["fom"].as_f64().unwrap();
    let random = j["random"]["fom"].as_f64().unwrap();
    assert!(
        fom > random,
        "FoM {fom} must beat the random allocation's {random}"
    );
    assert_eq!(
        j["persistence"]["fom"].as_f64().unwrap(),
        0.0,
        "persistence has no hits"
    );
    for key in [
        "oa",
        "kappa",
        "kloc",
        "khisto",
        "producer_accuracy",
        "user_accuracy",
        "hits",
        "misses",
        "wrong_hits",
        "false_alarms",
    ] {
        assert!(
            j.get(key).is_some()
                && j["persistence"].get(key).is_some()
                && j["random"].get(key).is_some(),
            "{key}"
        );
    }
}

#[test]
fn ben_cat_validation_meets_demand_beats_random_and_ignores_tiling_and_threads() {
    let a = validate(
        "examples/bencat/study.toml",
        &["--tiles", "1x1", "--threads", "1"],
    );
    check(&a);
    let b = validate(
        "examples/bencat/study.toml",
        &["--tiles", "7x5", "--threads", "2"],
    );
    assert_eq!(
        a["map_sha256"], b["map_sha256"],
        "tiling and threads change nothing"
    );
    assert_eq!(a["iterations"], b["iterations"]);
}

#[test]
fn dongguan_validation_meets_demand_and_beats_random() {
    let j = validate("examples/dongguan/study.toml", &["--tiles", "2x3"]);
    check(&j);
    // the persistence baseline on the drivers' mask (docs/design.md §6; 2,023 cells fewer than the land-use mask)
    assert_eq!(
        format!("{:.4}", j["persistence"]["oa"].as_f64().unwrap()),
        "0.5997"
    );
    assert_eq!(
        format!("{:.4}", j["persistence"]["kappa"].as_f64().unwrap()),
        "0.4984"
    );
}
