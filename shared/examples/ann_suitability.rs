//! Trains the ANN suitability on a shipped example study and times the inference.
//!
//! Usage (from the repository root):
//!     cargo run --release -p flus-shared --example ann_suitability -- bencat [SEED]
//!     cargo run --release -p flus-shared --example ann_suitability -- dongguan [SEED]
//!
//! `ANN_SETTINGS='{"epochs": 300}'` overrides settings (JSON, unnamed fields default).
//! Prints the training report as JSON, then the inference time (best of 5 runs) of
//! `ann::suitability` over the whole grid with the current rayon thread count
//! (`RAYON_NUM_THREADS`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use flus_shared::ann::{self, AnnSettings, TrainingData, INVALID_CLASS};
use flus_shared::raster;

struct Study {
    drivers: Vec<Vec<f32>>,
    driver_names: Vec<String>,
    classes: Vec<u8>,
    class_names: Vec<String>,
    width: usize,
}

fn bencat(root: &Path) -> flus_shared::Result<Study> {
    let dir = root.join("examples/bencat");
    let lu_path = dir.join("landuse_2010.tif");
    let (lu_info, lu) = raster::read_band::<u8>(&lu_path, 1)?;
    let mut classes: Vec<u8> = lu
        .iter()
        .map(|&c| {
            if (1..=4).contains(&c) {
                c - 1
            } else {
                INVALID_CLASS
            }
        })
        .collect();
    let mut drivers = Vec::new();
    let mut driver_names = Vec::new();
    // dem and slope: 0 is a real value, their declared nodata is ignored.
    for (name, nodata) in [
        ("dem", None),
        ("slope", None),
        ("population_2015", Some(-9999.0f32)),
        ("dist_river", Some(-9999.0)),
    ] {
        let p: PathBuf = dir.join(format!("{name}.tif"));
        let (info, v) = raster::read_band::<f32>(&p, 1)?;
        raster::check_same_grid(&lu_path, &lu_info.grid, &p, &info.grid, 0.01)?;
        if let Some(nd) = nodata {
            for (c, &x) in classes.iter_mut().zip(&v) {
                if x == nd {
                    *c = INVALID_CLASS;
                }
            }
        }
        drivers.push(v);
        driver_names.push(name.to_string());
    }
    Ok(Study {
        drivers,
        driver_names,
        classes,
        class_names: ["forest", "water", "built-up", "cropland"]
            .map(String::from)
            .to_vec(),
        width: lu_info.grid.width,
    })
}

fn dongguan(root: &Path) -> flus_shared::Result<Study> {
    let dir = root.join("examples/dongguan");
    let lu_path = dir.join("landuse_2001.tif");
    let (lu_info, lu) = raster::read_band::<i32>(&lu_path, 1)?;
    let mut classes: Vec<u8> = lu
        .iter()
        .map(|&c| {
            if (1..=5).contains(&c) {
                (c - 1) as u8
            } else {
                INVALID_CLASS
            }
        })
        .collect();
    let mut drivers = Vec::new();
    let mut driver_names = Vec::new();
    for name in [
        "dem",
        "slope",
        "aspect",
        "dist_highway",
        "dist_railway",
        "dist_road",
        "dist_town",
        "dist_city",
    ] {
        let p = dir.join("drivers").join(format!("{name}.tif"));
        let (mut info, v) = raster::read_band::<f32>(&p, 1)?;
        // The Dongguan drivers carry no CRS: compare their placement only.
        if info.grid.crs_wkt.is_empty() {
            info.grid.crs_wkt = lu_info.grid.crs_wkt.clone();
        }
        raster::check_same_grid(&lu_path, &lu_info.grid, &p, &info.grid, 0.01)?;
        let nd = info.nodata.unwrap_or(f64::NAN) as f32;
        for (c, &x) in classes.iter_mut().zip(&v) {
            if x == nd || !x.is_finite() {
                *c = INVALID_CLASS;
            }
        }
        drivers.push(v);
        driver_names.push(name.to_string());
    }
    Ok(Study {
        drivers,
        driver_names,
        classes,
        class_names: ["urban", "water", "cropland", "forest", "orchard"]
            .map(String::from)
            .to_vec(),
        width: lu_info.grid.width,
    })
}

fn main() -> flus_shared::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("bencat");
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let study = match which {
        "bencat" => bencat(&root)?,
        "dongguan" => dongguan(&root)?,
        other => {
            return Err(flus_shared::Error::Data(format!(
                "unknown study `{other}`; expected bencat or dongguan"
            )))
        }
    };
    let layers: Vec<&[f32]> = study.drivers.iter().map(|v| v.as_slice()).collect();
    let data = TrainingData {
        drivers: &layers,
        driver_names: &study.driver_names,
        classes: &study.classes,
        class_names: &study.class_names,
        width: study.width,
    };
    let settings: AnnSettings = match std::env::var("ANN_SETTINGS") {
        Ok(json) => serde_json::from_str(&json)
            .map_err(|e| flus_shared::Error::Data(format!("ANN_SETTINGS: {e}")))?,
        Err(_) => AnnSettings::default(),
    };
    let t = Instant::now();
    let trained = ann::train(&data, &settings, seed)?;
    let train_s = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::to_string_pretty(&trained.report).expect("report serialises")
    );
    let valid: Vec<bool> = study.classes.iter().map(|&c| c != INVALID_CLASS).collect();
    let mut best = f64::INFINITY;
    let mut suit = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        suit = ann::suitability(&layers, &valid, &trained.network)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    let max = ann::max_suitability_per_class(&suit, &valid, study.class_names.len());
    let cells = valid.len();
    let n_valid = valid.iter().filter(|&&v| v).count();
    println!(
        "{which}: training {train_s:.2} s; suitability of {cells} cells ({n_valid} valid) in \
         {:.1} ms (best of 5, {} rayon threads) = {:.1} M valid cells/s; max per class {max:?}",
        best * 1e3,
        rayon::current_num_threads(),
        n_valid as f64 / best / 1e6
    );
    Ok(())
}
