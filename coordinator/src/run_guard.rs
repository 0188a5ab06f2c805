//! What keeps a `flus run` from losing data or passing off a wrong result as complete:
//! the arguments checked before any work, the planned outputs refused when one is an
//! input, the status marker of `run.json` (running, failed, interrupted), checkpoints
//! resumed only by the run they belong to, and SIGINT/SIGTERM recorded as an
//! interrupted run with the drivers' scratch folder removed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use flus_shared::ca::{engine::Checkpoint, RunIdentity};
use flus_shared::config::Study;
use flus_shared::{files, notices};
use serde_json::json;

/// Refuses settings of `flus run` that can never finish or mean nothing, naming the flag.
pub fn check_args(
    deadline: f64,
    max_tile_cells: usize,
    tiles_per_worker: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        deadline.is_finite() && deadline > 0.0,
        "--deadline {deadline}: expected a number of seconds > 0 (every worker call must \
         be given time to answer)"
    );
    anyhow::ensure!(
        max_tile_cells > 0,
        "--max-tile-cells 0: expected at least 1 cell per tile"
    );
    anyhow::ensure!(
        tiles_per_worker > 0,
        "--tiles-per-worker 0: expected at least 1 tile per worker"
    );
    Ok(())
}

/// The files a run of `study` into `out` writes whose names are known before it starts
/// (the maps, the suitability and run.json), for [`files::check_outputs`].
pub fn planned_outputs(study: &Study, out: &Path, scenarios: &[String]) -> Vec<PathBuf> {
    let mk = &study.config.markov;
    let mut names = vec![
        "run.json".to_string(),
        format!("landuse_{}.tif", mk.to),
        format!("suitability_{}.tif", mk.to),
        format!("validation_{}.tif", mk.to),
        format!("validation_change_observed_{}.tif", mk.to),
        format!("validation_change_simulated_{}.tif", mk.to),
        format!("validation_components_{}.tif", mk.to),
    ];
    for sc in &study.config.scenarios {
        if scenarios.is_empty() || scenarios.contains(&sc.name) {
            for y in mk.years() {
                names.push(format!("landuse_{}_{y}.tif", sc.name));
            }
        }
    }
    names.into_iter().map(|n| out.join(n)).collect()
}

/// Writes `run.json` of an unfinished run: `completed: false`, `status` (running, failed,
/// interrupted), the error when there is one, and the warnings so far.
pub fn write_marker(
    out: &Path,
    study: &Path,
    status: &str,
    error: Option<String>,
) -> flus_shared::Result<()> {
    let j = json!({
        "completed": false,
        "status": status,
        "error": error,
        "study": study,
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "warnings": notices::all(),
    });
    files::write_atomic(
        &out.join("run.json"),
        serde_json::to_string_pretty(&j)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// The identity of the CA run labelled `label` (`validation` or `<scenario>_<year>`) of
/// the study file with SHA-256 `config_sha256` and seed `seed`.
pub fn identity(config_sha256: &str, seed: u64, label: &str) -> RunIdentity {
    RunIdentity {
        config_sha256: config_sha256.to_string(),
        seed,
        scenario: label.to_string(),
        stage: if label == "validation" {
            "validation"
        } else {
            "scenario"
        }
        .to_string(),
    }
}

/// The checkpoint at `path` to resume the run `expected` from: `None` when there is
/// none, an error naming what differs when it belongs to another run.
pub fn resume_from(path: &Path, expected: &RunIdentity) -> anyhow::Result<Option<Checkpoint>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let c = Checkpoint::read(bytes, path)?;
    expected.check_resume(c.identity.as_ref(), path)?;
    Ok(Some(c))
}

/// Exit status of a process ended by signal `sig` (the shell's 128 + n).
fn exit_code(sig: i32) -> i32 {
    128 + sig
}

/// On SIGINT or SIGTERM (from now until the process ends): `run.json` in `out` says
/// `status: "interrupted"`, the drivers' scratch folders are removed, and the process
/// exits with 128 + the signal's number (local workers follow: PR_SET_PDEATHSIG).
pub fn on_interrupt(out: PathBuf, study: PathBuf) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("signal runtime")?;
    use tokio::signal::unix::{signal, SignalKind};
    // registered here, so that a signal arriving from now on is seen
    let (mut int, mut term) = rt.block_on(async {
        anyhow::Ok((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("flus-signals".into())
        .spawn(move || {
            let (name, sig) = rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => ("SIGINT", libc::SIGINT),
                    _ = term.recv() => ("SIGTERM", libc::SIGTERM),
                }
            });
            tracing::error!("{name}: the run stops");
            flus_shared::stack::remove_scratch();
            let msg = format!("interrupted by {name}; the outputs are incomplete");
            if let Err(e) = write_marker(&out, &study, "interrupted", Some(msg)) {
                tracing::error!("cannot record the interruption in run.json: {e}");
            }
            std::process::exit(exit_code(sig));
        })
        .context("signal thread")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_or_tile_size_of_zero_is_refused_naming_the_flag() {
        let e = check_args(0.0, 10, 4).unwrap_err().to_string();
        assert!(e.contains("--deadline 0") && e.contains("> 0"), "{e}");
        let e = check_args(1.0, 0, 4).unwrap_err().to_string();
        assert!(e.contains("--max-tile-cells 0"), "{e}");
        assert!(check_args(0.5, 1, 1).is_ok());
    }

    #[test]
    fn a_signal_exits_like_a_shell_reports_it() {
        // bash: 130 after Ctrl-C, 143 after SIGTERM
        assert_eq!(exit_code(libc::SIGINT), 130);
        assert_eq!(exit_code(libc::SIGTERM), 143);
    }
}
