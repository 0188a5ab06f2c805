//! Output helpers shared by the commands: logging set-up and the one-JSON-object rule.

use serde::Serialize;

/// Sets up `tracing` on stderr: `RUST_LOG` filter (default info), JSON lines on request.
pub fn init_logging(json: bool, quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.with_target(false).init();
    }
}

/// Prints `value` as one JSON object on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
