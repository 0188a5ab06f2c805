//! Files of a `flus run` folder beyond the stage outputs: carbon storage and change
//! rasters per map (t per cell, from the study's pools), and the manifest of every
//! output file with its SHA-256 for run.json.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flus_shared::carbon::{self, CarbonLayers, CodeLayer, PoolsTable, StorageUnit};
use flus_shared::config::Study;
use flus_shared::grid::Grid;
use flus_shared::{files, tables};

use crate::cmd::carbon::write_carbon_raster;

/// File name of the storage raster (t per cell) of the map labelled `label`.
pub fn storage_name(label: &str) -> String {
    format!("carbon_storage_{label}_t.tif")
}

/// File name of the change raster (scenario - base, t per cell) of `label`.
pub fn change_name(label: &str) -> String {
    format!("carbon_change_{label}_t.tif")
}

/// Carbon rasters of a run: the base map's codes and the pools, kept to compare every
/// scenario against.
pub struct RunCarbon {
    pools: PoolsTable,
    base_codes: Vec<f64>,
    base_label: String,
}

impl RunCarbon {
    /// Pools of `study`, base map `base` (class indices) labelled `base_label`.
    pub fn new(study: &Study, base: &[u8], base_label: &str) -> anyhow::Result<Self> {
        Ok(RunCarbon {
            pools: tables::pools_table(study)?,
            base_codes: tables::class_codes(study, base),
            base_label: base_label.to_string(),
        })
    }

    fn layers<'a>(&'a self, alternate: Option<&'a [f64]>) -> CarbonLayers<'a> {
        CarbonLayers {
            baseline: CodeLayer {
                name: &self.base_label,
                values: &self.base_codes,
                nodata: None,
            },
            alternate: alternate.map(|values| CodeLayer {
                name: "scenario map",
                values,
                nodata: None,
            }),
            zones: None,
        }
    }

    /// Writes the base map's storage raster into `dir`; returns its path.
    pub fn write_base(&self, dir: &Path, grid: &Grid) -> anyhow::Result<PathBuf> {
        let p = dir.join(storage_name(&self.base_label));
        let data = carbon::storage_cells(
            &self.pools,
            &self.layers(None),
            carbon::Map::Baseline,
            StorageUnit::TonnesPerCell,
            grid.cell_area(),
        )?;
        write_carbon_raster(
            &p,
            grid,
            &format!("carbon storage {}, t per cell", self.base_label),
            &data,
        )?;
        Ok(p)
    }

    /// Writes the storage raster of scenario map `map` (class indices of `study`)
    /// labelled `label`, and its change against the base; returns both paths.
    pub fn write_scenario(
        &self,
        study: &Study,
        dir: &Path,
        grid: &Grid,
        label: &str,
        map: &[u8],
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let codes = tables::class_codes(study, map);
        let layers = self.layers(Some(&codes));
        let storage = dir.join(storage_name(label));
        let data = carbon::storage_cells(
            &self.pools,
            &layers,
            carbon::Map::Alternate,
            StorageUnit::TonnesPerCell,
            grid.cell_area(),
        )?;
        write_carbon_raster(
            &storage,
            grid,
            &format!("carbon storage {label}, t per cell"),
            &data,
        )?;
        let change = dir.join(change_name(label));
        let data = carbon::change_cells(&self.pools, &layers, grid.cell_area(), 1.0)?;
        write_carbon_raster(
            &change,
            grid,
            &format!("carbon change {label} - {}, t per cell", self.base_label),
            &data,
        )?;
        Ok((storage, change))
    }
}

/// SHA-256 of every regular file directly in `dir` (file name -> hex), leaving out
/// `run.json`, hidden and temporary files, and sub-folders.
pub fn manifest(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name == "run.json" || name.starts_with('.') || !entry.file_type()?.is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        out.insert(name, files::sha256_hex(&bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_hashes_output_files_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.csv"), b"abc").unwrap();
        std::fs::write(d.path().join("run.json"), b"{}").unwrap();
        std::fs::write(d.path().join(".partial-x"), b"x").unwrap();
        std::fs::create_dir(d.path().join("checkpoints")).unwrap();
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
