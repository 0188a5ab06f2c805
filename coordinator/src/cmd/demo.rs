//! `flus demo`.

/// Arguments of `flus demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `flus demo`.
pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("flus demo is not available yet")
}
