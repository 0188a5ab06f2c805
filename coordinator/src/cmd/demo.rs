//! `flus demo`: runs the shipped Ben Cat example study end to end with local workers
//! (`flus run`) and says where the outputs are.

use std::path::{Path, PathBuf};

/// Arguments of `flus demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The example study (default: examples/bencat/study.toml of this source tree).
    #[arg(long)]
    pub study: Option<PathBuf>,
    /// Output folder (default: the study's).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Local workers (default: one per core).
    #[arg(long)]
    pub local_workers: Option<usize>,
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

fn print_csv(path: &Path) {
    if let Ok(text) = std::fs::read_to_string(path) {
        println!(
            "\n{}:",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        for line in text.lines() {
            println!("  {}", line.replace(',', "\t"));
        }
    }
}

/// Runs `flus demo`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let study = args.study.clone().unwrap_or_else(default_study);
    let loaded = flus_shared::config::Study::load(&study)?;
    let out = args.out.clone().unwrap_or_else(|| loaded.output_dir());
    let run_args = super::run::Args {
        study: study.clone(),
        out: Some(out.clone()),
        local_workers: args.local_workers,
        workers: Vec::new(),
        token_file: None,
        seed: None,
        tiles_per_worker: 4,
        deadline: 120.0,
        checkpoint_every: 5,
        resume: false,
        no_validation: false,
        scenarios: Vec::new(),
        json: false,
        tls: Default::default(),
    };
    super::run::run(&run_args)?;
    for f in [
        "demand.csv",
        "validation_metrics.csv",
        "area_by_class.csv",
        "carbon_storage.csv",
    ] {
        print_csv(&out.join(f));
    }
    println!(
        "\nAll outputs (land-use maps per scenario, tables, run.json): {}",
        out.display()
    );
    Ok(())
}
