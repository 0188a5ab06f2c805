//! `flus demand`.

/// Arguments of `flus demand`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `flus demand`.
pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("flus demand is not available yet")
}
