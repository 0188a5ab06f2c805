//! Bad inputs of whole runs (issue "never lose data, never report a wrong result as
//! complete"): outputs that would overwrite inputs, checkpoints of another study,
//! workers that refuse the work or never answer, and `flus run` stopped by SIGTERM or
//! SIGINT. Each case checks the exit code, the message (file, key or flag named, what
//! was expected), that no input changed and that no output looks complete.

use std::path::Path;
use std::time::Duration;

use flus_e2e::corpus::{assert_unchanged, dongguan, edit, hashes};
use flus_e2e::{bin, flus, flus_watch, start_worker, Output};
use flus_shared::ca::{engine::Checkpoint, InertiaState, RunIdentity};

const LONG: Duration = Duration::from_secs(300);

/// Dongguan with a short ANN training (2 epochs): these cases test what happens around
/// the CA, not the network.
fn quick_dongguan() -> tempfile::TempDir {
    let d = dongguan();
    edit(d.path(), |t| {
        t.replace("sample_per_mille = 20", "sample_per_mille = 20\nepochs = 2")
    });
    d
}

fn study(d: &Path) -> String {
    d.join("study.toml").to_str().unwrap().to_string()
}

/// `flus run` of the trend scenario of the study in `d` on one local worker, without
/// the validation, with `extra` arguments.
fn run_trend(d: &Path, extra: &[&str]) -> Output {
    let s = study(d);
    flus(&trend_args(&s, extra), Some(d), LONG)
}

/// The arguments of [`run_trend`] for the study file `study`.
fn trend_args<'a>(study: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        study,
        "--no-validation",
        "--scenario",
        "trend",
        "--local-workers",
        "1",
    ];
    args.extend_from_slice(extra);
    args
}

/// `run.json` of the run folder `out`.
fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

/// Exit code 1, no panic, every fragment in stderr.
fn assert_fails(o: &Output, fragments: &[&str]) {
    assert_eq!(
        o.code,
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        o.stdout,
        o.stderr
    );
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    for f in fragments {
        assert!(o.stderr.contains(f), "expected {f:?} in:\n{}", o.stderr);
    }
}

/// The run folder `out` says the run failed: run.json `completed: false, status:
/// "failed"`, no temporary file, no scenario map (the stages before the CA may have
/// written theirs: the base map, the suitability).
fn assert_run_failed(out: &Path) {
    let j = run_json(out);
    assert_eq!(j["completed"], false, "{j}");
    assert_eq!(j["status"], "failed", "{j}");
    for p in flus_e2e::corpus::files_under(out) {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !name.contains("partial"),
            "temporary file left: {}",
            p.display()
        );
        assert!(
            !name.starts_with("landuse_trend"),
            "scenario map left: {}",
            p.display()
        );
    }
}

// ---- kind 1: no input is ever overwritten ----

#[test]
fn a_run_whose_output_folder_holds_its_inputs_is_refused_before_writing() {
    let d = quick_dongguan();
    edit(d.path(), |t| {
        t.replace("output = \"out\"", "output = \".\"")
    });
    let before = hashes(d.path());
    let o = flus(&["run", &study(d.path())], Some(d.path()), LONG);
    // 2006 is the base year: its map would be written as landuse_2006.tif
    assert_fails(
        &o,
        &[
            "landuse_2006.tif: refusing to write",
            "it is an input of this command",
        ],
    );
    assert_unchanged(&before);
    let left: Vec<_> = flus_e2e::corpus::files_under(d.path())
        .into_iter()
        .filter(|p| !before.contains_key(p))
        .collect();
    assert!(left.is_empty(), "files written: {left:?}");
}

#[test]
fn prepare_refuses_to_write_over_its_reference_map_through_a_link() {
    let d = dongguan();
    std::os::unix::fs::symlink(d.path(), d.path().join("here")).unwrap();
    let before = hashes(d.path());
    let o = flus(
        &[
            "prepare",
            "--reference",
            "landuse_2006.tif",
            "--out",
            "here",
            "--warp",
            "landuse_2006=drivers/dem.tif",
        ],
        Some(d.path()),
        LONG,
    );
    assert_fails(
        &o,
        &[
            "here/landuse_2006.tif: refusing to write",
            "it is an input of this command (landuse_2006.tif)",
        ],
    );
    assert_unchanged(&before);
    assert!(!d.path().join("prepared.toml").exists());
}

// ---- kind 2: --resume only resumes the same study ----

#[test]
fn a_checkpoint_of_another_study_is_refused_on_resume_naming_what_differs() {
    let d = quick_dongguan();
    let (w, h) = (768, 531);
    let ckpt = d.path().join("out/checkpoints/trend_2011.ckpt");
    std::fs::create_dir_all(ckpt.parent().unwrap()).unwrap();
    let c = Checkpoint {
        t: 15,
        map: vec![0; w * h],
        state: InertiaState::new(5, 0.1),
        best_sum: 0,
        since_best: 0,
        records: Vec::new(),
        identity: Some(RunIdentity {
            config_sha256: "0123456789ab".repeat(5) + "cdef",
            seed: 2006,
            scenario: "trend_2011".into(),
            stage: "scenario".into(),
        }),
    };
    let mut bytes = Vec::new();
    c.write(&mut bytes).unwrap();
    std::fs::write(&ckpt, &bytes).unwrap();
    let before = hashes(d.path());
    let o = run_trend(d.path(), &["--resume"]);
    assert_fails(
        &o,
        &[
            "trend_2011.ckpt: checkpoint of another run, refusing to resume",
            "study config (SHA-256 0123456789ab in the checkpoint",
            "expected a checkpoint of this study, seed, scenario and stage",
        ],
    );
    assert!(!o.stderr.contains("seed ("), "{}", o.stderr);
    assert_unchanged(&before);
    assert_run_failed(&d.path().join("out"));
}

#[test]
fn files_an_earlier_run_left_in_the_folder_are_not_listed_as_outputs() {
    let d = quick_dongguan();
    let out = d.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // what an earlier run (another scenario, another year) left behind
    for stale in ["landuse_urban_2030.tif", "iterations_urban_2030.csv"] {
        std::fs::write(out.join(stale), b"an earlier run's file").unwrap();
    }
    let o = run_trend(d.path(), &[]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    // a long stage shows progress (kind 3): the ANN logs its epochs
    assert!(
        o.stderr.contains("ANN training: epoch 2 of at most 2"),
        "{}",
        o.stderr
    );
    let j = run_json(&out);
    assert_eq!(j["completed"], true);
    let outputs = j["outputs"].as_object().unwrap();
    for stale in ["landuse_urban_2030.tif", "iterations_urban_2030.csv"] {
        assert!(!outputs.contains_key(stale), "{stale} listed: {outputs:?}");
        assert!(out.join(stale).exists(), "{stale} was removed");
    }
    let map = std::fs::read(out.join("landuse_trend_2011.tif")).unwrap();
    assert_eq!(
        outputs["landuse_trend_2011.tif"],
        flus_shared::files::sha256_hex(&map)
    );
    assert!(outputs.contains_key("demand.csv"), "{outputs:?}");
    assert!(j["warnings"].is_array(), "{j}");
}

// ---- kind 5: errors say the real cause ----

/// Runs the trend scenario on one worker started with `worker_args`, with `token` in
/// the token file, expecting the worker's refusal `code` and `remedy` as the message,
/// no resume suggested, no input changed and the run folder saying failed.
fn refused_run(worker_args: &[&str], token: &str, code: &str, remedy: &str) {
    let d = quick_dongguan();
    let worker = start_worker(worker_args);
    std::fs::write(d.path().join("t.token"), token).unwrap();
    let before = hashes(d.path());
    let o = flus(
        &[
            "run",
            &study(d.path()),
            "--no-validation",
            "--scenario",
            "trend",
            "--workers",
            &worker.addr,
            "--token-file",
            "t.token",
        ],
        Some(d.path()),
        LONG,
    );
    assert_fails(
        &o,
        &[
            &format!("{}: {code}", worker.addr),
            "resuming cannot cure this",
            remedy,
        ],
    );
    assert!(!o.stderr.contains("flus run --resume"), "{}", o.stderr);
    assert_unchanged(&before);
    assert_run_failed(&d.path().join("out"));
}

#[test]
fn a_wrong_token_is_the_message_and_no_resume_is_suggested() {
    refused_run(
        &[],
        "not-the-cluster-token-0000",
        "UNAUTHENTICATED",
        "give the coordinator the workers' token (--token-file",
    );
}

#[test]
fn a_worker_limit_is_the_message_and_no_resume_is_suggested() {
    // 4 tiles for one worker that holds at most 1
    refused_run(
        &["--max-tiles", "1"],
        flus_e2e::TEST_TOKEN,
        "RESOURCE_EXHAUSTED",
        "raise the workers' limits (--max-tiles",
    );
}

#[test]
fn a_deadline_or_tile_size_of_zero_is_refused_naming_the_flag() {
    let d = quick_dongguan();
    let before = hashes(d.path());
    for (flag, expected) in [
        (
            "--deadline",
            "--deadline 0: expected a number of seconds > 0",
        ),
        (
            "--max-tile-cells",
            "--max-tile-cells 0: expected at least 1",
        ),
    ] {
        let o = flus(&["run", &study(d.path()), flag, "0"], Some(d.path()), LONG);
        assert_fails(&o, &[expected]);
        assert!(!o.stderr.contains("resume"), "{}", o.stderr);
    }
    assert_unchanged(&before);
    assert!(!d.path().join("out").exists(), "nothing is written");
}

#[test]
fn a_worker_with_a_limit_of_zero_refuses_to_start_naming_the_flag() {
    let o = flus_e2e::run_with_timeout(
        {
            let mut c = std::process::Command::new(bin("flus-worker"));
            c.args(["--listen", "127.0.0.1:0", "--max-tiles", "0"])
                .env("FLUS_TOKEN", flus_e2e::TEST_TOKEN)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c
        },
        Duration::from_secs(30),
    );
    assert_fails(&o, &["--max-tiles 0: expected at least 1"]);
    assert!(o.stdout.is_empty(), "it printed an address: {}", o.stdout);
}

#[test]
fn a_port_that_never_answers_fails_within_the_deadline() {
    let d = quick_dongguan();
    // accepts connections (the kernel completes them) and never reads or answers
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    std::fs::write(d.path().join("t.token"), flus_e2e::TEST_TOKEN).unwrap();
    let before = hashes(d.path());
    // before the fix the connection took 30 s to fail whatever --deadline said; reading
    // the inputs takes a few seconds, so 25 s tells the two apart
    let o = flus(
        &[
            "run",
            &study(d.path()),
            "--no-validation",
            "--workers",
            &addr,
            "--token-file",
            "t.token",
            "--deadline",
            "2",
        ],
        Some(d.path()),
        Duration::from_secs(25),
    );
    assert_fails(
        &o,
        &[&format!("worker {addr}: "), "within 2 s (--deadline)"],
    );
    assert_unchanged(&before);
    assert_run_failed(&d.path().join("out"));
    drop(silent);
}

// ---- kind 7: interrupted runs clean up ----

/// The drivers' scratch folders (`flus-drivers-*`) in `tmp`.
fn scratch_folders(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("flus-drivers-"))
        .collect()
}

/// Runs the trend scenario with a checkpoint every iteration and sends `sig` once the
/// first checkpoint is stored (run.json then says running); checks what is left.
fn interrupted(sig: i32, name: &str) {
    let d = quick_dongguan();
    let tmp = tempfile::tempdir().unwrap();
    let before = hashes(d.path());
    let out = d.path().join("out");
    let s = study(d.path());
    let mut sent = false;
    let o = flus_watch(
        &trend_args(&s, &["--checkpoint-every", "1"]),
        &[("TMPDIR", tmp.path().to_str().unwrap())],
        LONG,
        |line, pid| {
            if !sent && line.contains("checkpoint of iteration") && line.contains("stored") {
                assert_eq!(run_json(&out)["status"], "running");
                // the drivers' scratch folder exists while the run goes on
                assert_eq!(scratch_folders(tmp.path()).len(), 1);
                flus_e2e::signal(pid, sig);
                sent = true;
            }
        },
    );
    assert!(sent, "no checkpoint was stored:\n{}", o.stderr);
    assert_eq!(o.code, Some(128 + sig), "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!("{name}: the run stops")),
        "{}",
        o.stderr
    );
    let j = run_json(&out);
    assert_eq!(j["status"], "interrupted", "{j}");
    assert_eq!(j["completed"], false);
    assert!(j["error"].as_str().unwrap().contains(name), "{j}");
    let left = scratch_folders(tmp.path());
    assert!(left.is_empty(), "scratch folders left in TMPDIR: {left:?}");
    assert_unchanged(&before);
    assert!(!d.path().join("out/landuse_trend_2011.tif").exists());
}

#[test]
fn sigterm_records_an_interrupted_run_and_removes_the_scratch_folder() {
    interrupted(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_records_an_interrupted_run_and_removes_the_scratch_folder() {
    interrupted(libc::SIGINT, "SIGINT");
}
