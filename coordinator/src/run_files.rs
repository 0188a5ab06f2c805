//! Files of a `flus run` folder beyond the stage outputs: carbon storage and change
//! rasters per map (t per cell, from the study's pools), and the manifest of every
//! output file with its SHA-256 for run.json.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flus_shared::carbon::{self, CarbonLayers, CodeLayer, PoolsTable, StorageUnit};
use flus_shared::config::Study;
use flus_shared::grid::Grid;
use flus_shared::{files, raster, tables};

use crate::cmd::carbon::carbon_writer;

/// File name of the storage raster (t per cell) of the map labelled `label`.
pub fn storage_name(label: &str) -> String {
    format!("carbon_storage_{label}_t.tif")
}

/// File name of the change raster (scenario - base, t per cell) of `label`.
pub fn change_name(label: &str) -> String {
    format!("carbon_change_{label}_t.tif")
}

/// Carbon rasters of a run: the pools and the label of the base map every scenario is
/// compared against. The rasters are computed and written a strip of rows at a time
/// from the class maps: no per-cell copy of a map or of a raster is held.
pub struct RunCarbon {
    pools: PoolsTable,
    base_label: String,
}

/// Which raster of a map [`RunCarbon::write_raster`] writes.
#[derive(Clone, Copy)]
enum Raster {
    /// Storage of the base map.
    BaseStorage,
    /// Storage of the scenario map.
    Storage,
    /// Scenario minus base.
    Change,
}

impl RunCarbon {
    /// Pools of `study`; the base map is labelled `base_label`.
    pub fn new(study: &Study, base_label: &str) -> anyhow::Result<Self> {
        Ok(RunCarbon {
            pools: tables::pools_table(study)?,
            base_label: base_label.to_string(),
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
        let strip = (raster::STRIP_ROWS * grid.width).max(1);
        for a in (0..cells).step_by(strip) {
            let e = (a + strip).min(cells);
            let base_codes = tables::class_codes(study, &base[a..e]);
            let codes = map.map(|m| tables::class_codes(study, &m[a..e]));
            let layers = CarbonLayers {
                baseline: CodeLayer {
                    name: &self.base_label,
                    values: &base_codes,
                    nodata: None,
                },
                alternate: codes.as_deref().map(|values| CodeLayer {
                    name: "scenario map",
                    values,
                    nodata: None,
                }),
                zones: None,
            };
            let data = match what {
                Raster::BaseStorage | Raster::Storage => carbon::storage_cells(
                    &self.pools,
                    &layers,
                    if matches!(what, Raster::BaseStorage) {
                        carbon::Map::Baseline
                    } else {
                        carbon::Map::Alternate
                    },
                    StorageUnit::TonnesPerCell,
                    grid.cell_area(),
                )?,
                Raster::Change => {
                    carbon::change_cells(&self.pools, &layers, grid.cell_area(), 1.0)?
                }
            };
            writer.write_rows(0, &data)?;
        }
        writer.finish()?;
        flus_shared::outputs::finish_format(study, path)?;
        Ok(())
    }

    /// Writes the storage raster of the base map `base` (class indices of `study`) into
    /// `dir`; returns its path.
    pub fn write_base(
        &self,
        study: &Study,
        dir: &Path,
        grid: &Grid,
        base: &[u8],
    ) -> anyhow::Result<PathBuf> {
        let p = dir.join(storage_name(&self.base_label));
        let band = format!("carbon storage {}, t per cell", self.base_label);
        self.write_raster(study, &p, grid, &band, Raster::BaseStorage, base, None)?;
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
        let storage = dir.join(storage_name(label));
        let band = format!("carbon storage {label}, t per cell");
        self.write_raster(
            study,
            &storage,
            grid,
            &band,
            Raster::Storage,
            base,
            Some(map),
        )?;
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
    let mut out = BTreeMap::new();
    for rel in files::written_under(dir) {
        let name = rel.to_string_lossy().to_string();
        if rel.components().count() != 1 || name == "run.json" || name.starts_with('.') {
            continue;
        }
        let path = dir.join(&rel);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        out.insert(name, files::sha256_hex(&bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
