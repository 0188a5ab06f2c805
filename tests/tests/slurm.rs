//! A real Slurm: `deploy/slurm/test.sh` starts a single-node Slurm on this machine
//! (munged, slurmctld, slurmd with a generated slurm.conf) and submits
//! `deploy/slurm/flus.sbatch` with its defaults (one node) on the Ben Cat study; the job
//! must complete with the map of a local `flus run`, and leave no token folder.

use std::process::Command;
use std::time::Duration;

use flus_e2e::{bin, flus, repo_root};

const ARGS: [&str; 3] = ["--no-validation", "--scenario", "urbanized"];

fn map_sha256(run_json: &std::path::Path) -> serde_json::Value {
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_json).unwrap()).unwrap();
    assert_eq!(j["completed"], true, "{j}");
    j["scenarios"]["urbanized"]["map_sha256"].clone()
}

#[test]
fn the_sbatch_script_runs_ben_cat_on_a_one_node_slurm_to_the_local_runs_map() {
    let d = tempfile::tempdir().unwrap();
    let study = repo_root().join("examples/bencat/study.toml");
    let local = d.path().join("local");
    let mut args = vec![
        "run",
        study.to_str().unwrap(),
        "--out",
        local.to_str().unwrap(),
    ];
    args.extend(ARGS);
    args.extend(["--local-workers", "1"]);
    let o = flus(&args, None, Duration::from_secs(900));
    assert_eq!(o.code, Some(0), "{}", o.stderr);

    let out = d.path().join("slurm");
    let bins = bin("flus").parent().unwrap().to_path_buf();
    let o = Command::new("bash")
        .arg(repo_root().join("deploy/slurm/test.sh"))
        .arg(&bins)
        .arg(&study)
        .arg(&out)
        .args(ARGS)
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "the Slurm job did not complete:\n{stderr}"
    );
    assert!(stderr.contains("completed"), "{stderr}");

    let h = map_sha256(&local.join("run.json"));
    assert!(h.is_string());
    assert_eq!(h, map_sha256(&out.join("run.json")));
    // the workers' log kept, the job's token folder gone
    assert!(out.join("slurm-workers.log").exists());
    let left: Vec<_> = std::fs::read_dir(repo_root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".flus-"))
        .collect();
    assert!(left.is_empty(), "token folders left: {left:?}");
}
