//! Checkpoints and resuming: every worker lost (the run stops, `--resume` finishes it),
//! and the coordinator killed while writing a checkpoint.

use std::path::{Path, PathBuf};

use flus_e2e::crop;
use flus_e2e::hold::{held_at, Holds};
use flus_e2e::signal;
use serde_json::Value;

use crate::common::{addrs, after_iteration, run, same_map, workers, LABEL};

fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("checkpoints").join(format!("{LABEL}.ckpt"))
}

/// The checkpoint under its final name, complete: a line of JSON, then the whole map
/// (one byte per cell).
fn read_checkpoint(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or_else(|| panic!("{}: no line of JSON", path.display()));
    let c: Value = serde_json::from_slice(&bytes[..line])
        .unwrap_or_else(|e| panic!("{} does not start with complete JSON: {e}", path.display()));
    let size = crop::TEST_WINDOW.2;
    assert_eq!(bytes.len() - line - 1, size * size, "{}", path.display());
    c
}

/// "... checkpoint of iteration N stored" -> N.
fn stored_iteration(line: &str) -> Option<u64> {
    let rest = line.split("checkpoint of iteration ").nth(1)?;
    let (n, tail) = rest.split_once(' ')?;
    tail.starts_with("stored").then(|| n.parse().ok())?
}

#[test]
fn all_workers_lost_stop_the_run_with_a_message_and_resume_finishes_it() {
    let mut ws = workers(2);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    let holds = Holds::new();
    let point = after_iteration(10);
    holds.arm(&point);
    let mut stored = None;
    let first = run(
        dir.path(),
        &list,
        &["--checkpoint-every", "4", "--rejoin-probe", "0"],
        &holds,
        |line, _| {
            if let Some(t) = stored_iteration(line) {
                stored = Some(t);
            }
            if held_at(line, &point) {
                for w in &mut ws {
                    w.guard.kill_and_reap();
                }
                holds.release(&point);
            }
        },
    );
    assert!(holds.reached(&point), "the run reached iteration 10");
    assert_eq!(first.code, Some(1), "a clear failure: {}", first.stderr);
    let last = first.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error:")
            && last.contains("all workers lost (2 of 2)")
            && last.contains("flus run --resume")
            && last.contains("kept"),
        "{last}"
    );
    // run.json marks the run incomplete and names the error
    let marker: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(
        marker["completed"],
        Value::Bool(false),
        "not complete: {marker}"
    );
    assert_eq!(marker["status"], "failed", "{marker}");
    assert!(
        marker["error"]
            .as_str()
            .is_some_and(|e| e.contains("all workers lost")),
        "{marker}"
    );
    // checkpoints after iterations 4 and 8; the loss shows in iteration 11
    let cp = read_checkpoint(&checkpoint_path(dir.path()));
    assert_eq!(cp["t"].as_u64(), Some(8), "the last checkpoint is kept");
    assert_eq!(stored, Some(8), "{}", first.stderr);
    assert!(last.contains("(iteration 8) kept"), "{last}");
    // new workers, same output folder
    let fresh = workers(2);
    let second = run(
        dir.path(),
        &addrs(&fresh),
        &["--resume"],
        &Holds::new(),
        |_, _| {},
    );
    same_map(&second, "resumed after all workers were lost");
    assert!(second.stderr.contains("resuming from checkpoint"));
    assert!(!checkpoint_path(dir.path()).exists(), "checkpoint cleared");
}

#[test]
fn a_coordinator_killed_while_writing_a_checkpoint_leaves_the_previous_one_intact() {
    let ws = workers(2);
    let dir = tempfile::tempdir().unwrap();
    // held between writing the checkpoint of iteration 8 and renaming it: killed there
    let holds = Holds::new();
    let point = format!("checkpoint-{LABEL}-8");
    holds.arm(&point);
    let mut stored = None;
    let mut killed = false;
    let first = run(
        dir.path(),
        &addrs(&ws),
        &["--checkpoint-every", "4"],
        &holds,
        |line, pid| {
            if let Some(t) = stored_iteration(line) {
                stored = Some(t);
            }
            if !killed && held_at(line, &point) {
                signal(pid, libc::SIGKILL);
                killed = true;
            }
        },
    );
    assert!(killed, "the checkpoint write of iteration 8 was held");
    assert_eq!(first.code, None, "killed by the signal");
    assert_eq!(stored, Some(4), "{}", first.stderr);
    // the final name holds the previous checkpoint, complete
    let cp = read_checkpoint(&checkpoint_path(dir.path()));
    assert_eq!(cp["t"].as_u64(), Some(4));
    // the interrupted write is only a temporary file beside it
    let partial: Vec<PathBuf> = std::fs::read_dir(dir.path().join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".partial-")
        })
        .collect();
    assert_eq!(partial.len(), 1, "{partial:?}");
    // complete too, only not renamed yet
    let newer = read_checkpoint(&partial[0]);
    assert_eq!(newer["t"].as_u64(), Some(8));
    let second = run(
        dir.path(),
        &addrs(&ws),
        &["--resume"],
        &Holds::new(),
        |_, _| {},
    );
    same_map(&second, "resumed after a kill during a checkpoint write");
    assert!(second.stderr.contains("resuming from checkpoint"));
    assert!(
        !dir.path().join("checkpoints").exists(),
        "finished: checkpoint and temporary files cleared"
    );
}
