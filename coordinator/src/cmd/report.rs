//! `flus report RUN_DIR`: rebuilds `report.html` and its PNG maps from the run.json and
//! the files of a `flus run` folder.

use std::path::PathBuf;

use serde_json::json;

/// Arguments of `flus report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run folder (holds run.json).
    pub run_dir: PathBuf,
    /// Print one JSON object on stdout: `report` (the page) and `images` (its PNGs).
    #[arg(long)]
    pub json: bool,
}

/// Runs `flus report`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let built = crate::report::build(&args.run_dir)?;
    if args.json {
        crate::output::print_json(&json!({
            "report": built.report,
            "images": built.images,
        }))?;
    } else {
        println!(
            "report: {} ({} images)",
            built.report.display(),
            built.images.len()
        );
    }
    Ok(())
}
