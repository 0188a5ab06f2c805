//! What a checkpoint belongs to: `flus run --resume` continues a CA run only from a
//! checkpoint of the same study file, seed, scenario and stage; any other is refused,
//! naming what differs.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The run a checkpoint belongs to (stored in its JSON header).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunIdentity {
    /// SHA-256 of the study file's bytes.
    pub config_sha256: String,
    /// Seed of every random number of the run.
    pub seed: u64,
    /// Scenario name (`validation` for the validation run).
    pub scenario: String,
    /// `validation` or `scenario`.
    pub stage: String,
}

impl RunIdentity {
    /// Refuses to resume `path`, whose header holds `found`, in the run `self`: the error
    /// names every field that differs with both values, or says that the checkpoint has
    /// no identity (written by an older flus).
    pub fn check_resume(&self, found: Option<&RunIdentity>, path: &Path) -> Result<()> {
        let Some(found) = found else {
            return Err(Error::Data(format!(
                "{}: the checkpoint does not say which study, seed, scenario and stage it \
                 belongs to (written by an older flus); refusing to resume from it: remove \
                 it, or run without --resume",
                path.display()
            )));
        };
        let mut diffs = Vec::new();
        if found.config_sha256 != self.config_sha256 {
            diffs.push(format!(
                "study config (SHA-256 {} in the checkpoint, {} now)",
                short(&found.config_sha256),
                short(&self.config_sha256)
            ));
        }
        if found.seed != self.seed {
            diffs.push(format!(
                "seed ({} in the checkpoint, {} now)",
                found.seed, self.seed
            ));
        }
        if found.scenario != self.scenario {
            diffs.push(format!(
                "scenario ({:?} in the checkpoint, {:?} now)",
                found.scenario, self.scenario
            ));
        }
        if found.stage != self.stage {
            diffs.push(format!(
                "stage ({:?} in the checkpoint, {:?} now)",
                found.stage, self.stage
            ));
        }
        if diffs.is_empty() {
            return Ok(());
        }
        Err(Error::Data(format!(
            "{}: checkpoint of another run, refusing to resume: {}; expected a checkpoint \
             of this study, seed, scenario and stage (remove it, or run without --resume)",
            path.display(),
            diffs.join(", ")
        )))
    }
}

/// The first 12 hex digits of a hash.
fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sha: &str, seed: u64, scenario: &str) -> RunIdentity {
        RunIdentity {
            config_sha256: sha.into(),
            seed,
            scenario: scenario.into(),
            stage: "scenario".into(),
        }
    }

    #[test]
    fn a_checkpoint_of_another_study_or_seed_is_refused_naming_what_differs() {
        let p = Path::new("out/checkpoints/urban.ckpt");
        let now = id("aaaaaaaaaaaaaaaa", 7, "urban");
        assert!(now.check_resume(Some(&now.clone()), p).is_ok());
        let e = now
            .check_resume(Some(&id("bbbbbbbbbbbbbbbb", 8, "urban")), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("out/checkpoints/urban.ckpt"), "{e}");
        assert!(
            e.contains("study config (SHA-256 bbbbbbbbbbbb in the checkpoint, aaaaaaaaaaaa now)"),
            "{e}"
        );
        assert!(e.contains("seed (8 in the checkpoint, 7 now)"), "{e}");
        assert!(!e.contains("scenario ("), "{e}");
        let e = now.check_resume(None, p).unwrap_err().to_string();
        assert!(e.contains("older flus"), "{e}");
    }
}
