//! Seeded synthetic data of the sizes the peers are timed on (`flus bench`), built like
//! the peers' own generators (`make_synth_lulc.py`, `run_mgwr_synth.py`; same layout
//! and distributions, Philox draws keyed by cell or point instead of numpy's stream):
//!
//! - [`write_lulc_pair`]: a baseline and an alternate land-use map (6 classes, Byte,
//!   nodata 255, tiled 256 x 256, uncompressed) and an InVEST pools CSV;
//! - [`gwr_points`]: points on a 100 km square with 9 N(0, 1) covariates whose
//!   coefficients are smooth surfaces, y with N(0, 0.5^2) noise.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::gwr::{GwrData, GwrError};
use crate::raster::{Encoding, StripWriter, WriteOptions, STRIP_ROWS};
use crate::rng::{stream, CounterRng};

/// Nodata value of the synthetic land-use maps.
pub const LULC_NODATA: u8 = 255;

/// The pools table of the synthetic maps (t/ha): lucode, above, below, soil, dead.
pub const LULC_POOLS: [(u8, f64, f64, f64, f64); 6] = [
    (1, 40.5, 26.8, 186.3, 5.2),
    (2, 82.2, 16.4, 273.0, 7.6),
    (3, 28.2, 33.8, 171.7, 4.8),
    (4, 5.6, 1.1, 25.3, 0.0),
    (5, 0.0, 0.0, 0.0, 0.0),
    (6, 11.2, 2.2, 37.1, 1.0),
];

/// Cumulative shares of classes 1..=6 in the coarse field.
const COARSE_CDF: [f64; 6] = [0.35, 0.65, 0.83, 0.90, 0.94, 1.0];

/// The files of a synthetic land-use pair.
#[derive(Clone, Debug)]
pub struct LulcPair {
    /// Baseline map.
    pub baseline: PathBuf,
    /// Alternate map.
    pub alternate: PathBuf,
    /// InVEST pools CSV.
    pub pools: PathBuf,
}

/// Baseline and alternate class of cell (`row`, `col`) of a `rows` x `cols` map: a
/// coarse random field of blocks (side min(rows, cols) / 40), 3 % salt noise, nodata in
/// a disc, a 3-column left border and 0.5 % of cells; the alternate turns 8 % of
/// cropland into construction, 5 % of grassland into forest, 3 % of forest into
/// cropland and 2 % of unutilised land into grassland.
fn lulc_cell(rng: &CounterRng, rows: usize, cols: usize, row: usize, col: usize) -> (u8, u8) {
    let blk = (rows.min(cols) / 40).max(1);
    let ccols = cols.div_ceil(blk);
    let coarse = (row / blk) * ccols + col / blk;
    let u = CounterRng::unit(rng.block(stream::SYNTH_LULC, 0, coarse as u64, 0)[0]);
    let mut class = COARSE_CDF.iter().position(|&c| u < c).unwrap_or(5) as u8 + 1;
    let w = rng.block(stream::SYNTH_LULC, 1, (row * cols + col) as u64, 0);
    if CounterRng::unit(w[0]) < 0.03 {
        class = (w[1] % 6) as u8 + 1;
    }
    let r = 0.08 * rows.min(cols) as f64;
    let (dy, dx) = (
        row as f64 - 0.7 * rows as f64,
        col as f64 - 0.25 * cols as f64,
    );
    if dy * dy + dx * dx < r * r || col < 3 || CounterRng::unit(w[2]) < 0.005 {
        return (LULC_NODATA, LULC_NODATA);
    }
    let v = CounterRng::unit(w[3]);
    let future = match class {
        1 if v < 0.08 => 4,
        3 if v < 0.05 => 2,
        2 if v < 0.03 => 1,
        6 if v < 0.02 => 3,
        c => c,
    };
    (class, future)
}

/// Writes `lulc_cur.tif`, `lulc_fut.tif` (`rows` x `cols` cells of `pixel` m, UTM 49N)
/// and `carbon_pools.csv` into `dir`, a strip of rows at a time.
pub fn write_lulc_pair(
    dir: &Path,
    rows: usize,
    cols: usize,
    pixel: f64,
    seed: u64,
) -> Result<LulcPair> {
    crate::files::ensure_dir(dir)?;
    let grid = Grid {
        width: cols,
        height: rows,
        geotransform: [300000.0, pixel, 0.0, 3500000.0, 0.0, -pixel],
        crs_wkt: gdal::spatial_ref::SpatialRef::from_epsg(32649)
            .and_then(|s| s.to_wkt())
            .map_err(|e| Error::Data(format!("EPSG:32649: {e}")))?,
    };
    let pair = LulcPair {
        baseline: dir.join("lulc_cur.tif"),
        alternate: dir.join("lulc_fut.tif"),
        pools: dir.join("carbon_pools.csv"),
    };
    let opts = WriteOptions {
        nodata: Some(LULC_NODATA as f64),
        ..Default::default()
    };
    let plain = Encoding {
        uncompressed: true,
        ..Default::default()
    };
    let mut wb = StripWriter::<u8>::create_encoded(&pair.baseline, &grid, 1, &opts, plain)?;
    let mut wa = StripWriter::<u8>::create_encoded(&pair.alternate, &grid, 1, &opts, plain)?;
    let rng = CounterRng::new(seed);
    let mut b = vec![0u8; STRIP_ROWS.min(rows) * cols];
    let mut a = b.clone();
    for y0 in (0..rows).step_by(STRIP_ROWS) {
        let n = STRIP_ROWS.min(rows - y0) * cols;
        b[..n]
            .par_chunks_mut(cols)
            .zip(a[..n].par_chunks_mut(cols))
            .enumerate()
            .for_each(|(r, (br, ar))| {
                for c in 0..cols {
                    (br[c], ar[c]) = lulc_cell(&rng, rows, cols, y0 + r, c);
                }
            });
        wb.write_rows(0, &b[..n])?;
        wa.write_rows(0, &a[..n])?;
    }
    wb.finish()?;
    wa.finish()?;
    let mut csv = String::from("lucode,c_above,c_below,c_soil,c_dead\n");
    for (c, ab, be, so, de) in LULC_POOLS {
        csv.push_str(&format!("{c},{ab},{be},{so},{de}\n"));
    }
    crate::files::write_atomic(&pair.pools, csv.as_bytes())?;
    Ok(pair)
}

/// A standard normal number from two 32-bit words (Box-Muller).
fn normal(w0: u32, w1: u32) -> f64 {
    let (u, v) = (CounterRng::unit(w0), CounterRng::unit(w1));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The true coefficients b0..b9 at (u, v) in [0, 1]^2 (`run_mgwr_synth.py`).
pub fn gwr_true_coefficients(u: f64, v: f64) -> [f64; 10] {
    use std::f64::consts::PI;
    [
        3.0 + u + v,
        1.0 + 2.0 * u,
        1.0 - 2.0 * v,
        (PI * u).sin(),
        (PI * v).cos(),
        u * v,
        0.5,
        u - v,
        (-((u - 0.5).powi(2) + (v - 0.5).powi(2)) / 0.1).exp(),
        -1.0 + u * u,
    ]
}

/// `n` seeded points: coordinates uniform on [0, 100 km]^2 (metres), covariates X1..X9
/// ~ N(0, 1), y = b0 + sum b_j X_j + N(0, 0.5^2) with [`gwr_true_coefficients`].
pub fn gwr_points(n: usize, seed: u64) -> std::result::Result<GwrData, GwrError> {
    let rng = CounterRng::new(seed);
    let mut coords = Vec::with_capacity(n);
    let mut x: Vec<Vec<f64>> = (0..9).map(|_| Vec::with_capacity(n)).collect();
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let draw = |d: u8| rng.block(stream::SYNTH_GWR, 0, i as u64, d);
        let w = draw(0);
        let (u, v) = (CounterRng::unit(w[0]), CounterRng::unit(w[1]));
        coords.push([u * 100_000.0, v * 100_000.0]);
        let b = gwr_true_coefficients(u, v);
        let mut yi = b[0] + 0.5 * normal(w[2], w[3]);
        for j in 0..9 {
            let w = draw(1 + j as u8 / 2);
            let z = if j % 2 == 0 {
                normal(w[0], w[1])
            } else {
                normal(w[2], w[3])
            };
            x[j].push(z);
            yi += b[j + 1] * z;
        }
        y.push(yi);
    }
    let factors = x
        .into_iter()
        .enumerate()
        .map(|(j, c)| (format!("X{}", j + 1), c))
        .collect();
    GwrData::new("y", y, factors, coords)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_pair_has_the_peer_generators_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_lulc_pair(dir.path(), 300, 400, 30.0, 7).unwrap();
        let (info, b) = crate::raster::read_band::<u8>(&p.baseline, 1).unwrap();
        let (_, a) = crate::raster::read_band::<u8>(&p.alternate, 1).unwrap();
        assert_eq!((info.grid.width, info.grid.height), (400, 300));
        assert_eq!(info.nodata, Some(255.0));
        assert_eq!(info.block_size, (256, 256));
        // the 3-column border is nodata, the rest holds classes 1..=6 or nodata
        assert!((0..300).all(|r| (0..3).all(|c| b[r * 400 + c] == 255)));
        assert!(b.iter().all(|&v| (1..=6).contains(&v) || v == 255));
        // nodata in both maps at the same cells; changes only along the four transitions
        for (&x, &y) in b.iter().zip(&a) {
            assert_eq!(x == 255, y == 255);
            assert!(x == y || matches!((x, y), (1, 4) | (3, 2) | (2, 1) | (6, 3)));
        }
        // disc of radius 0.08 * 300 = 24 cells around (210, 100): about pi 24^2 = 1810
        let disc = (0..300 * 400)
            .filter(|&i| {
                let (r, c) = ((i / 400) as f64 - 210.0, (i % 400) as f64 - 100.0);
                r * r + c * c < 24.0 * 24.0
            })
            .count();
        assert!((1750..1870).contains(&disc), "{disc}");
        let pools = crate::carbon::read_pools_csv(&p.pools).unwrap();
        assert_eq!(pools.codes(), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(pools.densities()[1], 82.2 + 16.4 + 273.0 + 7.6);
    }

    #[test]
    fn synthetic_gwr_points_follow_the_stated_distributions() {
        let d = gwr_points(4000, 3).unwrap();
        assert_eq!((d.n(), d.p()), (4000, 10));
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let xs: Vec<f64> = d.coords().iter().map(|c| c[0]).collect();
        // uniform on [0, 100 km]: mean 50 km, sd 28.9 km / sqrt(4000) = 0.46 km
        assert!((mean(&xs) - 50_000.0).abs() < 2_000.0, "{}", mean(&xs));
        let x1: Vec<f64> = (0..d.n()).map(|i| d.row(i)[1]).collect();
        let m = mean(&x1);
        let var = x1.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x1.len() as f64;
        // N(0, 1): mean within 4 sd of the mean (0.063), variance within 0.1
        assert!(m.abs() < 0.07 && (var - 1.0).abs() < 0.1, "{m} {var}");
    }
}
