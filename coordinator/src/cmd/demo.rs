//! `flus demo`: runs the shipped Ben Cat example study and says where the outputs are.

use std::path::{Path, PathBuf};

use flus_shared::metrics;

/// Arguments of `flus demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The example study (default: examples/bencat/study.toml of this source tree).
    #[arg(long)]
    pub study: Option<PathBuf>,
    /// Output folder (default: the study's).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The shipped example study: `examples/bencat/study.toml` under the working folder,
/// else in the source tree this binary was built from.
pub fn default_study() -> PathBuf {
    let local = Path::new("examples/bencat/study.toml");
    if local.exists() {
        return local.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples/bencat/study.toml")
}

/// Runs `flus demo`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let path = args.study.clone().unwrap_or_else(default_study);
    tracing::info!(study = %path.display(), "demo: Markov demand");
    let r = super::demand::compute(&path)?;
    let dir = args.out.clone().unwrap_or_else(|| r.study.output_dir());
    super::demand::write_tables(&r, &dir)?;
    super::demand::print_tables(&r);
    let mk = &r.study.config.markov;
    let k = r.study.k();
    let start = &r.stack.maps[&mk.from];
    let truth = &r.stack.maps[&mk.to];
    let persistence = metrics::compare(start, truth, start, k);
    println!(
        "\nValidation baseline {} -> {} (persistence: the {} map taken as the {} simulation):",
        mk.from, mk.to, mk.from, mk.to
    );
    super::compare::print_metrics(&[("persistence", &persistence)]);
    println!("\noutputs: {}", dir.display());
    Ok(())
}
