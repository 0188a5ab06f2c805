//! Files of a `flus run` folder beyond the stage outputs: carbon storage rasters per
//! map (t per cell and t/ha, from the study's pools) and change rasters (t per cell), and the manifest of every
//! output file with its SHA-256 for run.json.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flus_shared::area::CellAreas;
use flus_shared::carbon::indexed::{IndexedPools, Rows};
use flus_shared::carbon::{self, StorageUnit};
use flus_shared::config::Study;
use flus_shared::grid::Grid;
use flus_shared::{files, raster, tables};

use crate::cmd::carbon::carbon_writer;

/// File name of the storage raster (t per cell) of the map labelled `label`.
pub fn storage_name(label: &str) -> String {
    format!("carbon_storage_{label}_t.tif")
}

/// File name of the storage raster in t/ha of the map labelled `label`.
pub fn storage_ha_name(label: &str) -> String {
    format!("carbon_storage_{label}_t_ha.tif")
}

/// File name of the change raster (scenario - base, t per cell) of `label`.
pub fn change_name(label: &str) -> String {
    format!("carbon_change_{label}_t.tif")
}

/// Carbon rasters of a run: the pools and the label of the base map every scenario is
/// compared against. The rasters are computed and written a strip of rows at a time
/// from the class maps: no per-cell copy of a map or of a raster is held.
pub struct RunCarbon {
    /// The study's pools by class index.
    pools: IndexedPools,
    base_label: String,
    areas: CellAreas,
}

/// Which raster of a map [`RunCarbon::write_raster`] writes.
#[derive(Clone, Copy)]
enum Raster {
    /// Storage of the base map (`true`) or of the scenario map, in a unit.
    Storage(bool, StorageUnit),
    /// Scenario minus base.
    Change,
}

impl RunCarbon {
    /// Pools of `study`; the base map is labelled `base_label`; cells have `areas`.
    pub fn new(study: &Study, base_label: &str, areas: CellAreas) -> anyhow::Result<Self> {
        let codes: Vec<i64> = study.config.classes.iter().map(|c| c.code).collect();
        Ok(RunCarbon {
            pools: IndexedPools::new(&tables::pools_table(study)?, &codes),
            base_label: base_label.to_string(),
            areas,
        })
    }

    /// Writes raster `what` of `base` (and `map`, class indices of `study`) to `path`, a
    /// strip of rows at a time.
    fn write_raster(
        &self,
        study: &Study,
        path: &Path,
        grid: &Grid,
        band: &str,
        what: Raster,
        base: &[u8],
        map: Option<&[u8]>,
    ) -> anyhow::Result<()> {
        let cells = grid.cells();
        anyhow::ensure!(
            base.len() == cells && map.is_none_or(|m| m.len() == cells),
            "{}: maps of {} and {:?} cells on a grid of {cells}",
            path.display(),
            base.len(),
            map.map(|m| m.len())
        );
        let mut writer = carbon_writer(path, grid, band)?;
        let width = grid.width.max(1);
        let strip = raster::STRIP_ROWS * width;
        for a in (0..cells).step_by(strip) {
            let e = (a + strip).min(cells);
            let rows = Rows {
                areas: &self.areas,
                first_row: a / width,
                width,
            };
            let (base, map) = (&base[a..e], map.map(|m| &m[a..e]));
            let data = match (what, map) {
                (Raster::Storage(is_base, unit), _) => {
                    let which = if is_base {
                        carbon::Map::Baseline
                    } else {
                        carbon::Map::Alternate
                    };
                    self.pools.storage(base, map, which, unit, rows)
                }
                (Raster::Change, Some(map)) => self.pools.change(base, map, rows, 1.0),
                (Raster::Change, None) => anyhow::bail!("{}: a change needs a map", path.display()),
            };
            writer.write_rows(0, &data)?;
        }
        writer.finish()?;
        flus_shared::outputs::finish_format(study, path)?;
        Ok(())
    }

    /// Writes the storage rasters (t per cell and t/ha) of the base map `base` (class
    /// indices of `study`) into `dir`; returns the path of the one in t per cell.
    pub fn write_base(
        &self,
        study: &Study,
        dir: &Path,
        grid: &Grid,
        base: &[u8],
    ) -> anyhow::Result<PathBuf> {
        let label = &self.base_label;
        self.write_storage(study, dir, grid, label, true, base, None)
    }

    /// Writes the storage rasters of one map in t per cell and t/ha; returns the path
    /// of the first.
    #[allow(clippy::too_many_arguments)]
    fn write_storage(
        &self,
        study: &Study,
        dir: &Path,
        grid: &Grid,
        label: &str,
        is_base: bool,
        base: &[u8],
        map: Option<&[u8]>,
    ) -> anyhow::Result<PathBuf> {
        let p = dir.join(storage_name(label));
        let band = format!("carbon storage {label}, t per cell");
        let what = Raster::Storage(is_base, StorageUnit::TonnesPerCell);
        self.write_raster(study, &p, grid, &band, what, base, map)?;
        let ha = dir.join(storage_ha_name(label));
        let band = format!("carbon storage {label}, t/ha");
        let what = Raster::Storage(is_base, StorageUnit::TonnesPerHa);
        self.write_raster(study, &ha, grid, &band, what, base, map)?;
        Ok(p)
    }

    /// Writes the storage raster of scenario map `map` (class indices of `study`)
    /// labelled `label`, and its change against the base map `base`; returns both paths.
    pub fn write_scenario(
        &self,
        study: &Study,
        dir: &Path,
        grid: &Grid,
        label: &str,
        base: &[u8],
        map: &[u8],
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let storage = self.write_storage(study, dir, grid, label, false, base, Some(map))?;
        let change = dir.join(change_name(label));
        let band = format!("carbon change {label} - {}, t per cell", self.base_label);
        self.write_raster(study, &change, grid, &band, Raster::Change, base, Some(map))?;
        Ok((storage, change))
    }
}

/// SHA-256 of every file this process wrote directly in `dir` (file name -> hex),
/// leaving out `run.json`, hidden and temporary files, sub-folders, and every file it did
/// not write (inputs, or outputs an earlier run left in the folder).
pub fn manifest(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    use rayon::prelude::*;
    let names: Vec<String> = files::written_under(dir)
        .into_iter()
        .filter(|rel| rel.components().count() == 1)
        .map(|rel| rel.to_string_lossy().to_string())
        .filter(|name| name != "run.json" && !name.starts_with('.'))
        .collect();
    // the files read and hashed several at a time (the workers are idle by then)
    names
        .into_par_iter()
        .map(|name| {
            let path = dir.join(&name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok((name, files::sha256_hex(&bytes)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ben Cat study's pools (forest 82.2 + 16.4 + 273.0 + 7.6 = 379.2 t/ha, water 0,
    /// built-up 32.0, cropland 258.8) on a 2 x 2 WGS 84 grid of 0.01 degree at 21 N:
    /// the t/ha raster holds the densities, the t per cell raster density x the row's
    /// area (PROJ geodesic areas, see flus_shared::area: 1151016.354958266 m2 for the
    /// upper row 21.01..21.02, 1151091.7102091126 m2 for the lower row).
    #[test]
    fn base_storage_is_written_in_t_per_cell_and_t_per_ha_with_row_areas() {
        let file = Path::new("examples/bencat/study.toml");
        let study = Study {
            config: flus_shared::config::parse(
                include_str!("../../examples/bencat/study.toml"),
                file,
            )
            .unwrap(),
            file: file.to_path_buf(),
            base_dir: ".".into(),
        };
        let grid = Grid {
            width: 2,
            height: 2,
            geotransform: [108.0, 0.01, 0.0, 21.02, 0.0, -0.01],
            crs_wkt: gdal::spatial_ref::SpatialRef::from_epsg(4326)
                .unwrap()
                .to_wkt()
                .unwrap(),
        };
        let areas = CellAreas::of_grid(&grid, "test grid").unwrap();
        let rc = RunCarbon::new(&study, "2020", areas).unwrap();
        let d = tempfile::tempdir().unwrap();
        let t = rc
            .write_base(&study, d.path(), &grid, &[0, 1, 2, 3])
            .unwrap();
        let (_, per_cell) = raster::read_band::<f32>(&t, 1).unwrap();
        let (_, per_ha) =
            raster::read_band::<f32>(&d.path().join("carbon_storage_2020_t_ha.tif"), 1).unwrap();
        assert_eq!(per_ha, vec![379.2f32, 0.0, 32.0, 258.8]);
        let (upper, lower) = (1_151_016.354_958_266, 1_151_091.710_209_112_6);
        let want = [379.2 * upper, 0.0, 32.0 * lower, 258.8 * lower].map(|x| x / 1e4);
        for (g, w) in per_cell.iter().zip(want) {
            assert!((*g as f64 - w).abs() <= 1e-6 * w.max(1.0), "{g} vs {w}");
        }
    }

    #[test]
    fn the_manifest_hashes_the_files_this_run_wrote_only() {
        let d = tempfile::tempdir().unwrap();
        files::write_atomic(&d.path().join("a.csv"), b"abc").unwrap();
        files::write_atomic(&d.path().join("run.json"), b"{}").unwrap();
        files::write_atomic(&d.path().join("checkpoints/s.ckpt"), b"c").unwrap();
        // left by an earlier run (or an input): not written by this process
        std::fs::write(d.path().join("landuse_2006.tif"), b"old").unwrap();
        std::fs::write(d.path().join(".partial-x"), b"x").unwrap();
        let m = manifest(d.path()).unwrap();
        // SHA-256("abc"), FIPS 180-2 appendix B.1
        assert_eq!(
            m,
            BTreeMap::from([(
                "a.csv".to_string(),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()
            )])
        );
    }
}
