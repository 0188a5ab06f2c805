//! The paper's tables from integer cell counts per (zone, class), so totals do not
//! depend on tiling: area per class with ecological space (Table 7), carbon storage,
//! change and mean density per map (Table 8), mean density per zone (Table 9).

use std::collections::BTreeMap;
use std::path::Path;

use crate::area::CellAreas;
use crate::carbon::pools::{ClassPools, Pools, PoolsTable};
use crate::carbon::totals::{mean_density_kg_m2, storage_t, M2_PER_HA};
use crate::config::PoolsConfig;
use crate::config::Study;
use crate::error::Result;
use crate::files;

/// Cell counts per zone (key) and class index (value index).
pub type ZoneCounts = BTreeMap<i64, Vec<u64>>;

/// Counts per (zone, class) of a class map (class indices, values >= K ignored).
pub fn zone_counts(map: &[u8], zones: Option<&[i32]>, k: usize) -> ZoneCounts {
    let mut out: ZoneCounts = BTreeMap::new();
    for (i, &c) in map.iter().enumerate() {
        if (c as usize) < k {
            let z = zones.map(|z| z[i] as i64).unwrap_or(0);
            out.entry(z).or_insert_with(|| vec![0; k])[c as usize] += 1;
        }
    }
    out
}

/// Cells per class over every zone of `counts`.
pub fn class_totals(counts: &ZoneCounts, k: usize) -> Vec<u64> {
    let mut t = vec![0u64; k];
    for v in counts.values() {
        for (a, b) in t.iter_mut().zip(v) {
            *a += b;
        }
    }
    t
}

/// Areas (m2) per zone (key) and class index (value index).
pub type ZoneAreas = BTreeMap<i64, Vec<f64>>;

/// Areas per (zone, class) of a class map `width` cells wide whose counts are `counts`
/// (from [`zone_counts`]): counts x the cell area, or, when the area varies by row (a
/// geographic grid), per row integer counts x the row's area added in row order.
pub fn zone_areas(
    counts: &ZoneCounts,
    map: &[u8],
    zones: Option<&[i32]>,
    width: usize,
    areas: &CellAreas,
) -> ZoneAreas {
    if let Some(a) = areas.uniform() {
        return counts
            .iter()
            .map(|(z, v)| (*z, v.iter().map(|&n| n as f64 * a).collect()))
            .collect();
    }
    let k = counts.values().next().map(|v| v.len()).unwrap_or(0);
    let width = width.max(1);
    let mut out: ZoneAreas = counts.keys().map(|z| (*z, vec![0.0; k])).collect();
    for (r, row) in map.chunks(width).enumerate() {
        let row_zones = zones.map(|z| &z[r * width..r * width + row.len()]);
        let row_counts = zone_counts(row, row_zones, k);
        let a = areas.row(r);
        for (z, v) in row_counts {
            let dst = out.entry(z).or_insert_with(|| vec![0.0; k]);
            for (d, n) in dst.iter_mut().zip(v) {
                *d += n as f64 * a;
            }
        }
    }
    out
}

/// One map of the tables: a label (e.g. "2020" or "urbanized 2060"), its counts and
/// areas.
pub struct MapCounts<'a> {
    /// Column label.
    pub label: &'a str,
    /// Counts per (zone, class).
    pub counts: &'a ZoneCounts,
    /// Areas per (zone, class), m2 ([`zone_areas`]).
    pub areas: &'a ZoneAreas,
}

/// Areas per class over every zone of `areas`, added in zone order.
pub fn class_areas(areas: &ZoneAreas, k: usize) -> Vec<f64> {
    let mut t = vec![0.0; k];
    for v in areas.values() {
        for (a, b) in t.iter_mut().zip(v) {
            *a += b;
        }
    }
    t
}

/// Storage (t) of areas (m2) per class with `density` (t/ha), summed in class order.
pub fn storage_of_areas(areas: &[f64], density: &[f64]) -> f64 {
    areas
        .iter()
        .zip(density)
        .map(|(&a, &d)| d * a / M2_PER_HA)
        .sum()
}

/// Carbon density (t/ha) per class from the study (0 where a class has no pools).
pub fn densities(study: &Study) -> Vec<f64> {
    study
        .config
        .classes
        .iter()
        .map(|c| c.carbon.map(|p| p.total()).unwrap_or(0.0))
        .collect()
}

/// The study's carbon pools as a [`PoolsTable`] keyed by class code (all four pools 0
/// where a class has none, as [`densities`] counts it), for the per-cell carbon rasters.
pub fn pools_table(study: &Study) -> Result<PoolsTable> {
    PoolsTable::new(
        study
            .config
            .classes
            .iter()
            .map(|c| {
                let p = c.carbon.unwrap_or(PoolsConfig {
                    above: 0.0,
                    below: 0.0,
                    soil: 0.0,
                    dead: 0.0,
                });
                ClassPools {
                    code: c.code,
                    name: c.name.clone(),
                    pools: Pools {
                        above: p.above,
                        below: p.below,
                        soil: p.soil,
                        dead: p.dead,
                    },
                }
            })
            .collect(),
    )
}

/// A class-index map as class codes (f64, NaN where no class), the values of a
/// [`crate::carbon::CodeLayer`].
pub fn class_codes(study: &Study, map: &[u8]) -> Vec<f64> {
    let codes: Vec<f64> = study.config.classes.iter().map(|c| c.code as f64).collect();
    map.iter()
        .map(|&v| codes.get(v as usize).copied().unwrap_or(f64::NAN))
        .collect()
}

/// Storage (t) of counts per class with `density` and `cell_area_m2`.
pub fn storage(counts: &[u64], density: &[f64], cell_area_m2: f64) -> f64 {
    counts
        .iter()
        .zip(density)
        .map(|(&n, &d)| storage_t(d, n, cell_area_m2))
        .sum()
}

/// One class of a scenario whose demand was not met (`[ca] unmet = "best_effort"`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UnmetClass {
    /// Scenario name.
    pub scenario: String,
    /// Class name.
    pub class: String,
    /// Demand, cells.
    pub demand: i64,
    /// Cells of the class in the final map.
    pub reached: i64,
    /// demand - reached.
    pub gap: i64,
}

/// The classes of `scenario` left with a gap (gap = demand - cells reached), in class
/// order; empty when the demand was met.
pub fn unmet(names: &[String], scenario: &str, demand: &[i64], gap: &[i64]) -> Vec<UnmetClass> {
    names
        .iter()
        .zip(demand.iter().zip(gap))
        .filter(|(_, (_, &g))| g != 0)
        .map(|(n, (&d, &g))| UnmetClass {
            scenario: scenario.to_string(),
            class: n.clone(),
            demand: d,
            reached: d - g,
            gap: g,
        })
        .collect()
}

/// A class whose demand was not met, in run.json and `flus validate --json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnmetJson {
    /// Cells asked for.
    pub demand: i64,
    /// Cells reached.
    pub reached: i64,
    /// Demand minus cells reached.
    pub gap: i64,
}

/// `rows` by class name (`{class: {demand, reached, gap}}` in JSON); None (null) when
/// every class met its demand.
pub fn unmet_by_class(rows: &[UnmetClass]) -> Option<BTreeMap<String, UnmetJson>> {
    (!rows.is_empty()).then(|| {
        rows.iter()
            .map(|u| {
                (
                    u.class.clone(),
                    UnmetJson {
                        demand: u.demand,
                        reached: u.reached,
                        gap: u.gap,
                    },
                )
            })
            .collect()
    })
}

/// Writes `unmet_demand.csv` (scenario, class, demand, cells reached, gap) into `dir`.
pub fn write_unmet(dir: &Path, rows: &[UnmetClass]) -> Result<()> {
    let header: Vec<String> = ["scenario", "class", "demand", "cells reached", "gap"]
        .map(String::from)
        .to_vec();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|u| {
            vec![
                u.scenario.clone(),
                u.class.clone(),
                u.demand.to_string(),
                u.reached.to_string(),
                u.gap.to_string(),
            ]
        })
        .collect();
    files::write_csv(&dir.join("unmet_demand.csv"), &header, &rows)
}

/// Writes `area_by_class.csv` (Table 7), `carbon_storage.csv` (Table 8) and, with
/// zones, `carbon_density_by_zone.csv` (Table 9: zone code, its name from
/// `zone_names` or the code, then the mean density per map) into `dir`; the first map
/// is the base. Returns their summary (run.json `tables`).
pub fn write(
    study: &Study,
    maps: &[MapCounts],
    zone_names: &BTreeMap<i64, String>,
    dir: &Path,
) -> Result<TablesJson> {
    let k = study.k();
    let totals: Vec<Vec<u64>> = maps.iter().map(|m| class_totals(m.counts, k)).collect();
    let areas: Vec<Vec<f64>> = maps.iter().map(|m| class_areas(m.areas, k)).collect();
    write_area_table(study, maps, &areas, dir)?;
    let eco = totals.iter().map(|t| ecological(study, t)).collect();
    let density = densities(study);
    let summary = write_storage_table(maps, (&totals, &areas), &density, dir)?;
    if study.config.zones.is_some() {
        write_zone_table(maps, zone_names, &density, dir)?;
    }
    Ok(TablesJson {
        carbon: summary,
        ecological_cells: eco,
    })
}

/// The sum of `per_class` over the study's ecological classes, in class order.
fn ecological<T: Copy + std::iter::Sum<T>>(study: &Study, per_class: &[T]) -> T {
    let classes = &study.config.classes;
    (0..study.k())
        .filter(|&c| classes[c].ecological)
        .map(|c| per_class[c])
        .sum()
}

/// Table 7, `area_by_class.csv`: area per class (km2) per map of `areas` (m2 per class,
/// in map order), then the ecological space and its share of the area.
fn write_area_table(
    study: &Study,
    maps: &[MapCounts],
    areas: &[Vec<f64>],
    dir: &Path,
) -> Result<()> {
    let km2 = 1e-6;
    let mut header = vec!["class".to_string(), "ecological".into()];
    header.extend(maps.iter().map(|m| format!("{} km2", m.label)));
    let mut rows: Vec<Vec<String>> = study
        .config
        .classes
        .iter()
        .enumerate()
        .map(|(c, cl)| {
            let mut r = vec![cl.name.clone(), cl.ecological.to_string()];
            r.extend(areas.iter().map(|t| format!("{:.4}", t[c] * km2)));
            r
        })
        .collect();
    let eco_m2: Vec<f64> = areas.iter().map(|t| ecological(study, t)).collect();
    let all: Vec<f64> = areas.iter().map(|t| t.iter().sum()).collect();
    let mut r = vec!["ecological space".to_string(), String::new()];
    r.extend(eco_m2.iter().map(|&e| format!("{:.4}", e * km2)));
    rows.push(r);
    let mut r = vec!["ecological share %".to_string(), String::new()];
    r.extend(
        eco_m2
            .iter()
            .zip(&all)
            .map(|(&e, &a)| format!("{:.4}", if a > 0.0 { 100.0 * e / a } else { 0.0 })),
    );
    rows.push(r);
    files::write_csv(&dir.join("area_by_class.csv"), &header, &rows)
}

/// Table 8, `carbon_storage.csv`: per map, its storage from the class areas of
/// `(totals, areas)` (cells and m2 per class, in map order) at `density`, the change
/// against the first (base) map and the mean density. Returns its rows (run.json).
fn write_storage_table(
    maps: &[MapCounts],
    (totals, areas): (&[Vec<u64>], &[Vec<f64>]),
    density: &[f64],
    dir: &Path,
) -> Result<Vec<CarbonTableRow>> {
    let base_t = storage_of_areas(&areas[0], density);
    let header: Vec<String> = [
        "map",
        "storage_t",
        "change_t",
        "change_percent",
        "mean_density_kg_m2",
        "area_m2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut summary = Vec::new();
    let rows: Vec<Vec<String>> = maps
        .iter()
        .zip(totals.iter().zip(areas))
        .map(|(m, (t, a))| {
            let s = storage_of_areas(a, density);
            let area: f64 = a.iter().sum();
            let change = s - base_t;
            let pct = if base_t > 0.0 {
                100.0 * change / base_t
            } else {
                0.0
            };
            summary.push(CarbonTableRow {
                map: m.label.to_string(),
                storage_t: s,
                change_t: change,
                change_percent: pct,
                mean_density_kg_m2: mean_density_kg_m2(s, area),
                cells_per_class: t.clone(),
            });
            vec![
                m.label.to_string(),
                format!("{s:.3}"),
                format!("{change:.3}"),
                format!("{pct:.4}"),
                format!("{:.6}", mean_density_kg_m2(s, area)),
                format!("{area:.1}"),
            ]
        })
        .collect();
    files::write_csv(&dir.join("carbon_storage.csv"), &header, &rows)?;
    Ok(summary)
}

/// Table 9, `carbon_density_by_zone.csv`: per zone of any map, its code, its name from
/// `zone_names` (else the code) and its mean density per map at `density`.
fn write_zone_table(
    maps: &[MapCounts],
    zone_names: &BTreeMap<i64, String>,
    density: &[f64],
    dir: &Path,
) -> Result<()> {
    let k = density.len(); // one density per class
    let zones: std::collections::BTreeSet<i64> =
        maps.iter().flat_map(|m| m.counts.keys().copied()).collect();
    let mut header = vec!["zone".to_string(), "name".into()];
    header.extend(maps.iter().map(|m| format!("{} kg/m2", m.label)));
    let rows: Vec<Vec<String>> = zones
        .iter()
        .map(|z| {
            let name = zone_names.get(z).cloned().unwrap_or_else(|| z.to_string());
            let mut r = vec![z.to_string(), name];
            for m in maps {
                let c = m.areas.get(z).cloned().unwrap_or_else(|| vec![0.0; k]);
                let s = storage_of_areas(&c, density);
                let area: f64 = c.iter().sum();
                r.push(format!("{:.6}", mean_density_kg_m2(s, area)));
            }
            r
        })
        .collect();
    files::write_csv(&dir.join("carbon_density_by_zone.csv"), &header, &rows)
}

/// The summary of tables 7-9 (run.json `tables`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TablesJson {
    /// Table 8's rows: one per map, the base map first.
    pub carbon: Vec<CarbonTableRow>,
    /// Cells of the ecological classes per map, in map order.
    #[serde(default)]
    pub ecological_cells: Vec<u64>,
}

/// One map's row of Table 8 (`carbon_storage.csv`) with its cells per class.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CarbonTableRow {
    /// The map: the base year, or `<scenario>_<year>`.
    pub map: String,
    /// Carbon storage, t.
    pub storage_t: f64,
    /// Storage minus the base map's, t.
    pub change_t: f64,
    /// The change in percent of the base map's storage (0 when that is 0).
    pub change_percent: f64,
    /// Mean carbon density over the map's area, kg/m2 (0 without area).
    pub mean_density_kg_m2: f64,
    /// Cells per class, in class order.
    pub cells_per_class: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmet_classes_report_demand_reached_and_gap() {
        let names = ["a", "b", "c"].map(String::from).to_vec();
        // demand 100 / 50 / 30, gaps -60, 0, 60: a ends with 160 cells, c with -30 + 30
        let u = unmet(&names, "s", &[100, 50, 30], &[-60, 0, 60]);
        assert_eq!(u.len(), 2);
        assert_eq!((u[0].reached, u[1].reached), (160, -30));
        // as JSON: `{class: {demand, reached, gap}}`, null when every class met its demand
        let j = serde_json::json!(unmet_by_class(&u));
        assert_eq!(j["c"]["gap"], 60);
        let none = unmet_by_class(&unmet(&names, "s", &[1, 2, 3], &[0, 0, 0]));
        assert!(serde_json::json!(none).is_null());
        // run.json's typed form: the same figures by class name
        let by = unmet_by_class(&u).unwrap();
        assert_eq!(
            by["a"],
            UnmetJson {
                demand: 100,
                reached: 160,
                gap: -60
            }
        );
        assert_eq!(by.keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn zone_counts_and_storage_by_hand() {
        // 2 zones, classes 0/1; cell 30 m x 30 m = 900 m2 = 0.09 ha
        let map = [0u8, 1, 1, 255, 0, 0];
        let zones = [1, 1, 2, 2, 2, 1];
        let c = zone_counts(&map, Some(&zones), 2);
        assert_eq!(c[&1], vec![2, 1]);
        assert_eq!(c[&2], vec![1, 1]);
        // densities 100 and 10 t/ha: zone 1 = (2*100 + 10) * 0.09 = 18.9 t
        assert!((storage(&c[&1], &[100.0, 10.0], 900.0) - 18.9).abs() < 1e-9);
        // mean density: 18.9 t over 2700 m2 = 7 kg/m2
        assert!((mean_density_kg_m2(18.9, 2700.0) - 7.0).abs() < 1e-9);
    }

    #[test]
    fn the_study_pools_become_a_table_keyed_by_class_code() {
        let file = std::path::Path::new("examples/bencat/study.toml");
        let study = Study {
            config: crate::config::parse(include_str!("../../examples/bencat/study.toml"), file)
                .unwrap(),
            file: file.to_path_buf(),
            base_dir: ".".into(),
        };
        let t = pools_table(&study).unwrap();
        // the study file: forest 82.2 + 16.4 + 273.0 + 7.6 = 379.2 t/ha, water 0,
        // built-up 5.6 + 1.1 + 25.3 = 32.0, cropland 40.5 + 26.8 + 186.3 + 5.2 = 258.8
        assert_eq!(t.codes(), vec![1, 2, 3, 4]);
        for (d, want) in t.densities().iter().zip([379.2, 0.0, 32.0, 258.8]) {
            assert!((d - want).abs() < 1e-9, "{d} vs {want}");
        }
        // class indices 0, 2, none, 3 -> codes 1, 3, NaN, 4
        let c = class_codes(&study, &[0, 2, 255, 3]);
        assert_eq!((c[0], c[1], c[3]), (1.0, 3.0, 4.0));
        assert!(c[2].is_nan());
    }
}
