//! Output helpers shared by the commands: logging set-up, progress bars and the
//! one-JSON-object rule.
//!
//! Progress bars (indicatif) are drawn on stderr only when it is a terminal and neither
//! `--quiet` nor `--log-json` is given; log lines are then written through the bars'
//! `suspend`, so they never tear a bar. Otherwise there are no bars and the commands
//! keep their log lines.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

static BARS: OnceLock<Option<MultiProgress>> = OnceLock::new();

/// The progress bars, when they are shown.
pub fn bars() -> Option<&'static MultiProgress> {
    BARS.get().and_then(Option::as_ref)
}

/// stderr, written with the progress bars suspended.
struct BarWriter;

impl Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match bars() {
            Some(m) => m.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match bars() {
            Some(m) => m.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Sets up `tracing` on stderr: `RUST_LOG` filter (default info), JSON lines on request;
/// progress bars when stderr is a terminal and neither `json` nor `quiet`.
pub fn init_logging(json: bool, quiet: bool) {
    let show = !json && !quiet && std::io::stderr().is_terminal();
    let _ = BARS.set(show.then(MultiProgress::new));
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_writer(|| BarWriter)
        .with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.with_target(false).init();
    }
}

/// One stage on screen: a spinner with the stage's name and elapsed time, ticked in
/// the background; when dropped it is replaced by a "done" line. Without bars it does
/// nothing.
pub struct Stage(Option<ProgressBar>);

/// Replaces a finished bar by `line` printed above the live bars.
fn finish_with_line(pb: &ProgressBar, line: String) {
    if let Some(m) = bars() {
        let _ = m.println(line);
    }
    pb.finish_and_clear();
}

/// Starts the spinner of stage `name` (see [`Stage`]).
pub fn stage(name: &str) -> Stage {
    Stage(bars().map(|m| {
        let pb = m.add(ProgressBar::new_spinner());
        pb.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(name.to_string());
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    }))
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(pb) = &self.0 {
            finish_with_line(
                pb,
                format!("✔ {} ({:.1} s)", pb.message(), pb.elapsed().as_secs_f64()),
            );
        }
    }
}

/// A bar of a CA run: iteration out of `max`, and the sum of |gap| in the message.
pub struct CaBar(ProgressBar);

/// The bar of CA run `label` of at most `max` iterations, when bars are shown.
pub fn ca_bar(label: &str, max: u32) -> Option<CaBar> {
    bars().map(|m| {
        let pb = m.add(ProgressBar::new(max as u64));
        pb.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30.cyan/blue}] iteration {pos}/{len}, sum |gap| = {msg} [{elapsed}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb.set_prefix(label.to_string());
        CaBar(pb)
    })
}

impl CaBar {
    /// Shows iteration `t` and `gap`.
    pub fn update(&self, t: u32, gap: u64) {
        self.0.set_position(t as u64);
        self.0.set_message(gap.to_string());
    }
}

impl Drop for CaBar {
    fn drop(&mut self) {
        let pb = &self.0;
        finish_with_line(
            pb,
            format!(
                "✔ {}: {} iterations, sum |gap| = {} ({:.1} s)",
                pb.prefix(),
                pb.position(),
                pb.message(),
                pb.elapsed().as_secs_f64()
            ),
        );
    }
}

/// Prints `value` as one JSON object on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// [`print_json`] with the keys of every object in sorted order (the order of the
/// objects that were serde_json values before they were typed, e.g. `flus validate
/// --json`'s).
pub fn print_json_sorted<T: Serialize>(value: &T) -> anyhow::Result<()> {
    print_json(&serde_json::to_value(value)?)
}
