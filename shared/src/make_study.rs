//! Large studies from a real one (`flus make-study`): every raster of a study upsampled
//! by one integer factor `f` (each cell becomes `f` x `f` cells: nearest-neighbour
//! replication, for classes, restrictions, zones and drivers alike, so every layer stays
//! aligned and every class count is multiplied by exactly `f * f`) and, when `f * f`
//! copies of each cell are still short of the asked size, mosaicked: the upsampled grid
//! is repeated with every other copy mirrored, so that the edges of neighbouring copies
//! match. The cell size shrinks by `f` (origin, rotation terms and CRS kept), and a
//! `study.toml` with the same classes, carbon pools, parameters and scenarios points at
//! the new rasters.
//!
//! Layers that are not on the reference grid (the first land-use map's) are warped onto
//! it first with GDAL (nearest for classes, restrictions and zones; bilinear for
//! drivers), as `flus` itself does with `align = true`; the new study is then aligned.

use std::path::{Path, PathBuf};

use crate::config::{Study, StudyConfig};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster::{self, Resample, WriteOptions};

/// The size of a generated study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Upsampling factor along each axis.
    pub factor: usize,
    /// Columns of the new grid.
    pub width: usize,
    /// Rows of the new grid.
    pub height: usize,
}

impl Plan {
    /// Cells of the new grid.
    pub fn cells(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// The plan for about `cells` cells from a `width` x `height` source: the largest
/// factor `f` with `f^2 * width * height <= cells` (at least 1), then both sides grown
/// (mirrored mosaic) or, below the source size, cropped by the same ratio to about
/// `cells`. When `cells` is exactly `f^2 * width * height` the grid is the pure
/// upsampling (`f * width` x `f * height`).
pub fn plan(width: usize, height: usize, cells: u64) -> Result<Plan> {
    if width == 0 || height == 0 || cells == 0 {
        return Err(Error::Data(format!(
            "cannot plan {cells} cells from a {width} x {height} grid; expected positive sizes"
        )));
    }
    let src = (width * height) as f64;
    let ratio = cells as f64 / src;
    let mut factor = (ratio.sqrt().floor() as usize).max(1);
    // guard the float floor at exact squares
    while ((factor + 1) * (factor + 1)) as f64 * src <= cells as f64 {
        factor += 1;
    }
    while factor > 1 && (factor * factor) as f64 * src > cells as f64 {
        factor -= 1;
    }
    let grow = (cells as f64 / ((factor * factor) as f64 * src)).sqrt();
    let w = ((factor * width) as f64 * grow).round().max(1.0) as usize;
    let h = ((factor * height) as f64 * grow).round().max(1.0) as usize;
    if w > u32::MAX as usize || h > u32::MAX as usize {
        return Err(Error::Data(format!(
            "{cells} cells from {width} x {height} gives a {w} x {h} grid; too large"
        )));
    }
    Ok(Plan {
        factor,
        width: w,
        height: h,
    })
}

/// Source index (column or row) of output index `x` along an axis of `n` source cells
/// upsampled by `f`: the upsampled axis (`f * n` cells) is repeated, every other copy
/// mirrored (`0, 1, .., fn-1, fn-1, .., 1, 0, 0, 1, ..`), then divided by `f`.
pub fn source_index(x: usize, n: usize, f: usize) -> usize {
    let len = f * n;
    let m = x % (2 * len);
    let u = if m < len { m } else { 2 * len - 1 - m };
    u / f
}

/// `src` (`width` x `height`, row-major) resampled onto `plan`'s grid.
pub fn resample<T: Copy>(src: &[T], width: usize, height: usize, plan: &Plan) -> Vec<T> {
    let cols: Vec<usize> = (0..plan.width)
        .map(|x| source_index(x, width, plan.factor))
        .collect();
    let mut out = Vec::with_capacity(plan.width * plan.height);
    for y in 0..plan.height {
        let row = &src[source_index(y, height, plan.factor) * width..][..width];
        out.extend(cols.iter().map(|&c| row[c]));
    }
    out
}

/// `grid` with cells `factor` times smaller along each axis and `plan`'s size (same
/// origin, same CRS).
pub fn grid_for(grid: &Grid, plan: &Plan) -> Grid {
    let f = plan.factor as f64;
    let g = grid.geotransform;
    Grid {
        width: plan.width,
        height: plan.height,
        geotransform: [g[0], g[1] / f, g[2] / f, g[3], g[4] / f, g[5] / f],
        crs_wkt: grid.crs_wkt.clone(),
    }
}

/// What `make` wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MadeStudy {
    /// Cells of the new grid.
    pub cells: u64,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Upsampling factor.
    pub factor: usize,
    /// The new study.toml.
    pub study: PathBuf,
}

/// Band `band` of `path` on `grid` (as is, or warped with `resample` when it is not on
/// it) and the nodata value it declares.
fn read_on(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    path: &Path,
    band: usize,
    resample: Resample,
) -> Result<(Vec<f64>, Option<f64>)> {
    let info = raster::info(path)?;
    match raster::check_same_grid(
        reference,
        grid,
        path,
        &info.grid,
        study.config.study.grid_tolerance,
    ) {
        Ok(()) => Ok((raster::read_band::<f64>(path, band)?.1, info.nodata)),
        Err(Error::GridMismatch { difference, .. }) => {
            if band != 1 {
                return Err(Error::raster(
                    path,
                    format!("band {band} is off the land-use grid ({difference}); only band 1 can be warped"),
                ));
            }
            tracing::info!(file = %path.display(), %difference, "warping onto the land-use grid");
            let (v, nd) = raster::warp_to_grid(path, grid, resample)?;
            Ok((v, if nd.is_nan() { None } else { Some(nd) }))
        }
        Err(e) => Err(e),
    }
}

/// How a layer is stored in the new study.
#[derive(Clone, Copy)]
enum Store {
    /// Byte when every value and the nodata fit, else Int32 (class maps).
    Classes,
    /// Int32 (zones).
    Int,
    /// Float32 (drivers, restrictions).
    Float,
}

fn fits_u8(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0 && (0.0..=255.0).contains(&v)
}

fn fits_i32(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0 && (i32::MIN as f64..=i32::MAX as f64).contains(&v)
}

/// Writes `values` (on the source grid) resampled onto `grid`/`plan` as `path`.
fn write_layer(
    path: &Path,
    source: &Path,
    values: &[f64],
    nodata: Option<f64>,
    src: &Grid,
    grid: &Grid,
    plan: &Plan,
    store: Store,
) -> Result<()> {
    let (w, h) = (src.width, src.height);
    let is_nd = |v: f64| v.is_nan() || nodata == Some(v);
    match store {
        Store::Classes
            if values.iter().all(|&v| is_nd(v) || fits_u8(v))
                && match nodata {
                    Some(n) => fits_u8(n),
                    None => !values.iter().any(|v| v.is_nan()),
                } =>
        {
            let bytes: Vec<u8> = values.iter().map(|&v| v as u8).collect();
            let out = resample(&bytes, w, h, plan);
            raster::write_geotiff(
                path,
                grid,
                &[&out],
                &WriteOptions {
                    nodata,
                    ..Default::default()
                },
            )
        }
        Store::Classes | Store::Int => write_int(path, source, values, nodata, src, grid, plan),
        Store::Float => {
            let nd = nodata.map(|n| n as f32);
            let vals: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            let out = resample(&vals, w, h, plan);
            raster::write_geotiff(
                path,
                grid,
                &[&out],
                &WriteOptions {
                    nodata: nd.map(|n| n as f64),
                    ..Default::default()
                },
            )
        }
    }
}

fn write_int(
    path: &Path,
    source: &Path,
    values: &[f64],
    nodata: Option<f64>,
    src: &Grid,
    grid: &Grid,
    plan: &Plan,
) -> Result<()> {
    let is_nd = |v: f64| v.is_nan() || nodata == Some(v);
    if let Some(v) = values.iter().find(|&&v| !is_nd(v) && !fits_i32(v)) {
        return Err(Error::raster(
            source,
            format!("value {v} is not an integer that fits Int32; expected integer codes"),
        ));
    }
    let nd = match nodata {
        Some(n) if fits_i32(n) => n as i32,
        _ => i32::MIN,
    };
    let ints: Vec<i32> = values
        .iter()
        .map(|&v| if is_nd(v) { nd } else { v as i32 })
        .collect();
    let out = resample(&ints, src.width, src.height, plan);
    let declared = if nodata.is_some() || values.iter().any(|v| v.is_nan()) {
        Some(nd as f64)
    } else {
        None
    };
    raster::write_geotiff(
        path,
        grid,
        &[&out],
        &WriteOptions {
            nodata: declared,
            ..Default::default()
        },
    )
}

/// File name of a layer in the new study: the source's stem, `.tif`.
fn out_name(path: &Path, used: &mut Vec<String>) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "layer".into());
    let mut name = format!("{stem}.tif");
    let mut i = 2;
    while used.contains(&name) {
        name = format!("{stem}_{i}.tif");
        i += 1;
    }
    used.push(name.clone());
    name
}

/// Writes the study `study` grown to about `cells` cells into folder `out`: every raster
/// (land-use maps, drivers, restrictions, zones) on the new grid and `out/study.toml`.
pub fn make(study: &Study, cells: u64, out: &Path) -> Result<MadeStudy> {
    let cfg = &study.config;
    check_resamplable(study)?;
    let first = cfg.landuse.first().ok_or_else(|| Error::Config {
        file: study.file.clone(),
        key: "landuse".into(),
        message: "no land-use map given".into(),
    })?;
    let reference = study.resolve(&first.path);
    let src = raster::info(&reference)?.grid;
    let plan = plan(src.width, src.height, cells)?;
    let grid = grid_for(&src, &plan);
    crate::files::ensure_dir(out)?;
    let mut new: StudyConfig = cfg.clone();
    let mut used = Vec::new();
    tracing::info!(
        factor = plan.factor,
        width = plan.width,
        height = plan.height,
        "generating the study"
    );
    let mut layer = |path: &Path, band: usize, resample: Resample, store: Store| {
        let (values, nodata) = read_on(study, &reference, &src, path, band, resample)?;
        let name = out_name(path, &mut used);
        tracing::info!(from = %path.display(), to = %name, "layer");
        write_layer(
            &out.join(&name),
            path,
            &values,
            nodata,
            &src,
            &grid,
            &plan,
            store,
        )?;
        Ok::<PathBuf, Error>(PathBuf::from(name))
    };
    for m in &mut new.landuse {
        m.path = layer(
            &study.resolve(&m.path),
            1,
            Resample::Nearest,
            Store::Classes,
        )?;
    }
    for d in &mut new.drivers {
        d.path = layer(
            &study.resolve(&d.path),
            d.band,
            Resample::Bilinear,
            Store::Float,
        )?;
        d.band = 1;
    }
    for r in &mut new.restrictions {
        r.path = layer(
            &study.resolve(&r.path),
            r.band,
            Resample::Nearest,
            Store::Float,
        )?;
        r.band = 1;
    }
    if let Some(z) = &mut new.zones {
        z.path = layer(&study.resolve(&z.path), 1, Resample::Nearest, Store::Int)?;
    }
    let toml_path = write_toml(study, new, &src, &plan, out)?;
    Ok(MadeStudy {
        cells: plan.cells(),
        width: plan.width,
        height: plan.height,
        factor: plan.factor,
        study: toml_path,
    })
}

/// Refuses what make-study cannot resample: a given K-band suitability raster, polygon
/// zones not rasterised yet.
fn check_resamplable(study: &Study) -> Result<()> {
    let cfg = &study.config;
    if let Some(key) = [
        ("ann.suitability", cfg.ann.suitability.is_some()),
        (
            "ann.validation_suitability",
            cfg.ann.validation_suitability.is_some(),
        ),
    ]
    .iter()
    .find(|(_, set)| *set)
    .map(|(k, _)| *k)
    {
        return Err(Error::Config {
            file: study.file.clone(),
            key: key.into(),
            message: "make-study does not resample a K-band suitability raster; remove it so the ANN computes suitability".into(),
        });
    }
    if cfg.zones.as_ref().is_some_and(|z| z.field.is_some()) {
        return Err(Error::Config {
            file: study.file.clone(),
            key: "zones.field".into(),
            message: "polygon zones must be rasterised first (`flus prepare`)".into(),
        });
    }
    Ok(())
}

/// Writes `out/study.toml`: the study `new` (its layers already renamed) under a name
/// saying how it was made, with a header naming the source study.
fn write_toml(
    study: &Study,
    mut new: StudyConfig,
    src: &Grid,
    plan: &Plan,
    out: &Path,
) -> Result<PathBuf> {
    let cfg = &study.config;
    new.study.output = None;
    new.study.name = format!(
        "{} (x{} upsampled, {} x {} cells)",
        cfg.study.name, plan.factor, plan.width, plan.height
    );
    let text = toml::to_string_pretty(&new)
        .map_err(|e| Error::Data(format!("cannot write the study TOML: {e}")))?;
    let header = format!(
        "# Generated by `flus make-study` from {} ({} x {} cells): every raster upsampled\n# by {} (nearest-neighbour replication) and mirrored/mosaicked to {} x {} cells.\n\n",
        study.file.display(),
        src.width,
        src.height,
        plan.factor,
        plan.width,
        plan.height
    );
    let toml_path = out.join("study.toml");
    crate::files::write_atomic(&toml_path, format!("{header}{text}").as_bytes())?;
    Ok(toml_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_square_multiple_is_a_pure_upsampling() {
        // 4 x 3 = 12 cells; 108 = 9 * 12: factor 3, 12 x 9, no mosaic
        assert_eq!(
            plan(4, 3, 108).unwrap(),
            Plan {
                factor: 3,
                width: 12,
                height: 9
            }
        );
        // 12 * 4 = 48 cells; 2 x 2 copies
        assert_eq!(plan(4, 3, 48).unwrap().factor, 2);
        // 20 cells: factor 1, grown by sqrt(20/12) = 1.29: 5 x 4
        assert_eq!(
            plan(4, 3, 20).unwrap(),
            Plan {
                factor: 1,
                width: 5,
                height: 4
            }
        );
    }

    #[test]
    fn the_mosaic_mirrors_every_other_copy() {
        // n = 3 source cells, f = 2: upsampled 0 0 1 1 2 2, then mirrored 2 2 1 1 0 0
        let got: Vec<usize> = (0..14).map(|x| source_index(x, 3, 2)).collect();
        assert_eq!(got, vec![0, 0, 1, 1, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn upsampling_replicates_each_cell_f_by_f() {
        // 2 x 2 source, factor 2 -> 4 x 4
        let src = [1u8, 2, 3, 4];
        let p = Plan {
            factor: 2,
            width: 4,
            height: 4,
        };
        let out = resample(&src, 2, 2, &p);
        assert_eq!(
            out,
            vec![1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4],
            "each cell becomes a 2 x 2 block"
        );
        // one more column: the mirrored copy starts with the last column again
        let p = Plan {
            factor: 1,
            width: 3,
            height: 2,
        };
        assert_eq!(resample(&src, 2, 2, &p), vec![1, 2, 2, 3, 4, 4]);
    }

    #[test]
    fn the_grid_keeps_origin_and_shrinks_cells() {
        let g = Grid {
            width: 10,
            height: 5,
            geotransform: [100.0, 30.0, 0.0, 900.0, 0.0, -30.0],
            crs_wkt: String::new(),
        };
        let p = Plan {
            factor: 3,
            width: 30,
            height: 15,
        };
        let n = grid_for(&g, &p);
        assert_eq!(n.geotransform, [100.0, 10.0, 0.0, 900.0, 0.0, -10.0]);
        // same extent: 30 cells of 10 = 10 cells of 30
        assert_eq!(n.width as f64 * n.geotransform[1], 300.0);
    }
}
