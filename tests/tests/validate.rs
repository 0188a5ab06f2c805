//! `flus validate` on the shipped studies: the CA reaches the later map's demand
//! exactly, beats a random allocation of the same demand on the figure of merit, and
//! gives the same map whatever the tiling and thread count; its metrics are those of
//! `flus compare` on the map it wrote, value by value; and its figures are the README's
//! (runs are deterministic: a change that moves them must update the README).

use std::path::Path;
use std::time::Duration;

use flus_e2e::{flus, repo_root};
use serde_json::Value;

/// `flus validate STUDY --json EXTRA...` into a temporary folder: its JSON and the folder.
fn validate_in(study: &str, extra: &[&str]) -> (Value, tempfile::TempDir) {
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
    (out.json(), dir)
}

fn validate(study: &str, extra: &[&str]) -> Value {
    validate_in(study, extra).0
}

/// The metrics keys of `flus compare --json` (and of `flus validate --json`).
const METRICS: [&str; 12] = [
    "oa",
    "kappa",
    "kloc",
    "khisto",
    "fom",
    "producer_accuracy",
    "user_accuracy",
    "hits",
    "misses",
    "wrong_hits",
    "false_alarms",
    "confusion",
];

/// `flus compare` of the validation map that `flus validate` wrote into `dir` against
/// the study's maps of `from` and `to`: every metric of the simulation and of the
/// persistence baseline equals the validation's JSON `v`, value for value.
fn same_as_compare(v: &Value, dir: &Path, start: &str, truth: &str, to: u32) {
    let sim = dir.join(format!("validation_{to}.tif"));
    let o = flus(
        &[
            "compare",
            "--start",
            start,
            "--truth",
            truth,
            "--sim",
            sim.to_str().unwrap(),
            "--json",
        ],
        Some(&repo_root()),
        Duration::from_secs(300),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let c = o.json();
    for key in METRICS {
        assert!(c.get(key).is_some(), "flus compare gives {key}: {c}");
        assert_eq!(v[key], c[key], "{key}: flus validate vs flus compare");
        assert_eq!(
            v["persistence"][key], c["persistence"][key],
            "persistence {key}: flus validate vs flus compare"
        );
    }
}

/// The README's column of the shipped studies' figures for `study` ("Ben Cat 2010 →
/// 2020" or "Dongguan 2001 → 2006"): row label -> cell.
fn readme_figures(study: &str) -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.starts_with("| | Ben Cat"))
        .take_while(|l| l.starts_with('|'));
    let cells = |l: &str| -> Vec<String> {
        l.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = cells(lines.next().expect("the README's table of figures"));
    let col = header
        .iter()
        .position(|h| h == study)
        .unwrap_or_else(|| panic!("README table has no column {study:?}: {header:?}"));
    lines
        .skip(1)
        .map(|l| {
            let c = cells(l);
            (c[0].clone(), c[col].clone())
        })
        .collect()
}

/// Asserts that validation `j` shows the README's figures for `study`, as printed.
fn readme_figures_match(j: &Value, study: &str) {
    let f = |v: &Value| format!("{:.3}", v.as_f64().unwrap());
    let ours = [
        ("iterations to exact demand", j["iterations"].to_string()),
        (
            "OA / Kappa",
            format!("{} / {}", f(&j["oa"]), f(&j["kappa"])),
        ),
        (
            "FoM (random allocation)",
            format!("{} ({})", f(&j["fom"]), f(&j["random"]["fom"])),
        ),
        (
            "persistence OA / Kappa",
            format!(
                "{} / {}",
                f(&j["persistence"]["oa"]),
                f(&j["persistence"]["kappa"])
            ),
        ),
    ];
    let readme = readme_figures(study);
    assert_eq!(readme.len(), ours.len(), "{readme:?}");
    for ((row, printed), (label, value)) in readme.iter().zip(ours) {
        assert_eq!(row, label);
        assert_eq!(
            printed, &value,
            "{study}, {label}: the README says {printed}, the run gives {value}; update the README"
        );
    }
}

fn check(j: &Value) {
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
    for key in METRICS {
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
    let (a, dir) = validate_in(
        "examples/bencat/study.toml",
        &["--tiles", "1x1", "--threads", "1"],
    );
    check(&a);
    readme_figures_match(&a, "Ben Cat 2010 → 2020");
    same_as_compare(
        &a,
        dir.path(),
        "examples/bencat/landuse_2010.tif",
        "examples/bencat/landuse_2020.tif",
        2020,
    );
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
    let (j, dir) = validate_in("examples/dongguan/study.toml", &["--tiles", "2x3"]);
    check(&j);
    readme_figures_match(&j, "Dongguan 2001 → 2006");
    // the persistence baseline on the drivers' mask (docs/design.md §6; 2,023 cells fewer than the land-use mask)
    assert_eq!(
        format!("{:.4}", j["persistence"]["oa"].as_f64().unwrap()),
        "0.5997"
    );
    assert_eq!(
        format!("{:.4}", j["persistence"]["kappa"].as_f64().unwrap()),
        "0.4984"
    );
    // the written map carries that mask: flus compare on it gives the same figures
    same_as_compare(
        &j,
        dir.path(),
        "examples/dongguan/landuse_2001.tif",
        "examples/dongguan/landuse_2006.tif",
        2006,
    );
}
