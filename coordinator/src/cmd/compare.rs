//! `flus compare`.

/// Arguments of `flus compare`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `flus compare`.
pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("flus compare is not available yet")
}
