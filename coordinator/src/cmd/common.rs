//! Pieces shared by the commands that run the CA in one process.

use anyhow::Context;
use flus_shared::ca::Tiling;

/// Parses a tiling "RxC" (rows x columns of tiles).
pub fn parse_tiling(s: &str) -> anyhow::Result<Tiling> {
    let (r, c) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("--tiles {s:?}: expected ROWSxCOLS, e.g. 2x3"))?;
    let rows: usize = r
        .trim()
        .parse()
        .with_context(|| format!("--tiles {s:?}: rows {r:?} is not a number"))?;
    let cols: usize = c
        .trim()
        .parse()
        .with_context(|| format!("--tiles {s:?}: columns {c:?} is not a number"))?;
    Ok(Tiling { rows, cols })
}

/// A rayon pool of `threads` threads (default: all cores).
pub fn pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        anyhow::ensure!(n > 0, "--threads 0: expected at least 1");
        b = b.num_threads(n);
    }
    b.build().context("thread pool")
}

/// A progress callback of a CA run of at most `max` iterations: a progress bar when bars
/// are shown (see [`crate::output`]), else one log line per iteration.
pub fn progress_logger(label: String, max: u32) -> impl FnMut(u32, u64) {
    let bar = crate::output::ca_bar(&label, max);
    move |t, gap| {
        match &bar {
            Some(b) => b.update(t, gap),
            None => {
                tracing::info!(target: "flus::ca", "{label}: iteration {t}, sum |gap| = {gap}")
            }
        }
        // test builds: a fault test can hold the run between two iterations
        flus_shared::hooks::hold(|| format!("{label}-iteration-{t}"));
    }
}

/// `values` by class name (`names` in class order): a JSON object per class.
pub fn by_class<T: Clone>(names: &[String], values: &[T]) -> std::collections::BTreeMap<String, T> {
    names.iter().cloned().zip(values.iter().cloned()).collect()
}

/// The cluster token: the first line of `file`, else the FLUS_TOKEN environment
/// variable; an error when neither gives one.
pub fn cluster_token(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let t = match file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("token file {}", f.display()))?
            .trim()
            .to_string(),
        None => std::env::var("FLUS_TOKEN")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    anyhow::ensure!(
        !t.is_empty(),
        "--workers needs the cluster token: --token-file FILE or FLUS_TOKEN"
    );
    Ok(t)
}

/// Writes `driver_contributions.csv` of PLUS's LEAS into `out` and returns the JSON of
/// the forests (per class: sample cells, expansion cells, OOB accuracy; the CSV's path).
pub fn leas_outputs(
    out: &std::path::Path,
    leas: &flus_shared::forest::Leas,
) -> anyhow::Result<crate::run_json::suitability::RandomForestJson> {
    flus_shared::files::ensure_dir(out)?;
    let path = out.join("driver_contributions.csv");
    flus_shared::forest::write_contributions(&path, leas)?;
    Ok(crate::run_json::suitability::RandomForestJson::of(
        leas, &path,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilings_parse_and_bad_ones_are_named() {
        assert_eq!(parse_tiling("2x3").unwrap(), Tiling { rows: 2, cols: 3 });
        assert_eq!(parse_tiling("7X5").unwrap(), Tiling { rows: 7, cols: 5 });
        assert!(parse_tiling("7")
            .unwrap_err()
            .to_string()
            .contains("ROWSxCOLS"));
        assert!(parse_tiling("ax2")
            .unwrap_err()
            .to_string()
            .contains("rows"));
    }
}
