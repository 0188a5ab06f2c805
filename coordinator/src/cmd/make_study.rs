//! `flus make-study --from STUDY.toml --cells N --out DIR`: a large study from a real one
//! (every raster upsampled by one integer factor and mosaicked with mirrored copies;
//! see `flus_shared::make_study`), for scaling measurements.

use std::path::PathBuf;

use flus_shared::config::Study;
use flus_shared::make_study;
use serde_json::json;

/// Arguments of `flus make-study`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The source study (TOML).
    #[arg(long)]
    pub from: PathBuf,
    /// About this many cells in the new grid.
    #[arg(long)]
    pub cells: u64,
    /// Folder of the new study (rasters and study.toml).
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `flus make-study`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let study = Study::load(&args.from)?;
    let made = make_study::make(&study, args.cells, &args.out)?;
    if args.json {
        crate::output::print_json(&json!({
            "cells": made.cells,
            "width": made.width,
            "height": made.height,
            "factor": made.factor,
            "study": made.study,
        }))?;
    } else {
        println!(
            "{} x {} = {} cells (factor {}): {}",
            made.width,
            made.height,
            made.cells,
            made.factor,
            made.study.display()
        );
    }
    Ok(())
}
