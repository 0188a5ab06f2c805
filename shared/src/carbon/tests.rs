//! Carbon tests on small georeferenced rasters written here, with totals by hand.

use std::path::{Path, PathBuf};

use gdal::spatial_ref::SpatialRef;

use super::*;
use crate::grid::Grid;
use crate::raster::{read_band, write_geotiff, WriteOptions};
use crate::zones::{zones_from_polygons, zones_from_raster};

fn utm48() -> String {
    SpatialRef::from_epsg(32648).unwrap().to_wkt().unwrap()
}

fn write_u8(path: &Path, grid: &Grid, data: &[u8], nodata: Option<f64>) {
    write_geotiff(
        path,
        grid,
        &[data],
        &WriteOptions {
            nodata,
            ..Default::default()
        },
    )
    .unwrap();
}

/// InVEST's own pools table (natcap.invest tests/test_carbon.py).
fn invest_pools(dir: &Path) -> (PathBuf, PoolsTable) {
    let p = dir.join("pools.csv");
    std::fs::write(
        &p,
        "C_above,C_below,C_soil,C_dead,lucode,LULC_Name\n\
         15,10,60,1,1,\"lulc code 1\"\n5,3,20,0,2,\"lulc code 2\"\n2,1,5,0,3,\"lulc code 3\"\n",
    )
    .unwrap();
    let t = read_pools_csv(&p).unwrap();
    (p, t)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn invest_pools_give_hand_computed_totals_and_rasters() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pools) = invest_pools(dir.path());
    // 4 x 3 cells of 30 m: 900 m2 = 0.09 ha per cell.
    let grid = Grid {
        width: 4,
        height: 3,
        geotransform: [600000.0, 30.0, 0.0, 1200090.0, 0.0, -30.0],
        crs_wkt: utm48(),
    };
    let base: [u8; 12] = [1, 1, 2, 3, 1, 2, 2, 3, 3, 3, 1, 1];
    let alt: [u8; 12] = [1, 2, 2, 3, 2, 2, 3, 3, 3, 3, 3, 1];
    let (bp, ap) = (dir.path().join("bas.tif"), dir.path().join("alt.tif"));
    write_u8(&bp, &grid, &base, Some(0.0));
    write_u8(&ap, &grid, &alt, Some(0.0));
    let (bi, bv) = read_band::<f64>(&bp, 1).unwrap();
    let (_, av) = read_band::<f64>(&ap, 1).unwrap();
    let cell_area = bi.grid.cell_area();
    assert_eq!(cell_area, 900.0);
    let layers = CarbonLayers {
        baseline: CodeLayer {
            name: "bas.tif",
            values: &bv,
            nodata: bi.nodata,
        },
        alternate: Some(CodeLayer {
            name: "alt.tif",
            values: &av,
            nodata: bi.nodata,
        }),
        zones: None,
    };
    let counts = CarbonCounts::count(&pools, &layers).unwrap();
    counts.check_missing(OnMissing::Error, "pools.csv").unwrap();
    assert_eq!(counts.class_cells(false).unwrap(), vec![5, 3, 4]);
    assert_eq!(counts.class_cells(true).unwrap(), vec![2, 4, 6]);
    let t = totals(&counts, &pools, &crate::area::CellAreas::Uniform(cell_area)).unwrap();
    // Densities: 15+10+60+1 = 86, 5+3+20+0 = 28, 2+1+5+0 = 8 t/ha.
    // Baseline: 86*5*0.09 = 38.7, 28*3*0.09 = 7.56, 8*4*0.09 = 2.88 -> 49.14 t.
    // Alternate: 86*2*0.09 = 15.48, 28*4*0.09 = 10.08, 8*6*0.09 = 4.32 -> 29.88 t.
    assert!(close(t.by_class[0].baseline_t, 38.7));
    assert!(close(t.by_class[1].baseline_t, 7.56));
    assert!(close(t.by_class[2].baseline_t, 2.88));
    assert!(close(t.by_class[2].alternate_t.unwrap(), 4.32));
    assert!(close(t.baseline_t, 49.14));
    assert!(close(t.alternate_t.unwrap(), 29.88));
    assert!(close(t.change_t().unwrap(), -19.26));
    // 12 cells * 900 m2 = 10800 m2; 49.14 t * 1000 / 10800 m2 = 4.55 kg/m2.
    assert_eq!(t.area_m2, 10800.0);
    assert!(close(t.baseline_mean_density_kg_m2(), 4.55));
    assert!(close(
        t.alternate_mean_density_kg_m2().unwrap(),
        29880.0 / 10800.0
    ));

    // Per-cell rasters: cell 0 is class 1: 86 t/ha, 86 * 0.09 = 7.74 t.
    let per_cell = storage_cells(
        &pools,
        &layers,
        Map::Baseline,
        StorageUnit::TonnesPerCell,
        crate::area::CellAreas::Uniform(cell_area).window(0, 1),
    )
    .unwrap();
    let per_ha = storage_cells(
        &pools,
        &layers,
        Map::Alternate,
        StorageUnit::TonnesPerHa,
        crate::area::CellAreas::Uniform(cell_area).window(0, 1),
    )
    .unwrap();
    assert_eq!(per_cell[0], 7.74f32);
    assert_eq!(per_ha[1], 28.0);
    let sum: f64 = per_cell.iter().map(|&v| v as f64).sum();
    assert!((sum - 49.14).abs() < 1e-4);
    // Cell 1 goes 1 -> 2: (28 - 86) * 0.09 = -5.22 t; its NPV with InVEST's constant
    // for 2010 -> 2012, price 50, 5 %, 50 %: -5.22 * 40.873015873 = -213.357142857.
    let change = change_cells(
        &pools,
        &layers,
        crate::area::CellAreas::Uniform(cell_area).window(0, 1),
        1.0,
    )
    .unwrap();
    assert_eq!(change[1], -5.22f32);
    assert_eq!(change[0], 0.0);
    let k = Valuation {
        price: 50.0,
        discount_rate: 5.0,
        rate_change: 50.0,
        year_baseline: 2010,
        year_alternate: 2012,
    }
    .constant()
    .unwrap();
    let npv = change_cells(
        &pools,
        &layers,
        crate::area::CellAreas::Uniform(cell_area).window(0, 1),
        k,
    )
    .unwrap();
    assert!((npv[1] as f64 - -213.357142857).abs() < 1e-4, "{}", npv[1]);
}

/// 4 x 2 cells of 10 m (100 m2 = 0.01 ha) placed at (500000, 1000020), UTM 48N.
fn tiny_grid() -> Grid {
    Grid {
        width: 4,
        height: 2,
        geotransform: [500000.0, 10.0, 0.0, 1000020.0, 0.0, -10.0],
        crs_wkt: utm48(),
    }
}

// Land use:        zones raster (255 = nodata):
//   1 2 3 0(nd)      10 10 20 20
//   1 1 2 3          10 10 20 255
const TINY_LU: [u8; 8] = [1, 2, 3, 0, 1, 1, 2, 3];

/// Hand totals of the tiny map per zone (west = cols 0-1, east = col 2):
/// west: classes 1, 2, 1, 1 -> (86*3 + 28) * 0.01 = 2.86 t over 400 m2;
/// east: classes 3, 2 -> (8 + 28) * 0.01 = 0.36 t over 200 m2;
/// cell (0,3) is land-use nodata, cell (1,3) is outside every zone.
fn check_tiny_zone_totals(t: &CarbonTotals, counts: &CarbonCounts, west: i64, east: i64) {
    assert_eq!(counts.nodata_cells, 1);
    assert_eq!(counts.outside_zones_cells, 1);
    assert_eq!(t.cells, 6);
    assert_eq!(t.area_m2, 600.0);
    assert!(close(t.baseline_t, 3.22));
    // 3.22 t * 1000 / 600 m2 = 5.3666... kg/m2
    assert!(close(t.baseline_mean_density_kg_m2(), 3220.0 / 600.0));
    let z: Vec<i64> = t.by_zone.iter().map(|z| z.zone).collect();
    let w = &t.by_zone[z.iter().position(|&c| c == west).unwrap()];
    let e = &t.by_zone[z.iter().position(|&c| c == east).unwrap()];
    assert_eq!((w.cells, w.area_m2), (4, 400.0));
    assert!(close(w.baseline_t, 2.86));
    assert_eq!((e.cells, e.area_m2), (2, 200.0));
    assert!(close(e.baseline_t, 0.36));
    // per class: class 1: 3 cells = 2.58 t, class 2: 2 cells = 0.56 t, class 3: 1 cell = 0.08 t
    assert_eq!(
        t.by_class
            .iter()
            .map(|c| c.baseline_cells)
            .collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    assert!(close(t.by_class[0].baseline_t, 2.58));
    assert!(close(t.by_class[1].baseline_t, 0.56));
    assert!(close(t.by_class[2].baseline_t, 0.08));
}

#[test]
fn totals_per_class_and_per_raster_zone_match_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pools) = invest_pools(dir.path());
    let g = tiny_grid();
    let lu = dir.path().join("lu.tif");
    let zp = dir.path().join("zones.tif");
    write_u8(&lu, &g, &TINY_LU, Some(0.0));
    write_u8(&zp, &g, &[10, 10, 20, 20, 10, 10, 20, 255], Some(255.0));
    let (li, lv) = read_band::<f64>(&lu, 1).unwrap();
    let zones = zones_from_raster(&zp, &lu, &li.grid).unwrap();
    let layers = CarbonLayers {
        baseline: CodeLayer {
            name: "lu.tif",
            values: &lv,
            nodata: li.nodata,
        },
        alternate: None,
        zones: Some(CodeLayer {
            name: "zones.tif",
            values: &zones.values,
            nodata: zones.nodata,
        }),
    };
    let counts = CarbonCounts::count(&pools, &layers).unwrap();
    let t = totals(
        &counts,
        &pools,
        &crate::area::CellAreas::Uniform(li.grid.cell_area()),
    )
    .unwrap();
    assert_eq!(t.alternate_t, None);
    check_tiny_zone_totals(&t, &counts, 10, 20);
    assert_eq!(zones.name_of(10), "10");
}

const TINY_GEOJSON: &str = r#"{"type": "FeatureCollection",
 "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32648"}},
 "features": [
  {"type": "Feature", "properties": {"name": "west", "id": 7},
   "geometry": {"type": "Polygon", "coordinates": [[[500000,1000000],[500020,1000000],[500020,1000020],[500000,1000020],[500000,1000000]]]}},
  {"type": "Feature", "properties": {"name": "east", "id": 9},
   "geometry": {"type": "Polygon", "coordinates": [[[500020,1000000],[500030,1000000],[500030,1000020],[500020,1000020],[500020,1000000]]]}}
 ]}"#;

#[test]
fn totals_per_polygon_zone_match_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pools) = invest_pools(dir.path());
    let g = tiny_grid();
    let lu = dir.path().join("lu.tif");
    write_u8(&lu, &g, &TINY_LU, Some(0.0));
    let gj = dir.path().join("zones.geojson");
    std::fs::write(&gj, TINY_GEOJSON).unwrap();
    let (li, lv) = read_band::<f64>(&lu, 1).unwrap();
    // Text field: names sorted, numbered 1..: east = 1, west = 2.
    let zones = zones_from_polygons(&gj, Some("name"), &li.grid).unwrap();
    assert_eq!(zones.name_of(1), "east");
    assert_eq!(zones.name_of(2), "west");
    let layers = |z: &'_ crate::zones::Zones| -> CarbonCounts {
        let l = CarbonLayers {
            baseline: CodeLayer {
                name: "lu.tif",
                values: &lv,
                nodata: li.nodata,
            },
            alternate: None,
            zones: Some(CodeLayer {
                name: "zones.geojson",
                values: &z.values,
                nodata: z.nodata,
            }),
        };
        CarbonCounts::count(&pools, &l).unwrap()
    };
    let counts = layers(&zones);
    let t = totals(
        &counts,
        &pools,
        &crate::area::CellAreas::Uniform(li.grid.cell_area()),
    )
    .unwrap();
    check_tiny_zone_totals(&t, &counts, 2, 1);
    // Integer field: the codes are the field's values.
    let zones = zones_from_polygons(&gj, Some("id"), &li.grid).unwrap();
    let counts = layers(&zones);
    let t = totals(
        &counts,
        &pools,
        &crate::area::CellAreas::Uniform(li.grid.cell_area()),
    )
    .unwrap();
    check_tiny_zone_totals(&t, &counts, 7, 9);
    // No field: feature order 1, 2.
    let zones = zones_from_polygons(&gj, None, &li.grid).unwrap();
    let counts = layers(&zones);
    let t = totals(
        &counts,
        &pools,
        &crate::area::CellAreas::Uniform(li.grid.cell_area()),
    )
    .unwrap();
    check_tiny_zone_totals(&t, &counts, 1, 2);
    let e = zones_from_polygons(&gj, Some("county"), &li.grid)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("zones.geojson") && e.contains("county") && e.contains("name"),
        "{e}"
    );
}

#[test]
fn counts_of_two_halves_merge_to_the_counts_of_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pools) = invest_pools(dir.path());
    let (w, h) = (37usize, 23usize);
    // Codes 0..=4 (0 nodata, 4 unknown), zones 1..=3 with some nodata (0).
    let base: Vec<f64> = (0..w * h).map(|i| ((i * 7 + i / 11) % 5) as f64).collect();
    let alt: Vec<f64> = (0..w * h).map(|i| ((i * 3 + i / 5) % 5) as f64).collect();
    let zone: Vec<f64> = (0..w * h).map(|i| ((i / 13) % 4) as f64).collect();
    let layers = |r0: usize, r1: usize| CarbonLayers {
        baseline: CodeLayer {
            name: "b",
            values: &base[r0 * w..r1 * w],
            nodata: Some(0.0),
        },
        alternate: Some(CodeLayer {
            name: "a",
            values: &alt[r0 * w..r1 * w],
            nodata: Some(0.0),
        }),
        zones: Some(CodeLayer {
            name: "z",
            values: &zone[r0 * w..r1 * w],
            nodata: Some(0.0),
        }),
    };
    let whole = CarbonCounts::count(&pools, &layers(0, h)).unwrap();
    let top = CarbonCounts::count(&pools, &layers(0, 11)).unwrap();
    let bottom = CarbonCounts::count(&pools, &layers(11, h)).unwrap();
    let mut ab = top.clone();
    ab.merge(&bottom).unwrap();
    let mut ba = bottom.clone();
    ba.merge(&top).unwrap();
    assert_eq!(ab, whole);
    assert_eq!(ba, whole);
    assert_eq!(
        whole.counted_cells() + whole.excluded_cells(),
        (w * h) as u64
    );
    assert!(whole.unknown_cells > 0 && whole.nodata_cells > 0 && whole.outside_zones_cells > 0);
    let t1 = totals(&whole, &pools, &crate::area::CellAreas::Uniform(625.0)).unwrap();
    let t2 = totals(&ba, &pools, &crate::area::CellAreas::Uniform(625.0)).unwrap();
    assert_eq!(t1.baseline_t.to_bits(), t2.baseline_t.to_bits());
    assert_eq!(t1, t2);
}

#[test]
fn unknown_codes_are_named_or_excluded_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pools) = invest_pools(dir.path());
    let base = [1.0, 200.0, 2.0, 3.0];
    let alt = [1.0, 1.0, 201.0, 3.0];
    let l = CarbonLayers {
        baseline: CodeLayer {
            name: "b",
            values: &base,
            nodata: None,
        },
        alternate: Some(CodeLayer {
            name: "a",
            values: &alt,
            nodata: None,
        }),
        zones: None,
    };
    let c = CarbonCounts::count(&pools, &l).unwrap();
    let e = c
        .check_missing(OnMissing::Error, "pools.csv")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("200") && e.contains("201") && e.contains("pools.csv"),
        "{e}"
    );
    c.check_missing(OnMissing::Exclude, "pools.csv").unwrap();
    assert_eq!(c.unknown_cells, 2);
    assert_eq!(
        c.unknown_codes.keys().copied().collect::<Vec<_>>(),
        vec![200, 201]
    );
    // Remaining cells: class 1 (86) and class 3 (8) on 1 m2 cells = 94 * 1e-4 t.
    let t = totals(&c, &pools, &crate::area::CellAreas::Uniform(1.0)).unwrap();
    assert!(close(t.baseline_t, 94e-4));
    let frac = [1.5];
    let l = CarbonLayers {
        baseline: CodeLayer {
            name: "frac.tif",
            values: &frac,
            nodata: None,
        },
        alternate: None,
        zones: None,
    };
    let e = CarbonCounts::count(&pools, &l).unwrap_err().to_string();
    assert!(e.contains("frac.tif") && e.contains("1.5"), "{e}");
}

#[test]
fn zones_on_another_grid_are_rejected_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let g = tiny_grid();
    let lu = dir.path().join("lu.tif");
    write_u8(&lu, &g, &TINY_LU, Some(0.0));
    let mut other = g.clone();
    other.geotransform[0] += 10.0;
    let zp = dir.path().join("shifted_zones.tif");
    write_u8(&zp, &other, &[1; 8], None);
    let e = zones_from_raster(&zp, &lu, &g).unwrap_err().to_string();
    assert!(
        e.contains("lu.tif") && e.contains("shifted_zones.tif"),
        "{e}"
    );
}

#[test]
fn merging_counts_of_different_tables_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pools) = invest_pools(dir.path());
    let other = PoolsTable::new(vec![ClassPools {
        code: 9,
        name: String::new(),
        pools: Pools {
            above: 1.0,
            below: 0.0,
            soil: 0.0,
            dead: 0.0,
        },
    }])
    .unwrap();
    let mut a = CarbonCounts::new(&pools, false);
    assert!(a.merge(&CarbonCounts::new(&other, false)).is_err());
    assert!(a.merge(&CarbonCounts::new(&pools, true)).is_err());
}
