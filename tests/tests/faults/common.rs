//! What the fault cases share: the small study and its undisturbed result, starting
//! workers, `flus run` with hold points (one hold, or several held at once), and the
//! checks that a run kept the undisturbed maps.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use flus_e2e::hold::{held_at, Holds};
use flus_e2e::TEST_TOKEN;
use flus_e2e::{crop, flus_watch, start_worker, Output, Worker};
use serde_json::Value;

pub(crate) const SCENARIO: &str = "urbanized";
pub(crate) const LABEL: &str = "urbanized_2060";
pub(crate) const TIMEOUT: Duration = Duration::from_secs(300);

/// The small study and its undisturbed result.
pub(crate) struct Study {
    pub(crate) toml: String,
    /// SHA-256 of the single-process driver's class map (2x3 tiles, 1 thread).
    pub(crate) hash: String,
    /// CA iterations of that run.
    pub(crate) iterations: u64,
}

/// Crops the study and runs the single-process driver once per test binary.
pub(crate) fn study() -> &'static Study {
    static STUDY: OnceLock<Study> = OnceLock::new();
    STUDY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-bencat-window");
        let toml = crop::test_window(&dir);
        let toml = toml.to_str().unwrap().to_string();
        let (hash, iterations) =
            flus_e2e::reference_run(&toml, SCENARIO, &dir.join("reference"), TIMEOUT);
        assert!(
            iterations >= 10,
            "{iterations} iterations: too few to disturb"
        );
        Study {
            toml,
            hash,
            iterations,
        }
    })
}

pub(crate) fn workers(n: usize) -> Vec<Worker> {
    (0..n).map(|_| start_worker(&[])).collect()
}

/// `flus run` of the study's first scenario over `addrs` into `out`, with the hold
/// points of `holds`; `act(line, coordinator pid)` sees every stderr line while it runs.
pub(crate) fn run(
    out: &Path,
    addrs: &[String],
    extra: &[&str],
    holds: &Holds,
    act: impl FnMut(&str, u32),
) -> Output {
    run_scenarios(out, addrs, &[SCENARIO], extra, holds, act)
}

/// [`run`] of `scenarios` (in one session).
pub(crate) fn run_scenarios(
    out: &Path,
    addrs: &[String],
    scenarios: &[&str],
    extra: &[&str],
    holds: &Holds,
    act: impl FnMut(&str, u32),
) -> Output {
    let mut args = vec!["--no-validation"];
    args.extend_from_slice(extra);
    run_study(out, addrs, scenarios, &args, holds, act)
}

/// `flus run --json` of `scenarios` over `addrs` with the arguments `extra` (the
/// validation too unless they say `--no-validation`), watched for the hold points
/// of `holds`.
pub(crate) fn run_study(
    out: &Path,
    addrs: &[String],
    scenarios: &[&str],
    extra: &[&str],
    holds: &Holds,
    act: impl FnMut(&str, u32),
) -> Output {
    let s = study();
    let list = addrs.join(",");
    let mut args = vec![
        "run",
        &s.toml,
        "--json",
        "--out",
        out.to_str().unwrap(),
        "--workers",
        &list,
    ];
    for sc in scenarios {
        args.extend(["--scenario", sc]);
    }
    args.extend_from_slice(extra);
    let env = [("FLUS_TOKEN", TEST_TOKEN), holds.env()];
    flus_watch(&args, &env, TIMEOUT, act)
}

/// The hold point after iteration `t` of the scenario.
pub(crate) fn after_iteration(t: u64) -> String {
    format!("{LABEL}-iteration-{t}")
}

/// A run of the first scenario held after iteration `t`, where `at_hold()` runs while
/// the coordinator waits; the hold is then released. Panics unless it was reached.
pub(crate) fn run_held_at(
    t: u64,
    out: &Path,
    addrs: &[String],
    extra: &[&str],
    at_hold: impl FnMut(),
) -> Output {
    run_held(&after_iteration(t), out, addrs, &[SCENARIO], extra, at_hold)
}

/// A run of `scenarios` held at hold point `point`, where `at_hold()` runs while the
/// coordinator waits; the hold is then released. Panics unless it was reached.
pub(crate) fn run_held(
    point: &str,
    out: &Path,
    addrs: &[String],
    scenarios: &[&str],
    extra: &[&str],
    mut at_hold: impl FnMut(),
) -> Output {
    let holds = Holds::new();
    holds.arm(point);
    let mut acted = false;
    let out = run_scenarios(out, addrs, scenarios, extra, &holds, |line, _| {
        if !acted && held_at(line, point) {
            at_hold();
            acted = true;
            holds.release(point);
        }
    });
    assert!(acted, "the run was never held at {point}:\n{}", out.stderr);
    out
}

pub(crate) fn addrs(ws: &[Worker]) -> Vec<String> {
    ws.iter().map(|w| w.addr.clone()).collect()
}

/// The scenario's part of a successful run's JSON, checked to hold the undisturbed map.
pub(crate) fn same_map(out: &Output, case: &str) -> Value {
    assert_eq!(out.code, Some(0), "{case}: {}", out.stderr);
    let j = out.json();
    let s = j["scenarios"][SCENARIO].clone();
    assert_eq!(
        s["map_sha256"],
        study().hash.as_str(),
        "{case}: the class map differs from the undisturbed run"
    );
    assert_eq!(s["demand_met"], true, "{case}");
    assert_eq!(j["completed"], true, "{case}");
    s
}

/// [`same_map`], and every scenario of `others` with its undisturbed map: run.json.
pub(crate) fn same_maps(out: &Output, case: &str, others: &[(&str, String)]) -> Value {
    same_map(out, case);
    let j = out.json();
    for (sc, hash) in others {
        assert_eq!(
            j["scenarios"][sc]["map_sha256"],
            hash.as_str(),
            "{case}: {sc}: the class map differs from the undisturbed run"
        );
    }
    j
}

/// The single-process map hash of each of the study's other scenarios (once per binary).
pub(crate) fn other_hashes() -> &'static Vec<(&'static str, String)> {
    static HASHES: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    HASHES.get_or_init(|| {
        let s = study();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-bencat-window");
        ["agricultural", "ecological"]
            .into_iter()
            .map(|sc| {
                let (hash, _) =
                    flus_e2e::reference_run(&s.toml, sc, &dir.join(format!("ref-{sc}")), TIMEOUT);
                (sc, hash)
            })
            .collect()
    })
}

/// Runs with the hold points `points` armed; once every one of them holds a thread of
/// the coordinator at the same time, `at_hold()` runs and they are all released.
pub(crate) fn held_together(
    points: &[String],
    start: impl FnOnce(&Holds, &mut dyn FnMut(&str, u32)) -> Output,
    mut at_hold: impl FnMut(),
) -> Output {
    let holds = Holds::new();
    for p in points {
        holds.arm(p);
    }
    let mut seen = vec![false; points.len()];
    let mut acted = false;
    let out = start(&holds, &mut |line, _| {
        for (p, s) in points.iter().zip(seen.iter_mut()) {
            *s |= held_at(line, p);
        }
        if !acted && seen.iter().all(|&s| s) {
            at_hold();
            acted = true;
            for p in points {
                holds.release(p);
            }
        }
    });
    assert!(
        acted,
        "never held at all of {points:?} at once:\n{}",
        out.stderr
    );
    out
}
