//! The points of `flus gwr` from its CSV table.

use std::path::Path;

use anyhow::{bail, Context};
use flus_shared::gwr::GwrData;

use super::Args;

/// The points of `--csv`: `--y`, the factors `--x` and the coordinates `--coords`
/// (checked as longitude, latitude with --spherical), standardised with --standardize.
pub(super) fn read_data(args: &Args) -> anyhow::Result<GwrData> {
    let mut names: Vec<&str> = vec![args.y.as_str(), &args.coords[0], &args.coords[1]];
    names.extend(args.x.iter().map(String::as_str));
    let cols = read_columns(&args.csv, &names)?;
    let coords = cols[1]
        .iter()
        .zip(&cols[2])
        .map(|(x, y)| [*x, *y])
        .collect();
    let factors = args
        .x
        .iter()
        .cloned()
        .zip(cols[3..].iter().cloned())
        .collect();
    if args.spherical {
        check_lon_lat(&args.csv, &args.coords, &cols[1], &cols[2])?;
    }
    let mut data = GwrData::new(&args.y, cols[0].clone(), factors, coords)
        .with_context(|| format!("{}", args.csv.display()))?
        .with_spherical(args.spherical);
    if args.standardize {
        data.standardize_factors();
    }
    Ok(data)
}

/// Reads the named numeric columns of a CSV file; errors name the file, the column and
/// the row (1-based data row, header excluded).
fn read_columns(path: &Path, names: &[&str]) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("{}: cannot open the CSV file", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let mut idx = Vec::with_capacity(names.len());
    for name in names {
        match headers.iter().position(|h| h == *name) {
            Some(i) => idx.push(i),
            None => bail!(
                "{}: no column `{name}` (columns are: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    let mut cols = vec![Vec::new(); names.len()];
    for (r, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), r + 1))?;
        for (c, &i) in idx.iter().enumerate() {
            let raw = rec.get(i).unwrap_or("");
            let v: f64 = raw.parse().ok().filter(|v: &f64| v.is_finite()).with_context(|| {
                format!(
                    "{}: column `{}` row {}: `{raw}` is not a finite number (non-numeric, empty, NaN or infinite)",
                    path.display(),
                    names[c],
                    r + 1
                )
            })?;
            cols[c].push(v);
        }
    }
    Ok(cols)
}

/// With --spherical: every longitude in [-360, 360] and latitude in [-90, 90], else an
/// error naming the file, the column, the row and the value.
fn check_lon_lat(path: &Path, names: &[String], lon: &[f64], lat: &[f64]) -> anyhow::Result<()> {
    for (name, col, limit) in [(&names[0], lon, 360.0), (&names[1], lat, 90.0)] {
        if let Some(i) = col.iter().position(|v| v.abs() > limit) {
            bail!(
                "{}: column `{name}` row {} holds {}; --spherical expects longitude, latitude in degrees (|value| <= {limit})",
                path.display(),
                i + 2,
                col[i]
            );
        }
    }
    Ok(())
}
