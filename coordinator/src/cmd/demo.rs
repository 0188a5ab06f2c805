//! `flus demo`: runs the shipped Ben Cat example study end to end with local workers
//! (`flus run`) and says where the outputs and the report are.

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
    // `flus run` with its own defaults: parse its arguments rather than spell every field.
    #[derive(clap::Parser)]
    struct RunLine {
        #[command(flatten)]
        run: super::run::Args,
    }
    let mut line: Vec<std::ffi::OsString> = vec!["flus-run".into(), study.clone().into()];
    line.extend(["--out".into(), out.clone().into()]);
    if let Some(n) = args.local_workers {
        line.extend(["--local-workers".into(), n.to_string().into()]);
    }
    let run_args = <RunLine as clap::Parser>::try_parse_from(line)?.run;
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
    let report = out.join("report.html");
    let report = std::fs::canonicalize(&report).unwrap_or(report);
    println!("Report (open in a browser): file://{}", report.display());
    Ok(())
}
