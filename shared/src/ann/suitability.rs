//! Suitability inference (whole grid or a window of cells), band-major output, K-band
//! GeoTIFF writing and reading, and the max-suitability check of docs/design.md §4.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::network::Network;
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::layers::Layers;
use crate::raster;

/// Cells per parallel work unit of [`suitability`].
const CHUNK_CELLS: usize = 4096;

fn window_impl(
    drivers: &[&[f32]],
    valid: &[bool],
    net: &Network,
    out: &mut [f32],
    first_cell: usize,
) -> Result<()> {
    let k = net.n_classes();
    let mut s = net.scratch();
    let mut raw = vec![0f32; drivers.len()];
    for (cell, (o, &ok)) in out.chunks_exact_mut(k).zip(valid).enumerate() {
        if !ok {
            o.iter_mut().for_each(|v| *v = 0.0);
            continue;
        }
        for (i, (r, layer)) in raw.iter_mut().zip(drivers).enumerate() {
            *r = layer[cell];
            if !r.is_finite() {
                return Err(Error::Data(format!(
                    "suitability: driver `{}` is {} at cell {} (a valid cell); expected a \
                     finite number (mark the cell invalid)",
                    net.driver_names()[i],
                    r,
                    first_cell + cell
                )));
            }
        }
        net.predict_with(&raw, &mut s, o);
    }
    Ok(())
}

fn check_window(drivers: &[&[f32]], valid: &[bool], net: &Network, out_len: usize) -> Result<()> {
    check_layers(&drivers.to_vec(), valid.len(), net, out_len)
}

/// Checks that `drivers` are the network's, each with `cells` values, and that `out_len`
/// slots hold K values per cell.
fn check_layers(drivers: &dyn Layers, cells: usize, net: &Network, out_len: usize) -> Result<()> {
    if drivers.count() != net.n_drivers() {
        return Err(Error::Data(format!(
            "suitability: {} driver layer(s) given, the network was trained on {} ({})",
            drivers.count(),
            net.n_drivers(),
            net.driver_names().join(", ")
        )));
    }
    for (layer, name) in net.driver_names().iter().enumerate() {
        if drivers.cells(layer) != cells {
            return Err(Error::Data(format!(
                "suitability: driver `{name}` has {} values for {cells} cells",
                drivers.cells(layer),
            )));
        }
    }
    if out_len != cells * net.n_classes() {
        return Err(Error::Data(format!(
            "suitability: output has {out_len} slots, expected {cells} cells x {} classes",
            net.n_classes()
        )));
    }
    Ok(())
}

/// Suitability of a window of cells (single-threaded): `drivers` hold the raw values of
/// the window's cells (each `valid.len()` long, in any cell order), `out` receives
/// `valid.len() * K` values, cell-major (`out[cell * K + k]`), 0 for invalid cells.
///
/// Every cell is computed by the same code on its own values, so the result for a cell
/// does not depend on the window it is computed in. This is what a worker calls on its
/// tile. A NaN or infinite driver value in a valid cell is an error.
pub fn suitability_window(
    drivers: &[&[f32]],
    valid: &[bool],
    net: &Network,
    out: &mut [f32],
) -> Result<()> {
    check_window(drivers, valid, net, out.len())?;
    window_impl(drivers, valid, net, out, 0)
}

/// Suitability of every cell, cell-major (`index cell * K + k`, invalid cells 0), in
/// parallel (rayon) over chunks of cells; bit-identical for any thread count and equal
/// to [`suitability_window`] over any split of the cells.
pub fn suitability(drivers: &dyn Layers, valid: &[bool], net: &Network) -> Result<Vec<f32>> {
    let k = net.n_classes();
    let mut out = vec![0f32; valid.len() * k];
    check_layers(drivers, valid.len(), net, out.len())?;
    fill_parallel(drivers, valid, net, &mut out, 0)?;
    Ok(out)
}

/// [`suitability`] in fixed point ([`crate::ca::suitability_to_fixed`]), what the CA
/// steps on, with the largest suitability per class over the valid cells that are not
/// `restricted` (the cells a CA may change; the maxima of [`max_free_suitability`], so
/// that the maxima of tiles combine into the grid's): computed a run of cells at a time,
/// so only the fixed-point values of every cell are held.
pub fn suitability_fixed(
    drivers: &dyn Layers,
    valid: &[bool],
    restricted: &[bool],
    net: &Network,
) -> Result<(Vec<u16>, Vec<f32>)> {
    let k = net.n_classes();
    let cells = valid.len();
    if restricted.len() != cells {
        return Err(Error::Data(format!(
            "suitability: restrictions of {} cells for {cells} valid flags",
            restricted.len()
        )));
    }
    check_layers(drivers, cells, net, cells * k)?;
    let mut fixed = vec![0u16; cells * k];
    let mut max = vec![0f32; k];
    let run = 16 * CHUNK_CELLS;
    let mut out = vec![0f32; run.min(cells) * k];
    for a in (0..cells).step_by(run) {
        let e = (a + run).min(cells);
        let o = &mut out[..(e - a) * k];
        fill_parallel(drivers, &valid[a..e], net, o, a)?;
        let free: Vec<bool> = (a..e).map(|i| valid[i] && !restricted[i]).collect();
        for (m, x) in max.iter_mut().zip(max_suitability_per_class(o, &free, k)) {
            *m = m.max(x);
        }
        for (f, &v) in fixed[a * k..e * k].iter_mut().zip(o.iter()) {
            *f = crate::ca::suitability_to_fixed(v);
        }
    }
    Ok((fixed, max))
}

/// The suitability of the cells `first_cell .. first_cell + valid.len()` of `drivers`
/// into `out` (K per cell), in parallel over chunks of cells, each reading its own run.
fn fill_parallel(
    drivers: &dyn Layers,
    valid: &[bool],
    net: &Network,
    out: &mut [f32],
    first_cell: usize,
) -> Result<()> {
    let k = net.n_classes();
    let results: Vec<Result<()>> = out
        .par_chunks_mut(CHUNK_CELLS * k)
        .enumerate()
        .map(|(chunk, o)| {
            let a = chunk * CHUNK_CELLS;
            let b = a + o.len() / k;
            let mut runs = vec![vec![0f32; b - a]; drivers.count()];
            for (layer, r) in runs.iter_mut().enumerate() {
                drivers.read(layer, first_cell + a, r)?;
            }
            let window: Vec<&[f32]> = runs.iter().map(|r| r.as_slice()).collect();
            window_impl(&window, &valid[a..b], net, o, first_cell + a)
        })
        .collect();
    // The first error in cell order, whatever the thread count.
    results.into_iter().collect::<Result<()>>()
}

/// The largest suitability per class over the valid cells that are not `restricted`
/// (the cells a CA may change), computed from `net` a strip of cells at a time: the
/// maxima of [`max_suitability_per_class`] without the suitability of every cell.
pub fn max_free_suitability(
    drivers: &dyn Layers,
    valid: &[bool],
    restricted: &[bool],
    net: &Network,
) -> Result<Vec<f32>> {
    let k = net.n_classes();
    let cells = valid.len();
    if restricted.len() != cells {
        return Err(Error::Data(format!(
            "suitability: restrictions of {} cells for {cells} valid flags",
            restricted.len()
        )));
    }
    check_layers(drivers, cells, net, cells * k)?;
    let strip = 64 * CHUNK_CELLS;
    let mut out = vec![0f32; strip.min(cells) * k];
    let mut max = vec![0f32; k];
    for a in (0..cells).step_by(strip) {
        let e = (a + strip).min(cells);
        let o = &mut out[..(e - a) * k];
        fill_parallel(drivers, &valid[a..e], net, o, a)?;
        for (i, v) in o.chunks_exact(k).enumerate() {
            if valid[a + i] && !restricted[a + i] {
                for (m, &x) in max.iter_mut().zip(v) {
                    *m = m.max(x);
                }
            }
        }
    }
    Ok(max)
}

/// Computes the suitability of every cell of `grid` from `net` and writes it as
/// [`write_suitability`] writes the result of [`suitability`] (the same values), never
/// holding more than a strip of rows: each strip's suitability is computed once and
/// its K bands written. Returns the largest suitability per class over the valid cells
/// that are not `restricted` (the cells the CA may change).
pub fn write_suitability_from_network(
    path: &Path,
    grid: &Grid,
    drivers: &dyn Layers,
    valid: &[bool],
    restricted: &[bool],
    net: &Network,
    class_names: &[String],
) -> Result<Vec<f32>> {
    let k = class_names.len();
    let cells = grid.cells();
    if k != net.n_classes() || valid.len() != cells || restricted.len() != cells {
        return Err(Error::raster(
            path,
            format!(
                "suitability of {} classes from a network of {} on a grid of {cells} cells \
                 (valid mask {}, restrictions {}): expected one class name per network \
                 class and one value per cell",
                k,
                net.n_classes(),
                valid.len(),
                restricted.len()
            ),
        ));
    }
    check_layers(drivers, cells, net, cells * k)?;
    let options = raster::WriteOptions {
        nodata: None,
        palette: Vec::new(),
        band_names: class_names.to_vec(),
    };
    let mut writer = raster::StripWriter::<f32>::create(path, grid, k, &options)?;
    let strip_cells = (raster::STRIP_ROWS * grid.width).max(1);
    let mut all = vec![0f32; strip_cells.min(cells) * k];
    let mut band = Vec::with_capacity(strip_cells.min(cells));
    let mut max = vec![0f32; k];
    for a in (0..cells).step_by(strip_cells) {
        let e = (a + strip_cells).min(cells);
        let out = &mut all[..(e - a) * k];
        fill_parallel(drivers, &valid[a..e], net, out, a)?;
        for (b, m) in max.iter_mut().enumerate() {
            band.clear();
            band.extend(out.chunks_exact(k).map(|v| v[b]));
            for (i, &v) in band.iter().enumerate() {
                if valid[a + i] && !restricted[a + i] {
                    *m = m.max(v);
                }
            }
            writer.write_rows(b, &band)?;
        }
    }
    writer.finish()?;
    Ok(max)
}

/// Cell-major values (`cell * k + class`) to `k` bands of `cells` values each.
pub fn to_band_major(cell_major: &[f32], k: usize) -> Vec<Vec<f32>> {
    let k = k.max(1);
    let cells = cell_major.len() / k;
    let mut bands = vec![vec![0f32; cells]; k];
    for (cell, v) in cell_major.chunks_exact(k).enumerate() {
        for (band, &x) in bands.iter_mut().zip(v) {
            band[cell] = x;
        }
    }
    bands
}

/// Writes cell-major suitability (K = `class_names.len()` values per cell) as a K-band
/// Float32 GeoTIFF on `grid`, band names = class names, invalid cells 0 (no nodata is
/// declared: 0 is also a valid suitability).
pub fn write_suitability(
    path: &Path,
    grid: &Grid,
    cell_major: &[f32],
    class_names: &[String],
) -> Result<()> {
    let k = class_names.len();
    if k == 0 || cell_major.len() != grid.cells() * k {
        return Err(Error::raster(
            path,
            format!(
                "suitability has {} values, expected {} cells x {k} classes",
                cell_major.len(),
                grid.cells()
            ),
        ));
    }
    let bands = to_band_major(cell_major, k);
    let refs: Vec<&[f32]> = bands.iter().map(|b| b.as_slice()).collect();
    let options = raster::WriteOptions {
        nodata: None,
        palette: Vec::new(),
        band_names: class_names.to_vec(),
    };
    raster::write_geotiff(path, grid, &refs, &options)
}

/// What [`read_suitability`] found and fixed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuitabilityCheck {
    /// Valid cells whose K values did not sum to 1 (within 1e-4) and were divided by
    /// their sum.
    pub renormalised_cells: usize,
    /// Valid cells whose K values are all 0 (kept: such a cell cannot change in the CA).
    pub zero_cells: usize,
}

/// Reads a user-supplied K-band suitability raster (band b = class b-1) instead of
/// training: checks the band count (= K = `class_names.len()`) and the grid against
/// `reference` (within `tolerance` cells, see [`raster::check_same_grid`]) and that
/// every value of a valid cell is in [0, 1]; renormalises each valid cell to sum 1 when
/// it does not (and says so in the result and the log). Returns cell-major values
/// (`cell * K + k`), 0 for invalid cells.
pub fn read_suitability(
    path: &Path,
    reference: &Path,
    reference_grid: &Grid,
    class_names: &[String],
    valid: &[bool],
    tolerance: f64,
) -> Result<(Vec<f32>, SuitabilityCheck)> {
    let k = class_names.len();
    let info = raster::info(path)?;
    if info.bands != k {
        return Err(Error::raster(
            path,
            format!(
                "has {} band(s), expected {k} (one per class: {})",
                info.bands,
                class_names.join(", ")
            ),
        ));
    }
    raster::check_same_grid(reference, reference_grid, path, &info.grid, tolerance)?;
    let cells = reference_grid.cells();
    if valid.len() != cells {
        return Err(Error::Data(format!(
            "suitability: valid mask has {} cells, the grid {cells}",
            valid.len()
        )));
    }
    let width = reference_grid.width.max(1);
    let mut out = vec![0f32; cells * k];
    for (b, name) in class_names.iter().enumerate() {
        let (_, data) = raster::read_band::<f32>(path, b + 1)?;
        for (cell, (&v, &ok)) in data.iter().zip(valid).enumerate() {
            if !ok {
                continue;
            }
            if !(-1e-6..=1.0 + 1e-6).contains(&v) {
                return Err(Error::raster(
                    path,
                    format!(
                        "band {} (`{name}`): value {v} at row {}, column {} of a valid cell; \
                         expected a suitability in [0, 1]",
                        b + 1,
                        cell / width,
                        cell % width
                    ),
                ));
            }
            out[cell * k + b] = v.clamp(0.0, 1.0);
        }
    }
    let mut check = SuitabilityCheck::default();
    for (o, _) in out.chunks_exact_mut(k).zip(valid).filter(|(_, &ok)| ok) {
        let sum: f64 = o.iter().map(|&v| v as f64).sum();
        if sum == 0.0 {
            check.zero_cells += 1;
        } else if (sum - 1.0).abs() > 1e-4 {
            check.renormalised_cells += 1;
            for v in o.iter_mut() {
                *v = (*v as f64 / sum) as f32;
            }
        }
    }
    if check.renormalised_cells > 0 {
        tracing::warn!(
            "{}: {} valid cell(s) did not sum to 1 over the {k} classes and were renormalised",
            path.display(),
            check.renormalised_cells
        );
    }
    if check.zero_cells > 0 {
        tracing::warn!(
            "{}: {} valid cell(s) have suitability 0 for every class; they cannot change",
            path.display(),
            check.zero_cells
        );
    }
    Ok((out, check))
}

/// For each class, the maximum suitability over the valid cells (0 without valid cells).
pub fn max_suitability_per_class(cell_major: &[f32], valid: &[bool], k: usize) -> Vec<f32> {
    let k = k.max(1);
    cell_major
        .par_chunks(CHUNK_CELLS * k)
        .zip(valid.par_chunks(CHUNK_CELLS))
        .map(|(s, v)| {
            let mut m = vec![0f32; k];
            for (cell, _) in s.chunks_exact(k).zip(v).filter(|(_, &ok)| ok) {
                for (mk, &x) in m.iter_mut().zip(cell) {
                    *mk = mk.max(x);
                }
            }
            m
        })
        .reduce(
            || vec![0f32; k],
            |a, b| a.iter().zip(&b).map(|(x, y)| x.max(*y)).collect(),
        )
}

/// Classes whose maximum suitability is below 1/K: the CA's gate (docs/design.md §4) will
/// hardly ever let cells convert to them. Warn when such a class must grow, and
/// suggest uniform sampling.
pub fn low_suitability_classes(max_per_class: &[f32]) -> Vec<usize> {
    let k = max_per_class.len().max(1);
    let limit = 1.0 / k as f64;
    (0..max_per_class.len())
        .filter(|&c| (max_per_class[c] as f64) < limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ann::Normalisation;
    use gdal::Metadata;

    fn net() -> Network {
        let names = |p: &str, n: usize| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        Network::from_weights(
            names("d", 2),
            names("c", 3),
            Normalisation {
                min: vec![0.0, -5.0],
                max: vec![10.0, 5.0],
            },
            &[vec![1.5, -2.0], vec![-0.7, 0.3], vec![2.0, 1.0]],
            &[0.1, -0.2, 0.0],
            &[
                vec![1.0, -1.0, 0.5],
                vec![-0.5, 2.0, 0.1],
                vec![0.3, 0.3, -1.2],
            ],
            &[0.0, 0.2, -0.1],
        )
        .unwrap()
    }

    fn grid_data(cells: usize) -> (Vec<f32>, Vec<f32>, Vec<bool>) {
        let a = (0..cells).map(|i| (i % 97) as f32 * 0.1).collect();
        let b = (0..cells)
            .map(|i| ((i * 31) % 53) as f32 * 0.2 - 5.0)
            .collect();
        let v = (0..cells).map(|i| i % 13 != 5).collect();
        (a, b, v)
    }

    #[test]
    fn fixed_point_suitability_is_the_rounded_suitability_and_its_maxima_over_free_cells() {
        // more cells than one run of suitability_fixed (16 x 4096), the last run partial
        let cells = 16 * CHUNK_CELLS + 1001;
        let (a, b, valid) = grid_data(cells);
        let net = net();
        let whole = suitability(&[&a, &b], &valid, &net).unwrap();
        // every seventh cell restricted: left out of the maxima, not of the values
        let restricted: Vec<bool> = (0..cells).map(|i| i % 7 == 3).collect();
        let (fixed, max) = suitability_fixed(&[&a, &b], &valid, &restricted, &net).unwrap();
        assert_eq!(fixed.len(), cells * 3);
        for (f, &s) in fixed.iter().zip(&whole) {
            // round(s * 65535), by hand
            assert_eq!(*f as f64, (s as f64 * 65535.0).round(), "{s}");
        }
        let mut want = vec![0f32; 3];
        let free = valid.iter().zip(&restricted).map(|(&v, &r)| v && !r);
        for (v, _) in whole.chunks_exact(3).zip(free).filter(|(_, ok)| *ok) {
            for c in 0..3 {
                want[c] = want[c].max(v[c]);
            }
        }
        assert_eq!(max, want);
    }

    #[test]
    fn whole_grid_equals_any_split_into_windows_and_any_thread_count() {
        let cells = 10_000 + 123;
        let (a, b, valid) = grid_data(cells);
        let net = net();
        let whole = suitability(&[&a, &b], &valid, &net).unwrap();
        assert_eq!(whole.len(), cells * 3);
        for split in [1usize, 7, 4096, 5000] {
            let mut pieces = Vec::new();
            let mut start = 0;
            while start < cells {
                let end = (start + split).min(cells);
                let mut out = vec![0f32; (end - start) * 3];
                suitability_window(
                    &[&a[start..end], &b[start..end]],
                    &valid[start..end],
                    &net,
                    &mut out,
                )
                .unwrap();
                pieces.extend(out);
                start = end;
            }
            assert!(
                pieces
                    .iter()
                    .zip(&whole)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "split {split}"
            );
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let same = one.install(|| suitability(&[&a, &b], &valid, &net).unwrap());
        assert!(same
            .iter()
            .zip(&whole)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        // Invalid cells are 0, valid cells sum to 1.
        for (cell, v) in whole.chunks_exact(3).enumerate() {
            if valid[cell] {
                let s: f64 = v.iter().map(|&x| x as f64).sum();
                assert!((s - 1.0).abs() < 1e-6);
            } else {
                assert_eq!(v, [0.0; 3]);
            }
        }
    }

    #[test]
    fn non_finite_driver_in_a_valid_cell_is_an_error_in_an_invalid_cell_ignored() {
        let (mut a, b, mut valid) = grid_data(9_000);
        a[5_000] = f32::NAN;
        valid[5_000] = true;
        let e = suitability(&[&a, &b], &valid, &net())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`d0`") && e.contains("cell 5000"), "{e}");
        valid[5_000] = false;
        let s = suitability(&[&a, &b], &valid, &net()).unwrap();
        assert_eq!(&s[15_000..15_003], &[0.0; 3]);
    }

    #[test]
    fn band_major_conversion_transposes() {
        let cm = [0.1f32, 0.9, 0.2, 0.8, 0.3, 0.7];
        assert_eq!(
            to_band_major(&cm, 2),
            vec![vec![0.1, 0.2, 0.3], vec![0.9, 0.8, 0.7]]
        );
    }

    #[test]
    fn max_suitability_and_low_classes() {
        let cm = [0.5f32, 0.3, 0.2, 0.9, 0.05, 0.05, 0.0, 0.0, 1.0];
        let valid = [true, true, false];
        let max = max_suitability_per_class(&cm, &valid, 3);
        assert_eq!(max, vec![0.9, 0.3, 0.2]);
        // 1/K = 0.333: classes 1 and 2 are below.
        assert_eq!(low_suitability_classes(&max), vec![1, 2]);
    }

    fn test_grid(w: usize, h: usize) -> Grid {
        Grid {
            width: w,
            height: h,
            geotransform: [500_000.0, 30.0, 0.0, 1_200_000.0, 0.0, -30.0],
            crs_wkt: gdal::spatial_ref::SpatialRef::from_epsg(32648)
                .unwrap()
                .to_wkt()
                .unwrap(),
        }
    }

    #[test]
    fn suitability_written_by_strips_holds_the_values_of_the_whole_grid() {
        let dir = tempfile::tempdir().unwrap();
        // 40 x 300 cells: two rows of 256-row blocks, strips of 10,240 cells
        let grid = test_grid(40, 300);
        let (mut a, b, valid) = grid_data(grid.cells());
        let names: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
        let net = net();
        let whole_path = dir.path().join("whole.tif");
        let whole = suitability(&[&a, &b], &valid, &net).unwrap();
        write_suitability(&whole_path, &grid, &whole, &names).unwrap();
        // every third cell restricted
        let restricted: Vec<bool> = (0..grid.cells()).map(|i| i % 3 == 0).collect();
        let strips_path = dir.path().join("strips.tif");
        let max = write_suitability_from_network(
            &strips_path,
            &grid,
            &[&a, &b],
            &valid,
            &restricted,
            &net,
            &names,
        )
        .unwrap();
        // every band holds the values of the whole grid's suitability
        for b in 1..=3 {
            let (_, w) = raster::read_band::<f32>(&whole_path, b).unwrap();
            let (_, s) = raster::read_band::<f32>(&strips_path, b).unwrap();
            assert_eq!(w, s, "band {b}");
            let want: Vec<f32> = whole.chunks_exact(3).map(|v| v[b - 1]).collect();
            assert_eq!(s, want, "band {b}");
        }
        assert_eq!(raster::info(&strips_path).unwrap().bands, 3);
        let free: Vec<bool> = (0..grid.cells())
            .map(|i| valid[i] && !restricted[i])
            .collect();
        assert_eq!(max, max_suitability_per_class(&whole, &free, 3));
        assert_eq!(
            max_free_suitability(&[&a, &b], &valid, &restricted, &net).unwrap(),
            max
        );
        // nothing free: no maximum above 0
        let all = vec![true; grid.cells()];
        let p = dir.path().join("none.tif");
        let max = write_suitability_from_network(&p, &grid, &[&a, &b], &valid, &all, &net, &names)
            .unwrap();
        assert_eq!(max, vec![0.0; 3]);
        // a bad value in the second strip is named by its grid cell; no file is left
        a[11_000] = f32::INFINITY;
        let valid = vec![true; grid.cells()];
        let bad = dir.path().join("bad.tif");
        let e = write_suitability_from_network(&bad, &grid, &[&a, &b], &valid, &all, &net, &names)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cell 11000"), "{e}");
        assert!(!bad.exists());
    }

    #[test]
    fn written_raster_reads_back_and_unnormalised_cells_are_renormalised() {
        let dir = tempfile::tempdir().unwrap();
        let grid = test_grid(3, 2);
        let names = ["a".to_string(), "b".to_string()];
        // Cell 1 sums to 0.5 (-> 0.8, 0.2), cell 2 is all 0, cell 5 invalid.
        let cm = [
            0.25f32, 0.75, 0.4, 0.1, 0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 0.0,
        ];
        let path = dir.path().join("suit.tif");
        write_suitability(&path, &grid, &cm, &names).unwrap();
        let ds = raster::open(&path).unwrap();
        assert_eq!(ds.rasterband(2).unwrap().description().unwrap(), "b");
        let valid = [true, true, true, true, true, false];
        let (back, check) = read_suitability(&path, &path, &grid, &names, &valid, 0.01).unwrap();
        assert_eq!(
            check,
            SuitabilityCheck {
                renormalised_cells: 1,
                zero_cells: 1
            }
        );
        assert_eq!(&back[..2], &[0.25, 0.75]);
        assert!((back[2] - 0.8).abs() < 1e-6 && (back[3] - 0.2).abs() < 1e-6);
        assert_eq!(&back[6..10], &[1.0, 0.0, 0.5, 0.5]);
        // Wrong band count.
        let three = ["a".to_string(), "b".to_string(), "c".to_string()];
        let e = read_suitability(&path, &path, &grid, &three, &valid, 0.01).unwrap_err();
        assert!(e.to_string().contains("has 2 band(s), expected 3"), "{e}");
        // Values outside [0, 1].
        let bad = [
            0.25f32, 0.75, 1.5, 0.1, 0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 0.0,
        ];
        let bad_path = dir.path().join("bad.tif");
        write_suitability(&bad_path, &grid, &bad, &names).unwrap();
        let e = read_suitability(&bad_path, &path, &grid, &names, &valid, 0.01).unwrap_err();
        assert!(e.to_string().contains("row 0, column 1"), "{e}");
        // Another grid.
        let other = test_grid(2, 3);
        let other_path = dir.path().join("other.tif");
        write_suitability(&other_path, &other, &cm, &names).unwrap();
        let e = read_suitability(&other_path, &path, &grid, &names, &valid, 0.01).unwrap_err();
        assert!(matches!(e, Error::GridMismatch { .. }), "{e}");
    }
}
