//! `flus_shared::prepare` against hand-computed rasters: distances to a road, a
//! restriction rectangle, zones, slope and aspect of a plane, warping a shifted raster,
//! a vector in another CRS, and bad inputs.

use std::path::{Path, PathBuf};

use flus_shared::prepare::{self, OutputKind, Zone, ZoneFields, ASPECT_FLAT, DEM_NODATA};
use flus_shared::raster::{self, Resample, WriteOptions};
use flus_shared::Grid;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

const X0: f64 = 500_000.0;
const Y0: f64 = 1_200_000.0;
const CELL: f64 = 10.0;
const W: usize = 50;
const H: usize = 40;

fn utm48n() -> String {
    SpatialRef::from_epsg(32648).unwrap().to_wkt().unwrap()
}

/// The reference grid: 50 x 40 cells of 10 m, EPSG:32648.
fn reference() -> Grid {
    Grid {
        width: W,
        height: H,
        geotransform: [X0, CELL, 0.0, Y0, 0.0, -CELL],
        crs_wkt: utm48n(),
    }
}

fn write_json(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const CRS_32648: &str =
    r#""crs": { "type": "name", "properties": { "name": "urn:ogc:def:crs:EPSG::32648" } },"#;

/// A GeoJSON feature collection in EPSG:32648 with `features` (JSON text).
fn collection_32648(features: &str) -> String {
    format!(r#"{{ "type": "FeatureCollection", {CRS_32648} "features": [ {features} ] }}"#)
}

fn line_feature(points: &[(f64, f64)]) -> String {
    let coords: Vec<String> = points.iter().map(|(x, y)| format!("[{x}, {y}]")).collect();
    format!(
        r#"{{ "type": "Feature", "properties": {{}}, "geometry": {{ "type": "LineString", "coordinates": [{}] }} }}"#,
        coords.join(", ")
    )
}

/// Polygon feature covering columns c0..c1 and rows r0..r1 of the reference (cell edges).
fn rect_feature(c0: usize, c1: usize, r0: usize, r1: usize, props: &str) -> String {
    let (xa, xb) = (X0 + c0 as f64 * CELL, X0 + c1 as f64 * CELL);
    let (ya, yb) = (Y0 - r0 as f64 * CELL, Y0 - r1 as f64 * CELL);
    format!(
        r#"{{ "type": "Feature", "properties": {{ {props} }}, "geometry": {{ "type": "Polygon", "coordinates": [[[{xa}, {ya}], [{xb}, {ya}], [{xb}, {yb}], [{xa}, {yb}], [{xa}, {ya}]]] }} }}"#
    )
}

/// The road of the distance tests: along the centre line of row 10, from 10 m west of
/// the grid to 100 m east of it.
const ROAD_ROW: usize = 10;
fn road_points() -> Vec<(f64, f64)> {
    let y = Y0 - (ROAD_ROW as f64 + 0.5) * CELL;
    vec![(X0 - 10.0, y), (X0 + W as f64 * CELL + 100.0, y)]
}

fn check_road_distances(path: &Path) {
    let (info, d) = raster::read_band::<f32>(path, 1).unwrap();
    assert_eq!(info.grid.geotransform, reference().geotransform);
    assert_eq!((info.grid.width, info.grid.height), (W, H));
    assert_eq!(info.data_type, "Float32");
    for row in 0..H {
        // A cell k rows from the road is k * 10 m from it (cell centre to cell centre).
        let expected = (row as f64 - ROAD_ROW as f64).abs() * CELL;
        for col in 0..W {
            let got = d[row * W + col] as f64;
            assert!(
                (got - expected).abs() <= CELL / 2.0,
                "row {row} col {col}: {got} m, expected {expected} m"
            );
        }
    }
    // On the road: exactly 0.
    assert!(d[ROAD_ROW * W..(ROAD_ROW + 1) * W]
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn distance_to_a_road_along_a_row_is_the_row_offset_times_the_cell_size() {
    let dir = tempfile::tempdir().unwrap();
    let v = write_json(
        dir.path(),
        "road.geojson",
        &collection_32648(&line_feature(&road_points())),
    );
    let out = dir.path().join("dist_road.tif");
    let o = prepare::distance(&v, &reference(), "dist_road", &out).unwrap();
    check_road_distances(&out);
    assert_eq!(o.kind, OutputKind::Distance);
    assert_eq!(o.cells_with_data, W * H);
    assert_eq!(o.min, Some(0.0));
    // Farthest row from row 10 is row 39: 29 rows = 290 m.
    assert_eq!(o.max, Some(290.0));
}

#[test]
fn distance_sees_a_point_outside_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    // 45 m north of the top edge, above the centre of column 5: it falls in the padded
    // row whose centre is 45 m north of the edge, 50 m from the centre of cell (5, 0).
    let (x, y) = (X0 + 5.5 * CELL, Y0 + 45.0);
    let v = write_json(
        dir.path(),
        "well.geojson",
        &collection_32648(&format!(
            r#"{{ "type": "Feature", "properties": {{}}, "geometry": {{ "type": "Point", "coordinates": [{x}, {y}] }} }}"#
        )),
    );
    let out = dir.path().join("d.tif");
    prepare::distance(&v, &reference(), "d", &out).unwrap();
    let (_, d) = raster::read_band::<f32>(&out, 1).unwrap();
    assert_eq!(d[5], 50.0);
    // cell (8, 0): 3 cells east and 5 cells south of the point's cell: hypot(30, 50)
    assert!((d[8] as f64 - (30f64.hypot(50.0))).abs() < 1e-3, "{}", d[8]);
    // cell (5, 10): 15 cells south
    assert_eq!(d[10 * W + 5], 150.0);
}

#[test]
fn a_road_given_in_wgs84_gives_the_same_distances() {
    let dir = tempfile::tempdir().unwrap();
    let mut utm = SpatialRef::from_epsg(32648).unwrap();
    utm.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let ct = CoordTransform::new(&utm, &wgs).unwrap();
    let pts = road_points();
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let mut ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let mut zs = vec![0.0; pts.len()];
    ct.transform_coords(&mut xs, &mut ys, &mut zs).unwrap();
    // lon/lat near 105 E, 10.8 N
    assert!(
        (xs[0] - 105.0).abs() < 0.01 && (ys[0] - 10.85).abs() < 0.05,
        "{xs:?} {ys:?}"
    );
    let lonlat: Vec<(f64, f64)> = xs.into_iter().zip(ys).collect();
    // GeoJSON without a "crs" member is WGS 84 lon/lat.
    let v = write_json(
        dir.path(),
        "road4326.geojson",
        &format!(
            r#"{{ "type": "FeatureCollection", "features": [ {} ] }}"#,
            line_feature(&lonlat)
        ),
    );
    let out = dir.path().join("dist_road.tif");
    prepare::distance(&v, &reference(), "dist_road", &out).unwrap();
    check_road_distances(&out);
}

#[test]
fn a_restriction_polygon_sets_exactly_its_cells_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    // Columns 5..15 and rows 8..20 (edges on cell boundaries): 10 x 12 = 120 cells.
    let v = write_json(
        dir.path(),
        "reserve.geojson",
        &collection_32648(&rect_feature(5, 15, 8, 20, "")),
    );
    let out = dir.path().join("reserve.tif");
    let o = prepare::restriction(&v, &reference(), "reserve", &out).unwrap();
    let (info, r) = raster::read_band::<u8>(&out, 1).unwrap();
    assert_eq!(info.data_type, "Byte");
    for row in 0..H {
        for col in 0..W {
            let inside = (5..15).contains(&col) && (8..20).contains(&row);
            assert_eq!(r[row * W + col], u8::from(!inside), "row {row} col {col}");
        }
    }
    assert_eq!(r.iter().filter(|&&v| v == 0).count(), 120);
    assert_eq!((o.min, o.max), (Some(0.0), Some(1.0)));
}

fn zones_vector(dir: &Path) -> PathBuf {
    // "north": columns 0..10, rows 0..10 (100 cells), code 7.
    // "south": columns 20..50, rows 20..40 (30 x 20 = 600 cells), code 3.
    write_json(
        dir,
        "districts.geojson",
        &collection_32648(&format!(
            "{}, {}",
            rect_feature(0, 10, 0, 10, r#""name": "north", "code": 7"#),
            rect_feature(20, 50, 20, 40, r#""name": "south", "code": 3"#)
        )),
    )
}

fn count(v: &[i32], x: i32) -> usize {
    v.iter().filter(|&&c| c == x).count()
}

#[test]
fn zones_are_numbered_in_feature_order_with_names_from_an_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let v = zones_vector(dir.path());
    let (out, csv) = (dir.path().join("zones.tif"), dir.path().join("zones.csv"));
    let fields = ZoneFields {
        code: None,
        name: Some("name".into()),
    };
    let (o, zones) = prepare::zones(&v, &reference(), &fields, &out, &csv).unwrap();
    let (info, z) = raster::read_band::<i32>(&out, 1).unwrap();
    assert_eq!(info.data_type, "Int32");
    assert_eq!(info.nodata, Some(0.0));
    assert_eq!(count(&z, 1), 100);
    assert_eq!(count(&z, 2), 600);
    assert_eq!(count(&z, 0), W * H - 700);
    assert_eq!(z[0], 1); // top-left cell: north
    assert_eq!(z[(H - 1) * W + W - 1], 2); // bottom-right cell: south
    assert_eq!(z[10 * W + 10], 0); // just outside north
    assert_eq!(o.cells_with_data, 700);
    assert_eq!(
        zones,
        vec![
            Zone {
                code: 1,
                name: "north".into()
            },
            Zone {
                code: 2,
                name: "south".into()
            }
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "code,name\n1,north\n2,south\n"
    );
}

#[test]
fn zones_take_their_codes_from_an_integer_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let v = zones_vector(dir.path());
    let (out, csv) = (dir.path().join("zones.tif"), dir.path().join("zones.csv"));
    let fields = ZoneFields {
        code: Some("code".into()),
        name: Some("name".into()),
    };
    let (o, _) = prepare::zones(&v, &reference(), &fields, &out, &csv).unwrap();
    let (_, z) = raster::read_band::<i32>(&out, 1).unwrap();
    assert_eq!(count(&z, 7), 100);
    assert_eq!(count(&z, 3), 600);
    assert_eq!((o.min, o.max), (Some(3.0), Some(7.0)));
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "code,name\n3,south\n7,north\n"
    );
    // A name field that does not exist is named with the file.
    let bad = ZoneFields {
        code: None,
        name: Some("district".into()),
    };
    let e = prepare::zones(&v, &reference(), &bad, &out, &csv)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("districts.geojson") && e.contains("`district`"),
        "{e}"
    );
}

#[test]
fn slope_and_aspect_of_a_plane_match_the_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    // z = a * (x - X0) + b * (y - Y0) + 500 on a DEM grid shifted by half a cell and one
    // cell larger on each side, so the bilinear warp onto the reference samples inside it.
    let (a, b): (f64, f64) = (0.3, -0.4);
    let dem_grid = Grid {
        width: W + 2,
        height: H + 2,
        geotransform: [X0 - 1.5 * CELL, CELL, 0.0, Y0 + 1.5 * CELL, 0.0, -CELL],
        crs_wkt: utm48n(),
    };
    let mut z = Vec::with_capacity(dem_grid.cells());
    for row in 0..dem_grid.height {
        for col in 0..dem_grid.width {
            let (x, y) = dem_grid.cell_centre(col, row);
            z.push((a * (x - X0) + b * (y - Y0) + 500.0) as f32);
        }
    }
    let dem = dir.path().join("dem.tif");
    raster::write_geotiff(&dem, &dem_grid, &[&z], &WriteOptions::default()).unwrap();
    let (so, ao) = (dir.path().join("slope.tif"), dir.path().join("aspect.tif"));
    prepare::slope_aspect(&dem, &reference(), &so, &ao).unwrap();
    let (si, s) = raster::read_band::<f32>(&so, 1).unwrap();
    let (ai, asp) = raster::read_band::<f32>(&ao, 1).unwrap();
    assert_eq!(si.grid.geotransform, reference().geotransform);
    assert_eq!(ai.nodata, Some(DEM_NODATA as f64));
    // slope = atan(|grad z|) = atan(0.5) = 26.5651 degrees
    let slope = (a * a + b * b).sqrt().atan().to_degrees();
    assert!((slope - 26.5651).abs() < 1e-3);
    // The gradient (0.3, -0.4) points uphill to the south-east; the slope faces downhill,
    // along (-0.3, 0.4): north-west. Azimuth from north, clockwise:
    // atan2(east, north) = atan2(-0.3, 0.4) = -36.87 -> 323.13 degrees.
    let aspect = (-a).atan2(-b).to_degrees().rem_euclid(360.0);
    assert!((aspect - 323.1301).abs() < 1e-3);
    for row in 1..H - 1 {
        for col in 1..W - 1 {
            let i = row * W + col;
            assert!(
                (s[i] as f64 - slope).abs() < 0.01,
                "slope {} at {col},{row}",
                s[i]
            );
            assert!(
                (asp[i] as f64 - aspect).abs() < 0.01,
                "aspect {} at {col},{row}",
                asp[i]
            );
        }
    }
}

#[test]
fn flat_cells_get_aspect_minus_one_and_slope_zero() {
    let dir = tempfile::tempdir().unwrap();
    let g = reference();
    let z = vec![12.0f32; g.cells()];
    let dem = dir.path().join("flat.tif");
    raster::write_geotiff(&dem, &g, &[&z], &WriteOptions::default()).unwrap();
    let (so, ao) = (dir.path().join("slope.tif"), dir.path().join("aspect.tif"));
    let (s_out, a_out) = prepare::slope_aspect(&dem, &g, &so, &ao).unwrap();
    let (_, s) = raster::read_band::<f32>(&so, 1).unwrap();
    let (_, asp) = raster::read_band::<f32>(&ao, 1).unwrap();
    assert!(s.iter().all(|&v| v == 0.0));
    assert!(asp.iter().all(|&v| v == ASPECT_FLAT));
    assert_eq!(s_out.cells_with_data, g.cells());
    assert_eq!(a_out.cells_with_data, g.cells());
}

fn shifted_source(dir: &Path, dx_cells: f64, dy_cells: f64) -> PathBuf {
    // Value = column + 100 * row of the source cell, on a grid shifted east by dx and
    // south by dy cells.
    let g = Grid {
        width: W,
        height: H,
        geotransform: [
            X0 + dx_cells * CELL,
            CELL,
            0.0,
            Y0 - dy_cells * CELL,
            0.0,
            -CELL,
        ],
        crs_wkt: utm48n(),
    };
    let v: Vec<i16> = (0..g.cells())
        .map(|i| ((i % W) + 100 * (i / W)) as i16)
        .collect();
    let p = dir.join("shifted.tif");
    raster::write_geotiff(
        &p,
        &g,
        &[&v],
        &WriteOptions {
            nodata: Some(-1.0),
            ..Default::default()
        },
    )
    .unwrap();
    p
}

#[test]
fn nearest_warp_moves_values_by_the_shift_in_cells() {
    let dir = tempfile::tempdir().unwrap();
    // Shifted 2.4 cells east and 1.4 cells south: the centre of reference cell (c, r)
    // falls at source pixel coordinates (c + 0.5 - 2.4, r + 0.5 - 1.4) = (c - 1.9,
    // r - 0.9), i.e. in source cell (c - 2, r - 1).
    let src = shifted_source(dir.path(), 2.4, 1.4);
    let out = dir.path().join("w.tif");
    let o = prepare::warp(&src, &reference(), Some(Resample::Nearest), "w", &out).unwrap();
    let (info, v) = raster::read_band::<i16>(&out, 1).unwrap();
    assert_eq!(info.data_type, "Int16");
    assert_eq!(info.nodata, Some(-1.0));
    assert_eq!(info.grid.geotransform, reference().geotransform);
    for r in 0..H {
        for c in 0..W {
            let expected = if c >= 2 && r >= 1 {
                (c - 2 + 100 * (r - 1)) as i16
            } else {
                -1
            };
            assert_eq!(v[r * W + c], expected, "cell {c},{r}");
        }
    }
    // Cells with data: columns 2..50 and rows 1..40.
    assert_eq!(o.cells_with_data, 48 * 39);
}

#[test]
fn bilinear_warp_of_a_two_and_a_half_cell_shift_averages_the_two_source_cells() {
    let dir = tempfile::tempdir().unwrap();
    // Shifted 2.5 cells east, 0 south: the centre of reference cell c is at source pixel
    // coordinate c + 0.5 - 2.5 = c - 2, the edge between source cells c - 3 and c - 2
    // (centres at c - 2.5 and c - 1.5), so bilinear gives the mean of their values:
    // ((c - 3) + (c - 2)) / 2 + 100 r. (Nearest would sit exactly on the edge.)
    let src = shifted_source(dir.path(), 2.5, 0.0);
    let out = dir.path().join("w.tif");
    prepare::warp(&src, &reference(), Some(Resample::Bilinear), "w", &out).unwrap();
    let (info, v) = raster::read_band::<f32>(&out, 1).unwrap();
    assert_eq!(info.data_type, "Float32");
    for r in 1..H - 1 {
        for c in 3..W - 1 {
            let expected = ((c - 3) + (c - 2)) as f32 / 2.0 + (100 * r) as f32;
            let got = v[r * W + c];
            assert!((got - expected).abs() < 1e-3, "cell {c},{r}: {got}");
        }
    }
    // West of the source (columns 0 and 1 are more than half a cell outside it): nodata.
    assert_eq!(v[W], -1.0);
}

#[test]
fn a_missing_vector_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("roads.gpkg");
    let e = prepare::distance(&missing, &reference(), "d", &dir.path().join("d.tif"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("roads.gpkg") && e.contains("file not found"),
        "{e}"
    );
}

#[test]
fn a_vector_without_features_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = write_json(dir.path(), "empty.geojson", &collection_32648(""));
    let e = prepare::restriction(&v, &reference(), "r", &dir.path().join("r.tif"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("empty.geojson") && e.contains("has no features"),
        "{e}"
    );
    assert!(!dir.path().join("r.tif").exists());
}

#[test]
fn unknown_resampling_and_bad_names_are_refused() {
    let e = prepare::parse_warp_spec("pop=data/pop.tif:cubic")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown resampling `cubic`") && e.contains("`nearest` or `bilinear`"),
        "{e}"
    );
    let s = prepare::parse_warp_spec("pop=data/v1:2/pop.tif:bilinear").unwrap();
    assert_eq!(s.path, PathBuf::from("data/v1:2/pop.tif"));
    assert_eq!(s.resample, Some(Resample::Bilinear));
    let s = prepare::parse_warp_spec("pop=pop.tif").unwrap();
    assert_eq!((s.name.as_str(), s.resample), ("pop", None));
    let e = prepare::parse_warp_spec("pop.tif").unwrap_err().to_string();
    assert!(e.contains("expected NAME=PATH"), "{e}");
    let e = prepare::parse_named_path("--distance", "my road=r.geojson")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--distance") && e.contains("layer name `my road`"),
        "{e}"
    );
}

#[test]
fn prepared_toml_lists_drivers_restrictions_and_zones_relative_to_the_folder() {
    let dir = Path::new("/data/prepared");
    let out = |name: &str, kind| prepare::Output {
        name: name.into(),
        kind,
        path: dir.join(format!("{name}.tif")),
        cells_with_data: 1,
        min: None,
        max: None,
    };
    let text = prepare::prepared_toml(
        dir,
        &[
            out("slope", OutputKind::Slope),
            out("reserve", OutputKind::Restriction),
            out("zones", OutputKind::Zones),
            out("dist_road", OutputKind::Distance),
        ],
    )
    .unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let drivers = v["drivers"].as_array().unwrap();
    assert_eq!(drivers.len(), 2);
    assert_eq!(drivers[0]["name"].as_str(), Some("slope"));
    assert_eq!(drivers[0]["path"].as_str(), Some("slope.tif"));
    assert_eq!(drivers[1]["path"].as_str(), Some("dist_road.tif"));
    assert_eq!(v["restrictions"][0]["path"].as_str(), Some("reserve.tif"));
    assert_eq!(v["zones"]["path"].as_str(), Some("zones.tif"));
}
