//! The bad-input corpus (issue #9, item 2): each case copies the Dongguan example study
//! to a temp folder, breaks one thing, runs one `flus` command and checks that it
//! fails with exit code 1, without a panic, with a message naming the file or key and
//! what was found and expected, without changing any input, and without leaving an
//! output that looks complete (a final GeoTIFF, or a `run.json` that says `completed`).
//!
//! Not in this corpus: paths outside a worker's data root (`flus-worker --data-root` is
//! being added on another branch; its test belongs there).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use flus_e2e::corpus::{assert_no_complete_output, assert_unchanged, dongguan, edit, hashes};
use flus_e2e::{bin, run_with_timeout, Output};
use flus_shared::raster::{self, WriteOptions};

/// Replaces the values of band 1 of `path` (read as `f64`) with `f`'s, writing the file
/// back as `T` with the same grid and nodata.
fn rewrite<T: gdal::raster::GdalType + Copy>(
    path: &Path,
    convert: impl Fn(f64) -> T,
    f: impl Fn(&mut Vec<f64>, usize),
) {
    let (info, mut v) = raster::read_band::<f64>(path, 1).unwrap();
    f(&mut v, info.grid.width);
    let data: Vec<T> = v.into_iter().map(convert).collect();
    let opts = WriteOptions {
        nodata: info.nodata,
        ..Default::default()
    };
    std::fs::remove_file(path).unwrap();
    raster::write_geotiff(path, &info.grid, &[&data], &opts).unwrap();
}

/// Changes the grid of `path` (same values) with `f`.
fn regrid(path: &Path, f: impl Fn(&mut flus_shared::grid::Grid)) {
    let (info, v) = raster::read_band::<f32>(path, 1).unwrap();
    let mut grid = info.grid.clone();
    f(&mut grid);
    let opts = WriteOptions {
        nodata: info.nodata,
        ..Default::default()
    };
    std::fs::remove_file(path).unwrap();
    raster::write_geotiff(path, &grid, &[&v], &opts).unwrap();
}

/// Runs `flus ARGS` (`{study}` is replaced by the config path) in `dir` with an
/// optional file-size limit, and checks the common promises of the corpus.
fn fails(dir: &Path, args: &[&str], fsize_limit: Option<u64>) -> String {
    let study = dir.join("study.toml");
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{study}", study.to_str().unwrap()))
        .collect();
    let mut cmd = Command::new(bin("flus"));
    cmd.args(&args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(limit) = fsize_limit {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // An ignored SIGXFSZ stays ignored across exec: writes beyond the limit
                // then fail with EFBIG instead of killing the process, like a full disk.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let inputs = hashes(dir);
    let out: Output = run_with_timeout(cmd, Duration::from_secs(120));
    assert_unchanged(&inputs);
    assert_eq!(
        out.code,
        Some(1),
        "flus {args:?}: expected exit code 1\nstdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        !out.stderr.contains("panicked"),
        "flus {args:?} panicked:\n{}",
        out.stderr
    );
    assert_no_complete_output(&dir.join("out"));
    out.stderr
}

/// One corpus case: a test that copies the study, applies `setup` to its folder, runs
/// the command and expects every fragment in stderr.
macro_rules! case {
    ($(#[$m:meta])* $name:ident, $args:expr, $setup:expr, [$($frag:expr),+ $(,)?]) => {
        case!($(#[$m])* $name, $args, $setup, None, [$($frag),+]);
    };
    ($(#[$m:meta])* $name:ident, $args:expr, $setup:expr, $limit:expr, [$($frag:expr),+ $(,)?]) => {
        $(#[$m])*
        #[test]
        fn $name() {
            let d = dongguan();
            let setup: &dyn Fn(&Path) = &$setup;
            setup(d.path());
            let err = fails(d.path(), &$args, $limit);
            for frag in [$($frag),+] {
                assert!(
                    err.contains(frag),
                    "{}: expected {:?} in the message:\n{}",
                    stringify!($name),
                    frag,
                    err
                );
            }
        }
    };
}

const DEMAND: [&str; 2] = ["demand", "{study}"];
const VALIDATE: [&str; 2] = ["validate", "{study}"];
const SIMULATE: [&str; 4] = ["simulate", "{study}", "--scenario", "tutorial"];

/// The row of the 2001 map's class matrix (rows = from) and its 5 columns.
const CROPLAND_ROW: &str = "  [1, 1, 1, 1, 0],\n  [1, 0, 1, 1, 0],";

// ---- corrupt, truncated and empty rasters ----

case!(
    a_corrupt_geotiff_is_named,
    DEMAND,
    |d| std::fs::write(
        d.join("landuse_2006.tif"),
        b"II*\0this is no TIFF directory"
    )
    .unwrap(),
    ["landuse_2006.tif", "not a readable raster"]
);

case!(
    a_geotiff_truncated_before_its_directory_is_named,
    VALIDATE,
    |d| {
        let p = d.join("drivers/dem.tif");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    },
    ["drivers/dem.tif", "not a readable raster"]
);

case!(
    a_geotiff_truncated_in_its_pixel_data_is_named,
    VALIDATE,
    |d| {
        // written by GDAL with the directory first: the header stays readable
        let p = d.join("drivers/slope.tif");
        rewrite::<f32>(&p, |v| v as f32, |_, _| {});
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    },
    [
        "drivers/slope.tif",
        "read failed at row",
        "truncated or corrupt"
    ]
);

case!(
    a_zero_byte_raster_file_is_named,
    DEMAND,
    |d| std::fs::write(d.join("landuse_2001.tif"), b"").unwrap(),
    [
        "landuse_2001.tif",
        "empty file (0 bytes)",
        "expected a raster"
    ]
);

case!(
    a_raster_of_zero_cells_is_named,
    DEMAND,
    |d| {
        // a VRT is the one GDAL format that describes a 0 x 0 raster without complaint
        std::fs::write(
            d.join("empty.vrt"),
            "<VRTDataset rasterXSize=\"0\" rasterYSize=\"0\">\
             <GeoTransform>757334, 100, 0, 2562123, 0, -100</GeoTransform>\
             <VRTRasterBand dataType=\"Int32\" band=\"1\"/></VRTDataset>",
        )
        .unwrap();
        edit(d, |t| {
            t.replace("path = \"restricted.tif\"", "path = \"empty.vrt\"")
        });
    },
    ["empty.vrt", "0 x 0"]
);

case!(
    an_all_nodata_land_use_map_is_named,
    DEMAND,
    |d| {
        rewrite::<i32>(
            &d.join("landuse_2006.tif"),
            |v| v as i32,
            |v, _| v.iter_mut().for_each(|x| *x = i32::MAX as f64),
        )
    },
    ["landuse_2006.tif", "every cell is nodata (2147483647)"]
);

case!(
    an_all_nodata_driver_is_named,
    VALIDATE,
    |d| {
        rewrite::<f32>(
            &d.join("drivers/dist_road.tif"),
            |v| v as f32,
            |v, _| v.iter_mut().for_each(|x| *x = f32::MIN as f64),
        )
    },
    ["drivers/dist_road.tif", "every cell is nodata"]
);

// ---- grids ----

case!(
    a_layer_in_another_crs_is_named_with_both_crs,
    DEMAND,
    |d| regrid(&d.join("restricted.tif"), |g| {
        g.crs_wkt = gdal::spatial_ref::SpatialRef::from_epsg(32650)
            .unwrap()
            .to_wkt()
            .unwrap()
    }),
    [
        "restricted.tif",
        "landuse_2001.tif",
        "CRS",
        "zone 49N",
        "zone 50N"
    ]
);

case!(
    a_grid_off_by_a_fraction_of_a_cell_is_named_with_the_offset,
    DEMAND,
    // 37 m east on 100 m cells
    |d| regrid(&d.join("drivers/dem.tif"), |g| g.geotransform[0] += 37.0),
    [
        "drivers/dem.tif",
        "landuse_2001.tif",
        "origin x",
        "off by 0.37",
        "align = true"
    ]
);

case!(
    a_layer_of_another_size_is_named_with_both_sizes,
    DEMAND,
    |d| {
        let p = d.join("drivers/aspect.tif");
        let (info, v) = raster::read_band::<f32>(&p, 1).unwrap();
        let mut g = info.grid.clone();
        g.height -= 1;
        let v = &v[..g.cells()];
        std::fs::remove_file(&p).unwrap();
        raster::write_geotiff(&p, &g, &[v], &WriteOptions::default()).unwrap();
    },
    ["drivers/aspect.tif", "768 x 531", "768 x 530"]
);

// ---- values ----

case!(
    nan_in_a_driver_is_named_with_its_cell,
    VALIDATE,
    |d| rewrite::<f32>(
        &d.join("drivers/dist_town.tif"),
        |v| v as f32,
        |v, w| v[10 * w + 20] = f64::NAN
    ),
    ["drivers/dist_town.tif", "NaN", "row 10, column 20"]
);

case!(
    infinity_in_a_driver_is_named_with_its_cell,
    VALIDATE,
    |d| rewrite::<f32>(
        &d.join("drivers/dist_city.tif"),
        |v| v as f32,
        |v, w| v[100 * w + 200] = f64::NEG_INFINITY
    ),
    [
        "drivers/dist_city.tif",
        "infinite value at row 100, column 200"
    ]
);

case!(
    a_class_code_out_of_range_is_named_with_the_known_codes,
    DEMAND,
    |d| rewrite::<i32>(
        &d.join("landuse_2006.tif"),
        |v| v as i32,
        |v, w| v[300 * w + 400] = 9.0
    ),
    [
        "landuse_2006.tif",
        "class code(s) 9 (1 cells)",
        "known codes: 1, 2, 3, 4, 5"
    ]
);

case!(
    a_fractional_class_code_is_named_with_its_cell,
    DEMAND,
    |d| rewrite::<f32>(
        &d.join("landuse_2006.tif"),
        |v| v as f32,
        |v, w| v[300 * w + 400] = 2.5
    ),
    [
        "landuse_2006.tif",
        "value 2.5 at row 300, column 400",
        "not an integer class code"
    ]
);

case!(
    a_band_the_raster_does_not_have_is_named,
    DEMAND,
    |d| edit(d, |t| t.replace(
        "path = \"restricted.tif\"",
        "path = \"restricted.tif\"\nband = 2"
    )),
    ["restricted.tif", "has 1 band(s), band 2 was asked for"]
);

// ---- matrices and weights ----

case!(
    a_non_square_matrix_is_named,
    DEMAND,
    |d| edit(d, |t| t.replacen(
        CROPLAND_ROW,
        "  [1, 1, 1, 1],\n  [1, 0, 1, 1, 0],",
        1
    )),
    [
        "study.toml",
        "scenarios[0].matrix[2]",
        "4 columns, expected 5"
    ]
);

case!(
    a_matrix_with_a_missing_row_is_named,
    DEMAND,
    |d| edit(d, |t| t.replacen(CROPLAND_ROW, "  [1, 0, 1, 1, 0],", 1)),
    ["study.toml", "scenarios[0].matrix", "4 rows, expected 5"]
);

case!(
    a_non_numeric_matrix_is_named,
    DEMAND,
    |d| edit(d, |t| t.replacen(
        CROPLAND_ROW,
        "  [1, 1, \"yes\", 1, 0],\n  [1, 0, 1, 1, 0],",
        1
    )),
    [
        "study.toml",
        "scenarios[0].matrix[2][2]",
        "string \"yes\"",
        "expected f64"
    ]
);

case!(
    a_matrix_entry_outside_0_1_is_named,
    DEMAND,
    |d| edit(d, |t| t.replacen(
        CROPLAND_ROW,
        "  [1, 1, 1, 1.5, 0],\n  [1, 0, 1, 1, 0],",
        1
    )),
    [
        "study.toml",
        "scenarios[0].matrix[2][3]",
        "1.5 is outside [0, 1]"
    ]
);

case!(
    a_weight_above_1_is_named,
    DEMAND,
    |d| edit(d, |t| t.replacen("weight = 0.5", "weight = 1.25", 1)),
    ["study.toml", "classes[2].weight", "1.25 is outside [0, 1]"]
);

case!(
    a_negative_weight_is_named,
    DEMAND,
    |d| edit(d, |t| t.replacen("weight = 0.1", "weight = -0.1", 1)),
    ["study.toml", "classes[4].weight", "-0.1 is outside [0, 1]"]
);

// ---- demand ----

case!(
    a_demand_that_cannot_be_met_names_the_class,
    SIMULATE,
    // the tutorial scenario's demand keeps forest at 42433 cells; with no conversion
    // into forest allowed (column 4 only from forest) forest cannot grow to 60000
    |d| edit(d, |t| {
        let t = t.replace("forest = 42433", "forest = 60000");
        // second matrix (tutorial): forbid cropland -> forest
        let i = t.find("name = \"tutorial\"").unwrap();
        let (a, b) = t.split_at(i);
        format!(
            "{a}{}",
            b.replacen("  [1, 1, 1, 1, 0],", "  [1, 1, 1, 0, 0],", 1)
        )
    }),
    ["infeasible demand", "class \"forest\" gets", "of its"]
);

case!(
    a_demand_larger_than_the_valid_area_is_named_with_both_totals,
    DEMAND,
    |d| edit(d, |t| t
        .replace("absorb = \"cropland\"\n", "")
        .replace("urban = 80016", "urban = 900000")),
    [
        "study.toml",
        "scenarios.tutorial.demand",
        "valid cells",
        // 900000 + 54427 + 43599 + 42433 + 28446
        "the demand sums to 1068905 cells"
    ]
);

case!(
    a_demand_the_absorbing_class_cannot_absorb_is_named,
    DEMAND,
    |d| edit(d, |t| t.replace("urban = 80016", "urban = 900000")),
    [
        "study.toml",
        "scenarios.tutorial.absorb",
        "\"cropland\" cannot absorb"
    ]
);

// ---- classes ----

case!(
    duplicate_class_codes_are_named,
    DEMAND,
    |d| edit(d, |t| t.replacen("code = 5", "code = 4", 1)),
    [
        "study.toml",
        "classes[4].code",
        "code 4 is used by two classes"
    ]
);

case!(
    zero_classes_are_an_error,
    DEMAND,
    |d| edit(d, |t| {
        let a = t.find("[[classes]]").unwrap();
        let b = t.find("[[landuse]]").unwrap();
        format!("{}{}", &t[..a], &t[b..])
    }),
    ["study.toml", "`classes`", "0 class(es) given; at least 2"]
);

case!(
    one_class_is_an_error,
    DEMAND,
    |d| edit(d, |t| {
        let a = t.find("[[classes]]\ncode = 2").unwrap();
        let b = t.find("[[landuse]]").unwrap();
        format!("{}{}", &t[..a], &t[b..])
    }),
    ["study.toml", "`classes`", "1 class(es) given; at least 2"]
);

// ---- the config and its paths ----

case!(
    a_config_referring_to_itself_is_named,
    DEMAND,
    |d| edit(d, |t| t
        .replace("path = \"landuse_2006.tif\"", "path = \"study.toml\"")),
    [
        "study.toml",
        "landuse[1].path",
        "is the study config itself"
    ]
);

case!(
    a_config_referring_to_a_folder_is_named,
    DEMAND,
    |d| edit(d, |t| t
        .replace("path = \"drivers/dem.tif\"", "path = \"drivers\"")),
    ["drivers", "is a folder, expected a raster file"]
);

case!(
    a_folder_given_as_config_is_named,
    ["validate", "drivers"],
    |_| {},
    ["drivers", "is a folder, expected a study TOML file"]
);

case!(
    a_toml_syntax_error_is_named_with_its_line,
    DEMAND,
    |d| edit(d, |t| t.replace("[markov]", "[markov")),
    ["study.toml", "(syntax)", "line"]
);

case!(
    an_even_neighbourhood_is_named,
    VALIDATE,
    |d| edit(d, |t| t.replace("neighbourhood = 3", "neighbourhood = 4")),
    [
        "study.toml",
        "ca.neighbourhood",
        "4: expected an odd number >= 3"
    ]
);

// ---- where outputs go ----

case!(
    an_unwritable_output_folder_is_named,
    DEMAND,
    // `out` is a file: nothing can be created below it (whatever the user's rights)
    |d| {
        edit(d, |t| {
            t.replace("output = \"out\"", "output = \"blocker/out\"")
        });
        std::fs::write(d.join("blocker"), b"a file, not a folder").unwrap();
    },
    ["blocker/out", "Not a directory"]
);

case!(
    a_full_disk_fails_without_a_complete_looking_output,
    SIMULATE,
    // RLIMIT_FSIZE of 256 KiB: the first output larger than that (the 5-band
    // suitability GeoTIFF) fails with EFBIG, as on a full disk
    |_| {},
    Some(256 * 1024),
    ["suitability_2006.tif", "File too large"]
);

// ---- settings that cannot finish (issue "never lose data", kind 3) ----

case!(
    an_ann_with_a_hundred_thousand_hidden_units_is_refused_naming_the_key,
    VALIDATE,
    |d| edit(d, |t| t.replace(
        "sample_per_mille = 20",
        "sample_per_mille = 20\nhidden = 100000"
    )),
    [
        "study.toml",
        "ann.hidden",
        "100000: expected 1 to 1000 hidden units"
    ]
);

case!(
    a_gwr_sample_of_a_billion_points_is_refused_naming_the_key,
    DEMAND,
    |d| edit(d, |t| format!("{t}\n[gwr]\nsample_points = 1000000000\n")),
    [
        "study.toml",
        "gwr.sample_points",
        "1000000000: expected 10 to 100000"
    ]
);

// ---- configurations that can only produce nonsense (kind 4) ----

/// Rewrites the land-use map `name` of `d` as a Byte raster (nodata 255), as Ben Cat's.
fn as_byte_map(d: &Path, name: &str) {
    let p = d.join(name);
    let (info, v) = raster::read_band::<f64>(&p, 1).unwrap();
    let nd = info.nodata;
    let data: Vec<u8> = v
        .iter()
        .map(|&x| if Some(x) == nd { 255 } else { x as u8 })
        .collect();
    std::fs::remove_file(&p).unwrap();
    let opts = WriteOptions {
        nodata: Some(255.0),
        ..Default::default()
    };
    raster::write_geotiff(&p, &info.grid, &[&data], &opts).unwrap();
}

case!(
    a_class_code_above_a_byte_maps_range_is_named_with_the_data_type,
    DEMAND,
    |d| {
        as_byte_map(d, "landuse_2001.tif");
        edit(d, |t| t.replacen("code = 5", "code = 256", 1));
    },
    [
        "study.toml",
        "classes[4].code",
        "code 256 cannot occur in",
        "landuse_2001.tif",
        "data type Byte: 0 to 255"
    ]
);

case!(
    a_negative_class_code_in_a_byte_map_is_named_with_the_data_type,
    DEMAND,
    |d| {
        as_byte_map(d, "landuse_2001.tif");
        edit(d, |t| t.replacen("code = 1", "code = -1", 1));
    },
    [
        "classes[0].code",
        "code -1 cannot occur in",
        "data type Byte: 0 to 255"
    ]
);

case!(
    a_grid_tolerance_of_a_billion_cells_is_refused,
    DEMAND,
    |d| edit(d, |t| t
        .replace("seed = 2006", "seed = 2006\ngrid_tolerance = 1e9")),
    [
        "study.toml",
        "study.grid_tolerance",
        "1000000000: expected a number of cells in [0, 0.5)"
    ]
);

case!(
    a_negative_grid_tolerance_is_refused,
    DEMAND,
    |d| edit(d, |t| t
        .replace("seed = 2006", "seed = 2006\ngrid_tolerance = -1")),
    [
        "study.grid_tolerance",
        "-1: expected a number of cells in [0, 0.5)"
    ]
);

case!(
    the_same_multiplier_twice_is_refused_naming_both,
    DEMAND,
    |d| edit(d, |t| t.replacen(
        "  [1, 0, 1, 0, 1],\n]\n",
        "  [1, 0, 1, 0, 1],\n]\nmultipliers = [\
         { from = \"cropland\", to = \"urban\", factor = 1e200 }, \
         { from = \"cropland\", to = \"urban\", factor = 1e200 }]\n",
        1
    )),
    [
        "study.toml",
        "scenarios[0].multipliers[1]",
        "\"cropland\" -> \"urban\" is given twice (also multipliers[0])"
    ]
);

case!(
    a_gwr_bandwidth_of_zero_is_refused,
    DEMAND,
    |d| edit(d, |t| format!("{t}\n[gwr]\nbandwidth = 0\n")),
    [
        "study.toml",
        "gwr.bandwidth",
        // 8 drivers: intercept + 8 coefficients need at least 10 neighbours
        "0: expected a whole number of neighbours from 10 (drivers + 2)"
    ]
);

case!(
    a_study_of_one_valid_cell_is_refused,
    DEMAND,
    |d| rewrite::<i32>(
        &d.join("restricted.tif"),
        |v| v as i32,
        // every cell but one is nodata (2147483647, the layer's declared nodata)
        |v, w| {
            let keep = 300 * w + 400;
            for (i, x) in v.iter_mut().enumerate() {
                if i != keep {
                    *x = i32::MAX as f64;
                }
            }
        }
    ),
    ["study.toml", "only 1 valid cell(s)", "expected at least 10"]
);

case!(
    two_land_use_maps_that_are_one_file_are_refused,
    DEMAND,
    |d| edit(d, |t| t.replace(
        "path = \"landuse_2006.tif\"",
        "path = \"./landuse_2001.tif\""
    )),
    [
        "study.toml",
        "landuse[1].path",
        "is the same file as landuse[0].path landuse_2001.tif"
    ]
);

case!(
    carbon_pools_whose_sum_overflows_are_refused,
    DEMAND,
    |d| edit(d, |t| t.replacen(
        "weight = 1.0\n",
        "weight = 1.0\ncarbon = { above = 1e308, below = 1e308, soil = 0, dead = 0 }\n",
        1
    )),
    [
        "study.toml",
        "classes[0].carbon.above",
        "1e308 t/ha: expected at most 100000 t/ha"
    ]
);

case!(
    a_pools_table_whose_sum_overflows_is_refused,
    [
        "carbon",
        "--baseline",
        "landuse_2001.tif",
        "--pools",
        "pools.csv"
    ],
    |d| std::fs::write(
        d.join("pools.csv"),
        "lucode,c_above,c_below,c_soil,c_dead\n1,1e308,1e308,0,0\n2,0,0,0,0\n\
         3,1,1,1,1\n4,2,2,2,2\n5,3,3,3,3\n"
    )
    .unwrap(),
    [
        "pools.csv",
        "row 2, column `c_above`: found 1e308",
        "expected at most 100000 t/ha"
    ]
);

/// Copies the 2001 map of `d` to `name`, keeping data only in the columns `keep`
/// accepts (nodata elsewhere).
fn half_map(d: &Path, name: &str, keep: impl Fn(usize, usize) -> bool) {
    let p = d.join(name);
    std::fs::copy(d.join("landuse_2001.tif"), &p).unwrap();
    rewrite::<i32>(
        &p,
        |v| v as i32,
        |v, w| {
            for (i, x) in v.iter_mut().enumerate() {
                if !keep(i % w, w) {
                    *x = i32::MAX as f64;
                }
            }
        },
    );
}

/// Two copies of the 2001 map: `west.tif` with data in the west half only, `east.tif`
/// in the east half only.
fn disjoint_maps(d: &Path) {
    half_map(d, "west.tif", |x, w| x < w / 2);
    half_map(d, "east.tif", |x, w| x >= w / 2);
}

case!(
    maps_with_no_common_data_cell_are_an_error_for_compare,
    ["compare", "--start", "west.tif", "--truth", "east.tif", "--sim", "west.tif"],
    disjoint_maps,
    [
        "no cell has data in all three maps (west.tif, east.tif, west.tif)",
        "expected maps whose data overlap"
    ]
);

case!(
    maps_with_no_common_data_cell_are_an_error_for_carbon,
    [
        "carbon",
        "--baseline",
        "west.tif",
        "--alternate",
        "east.tif",
        "--pools",
        "pools.csv",
        "--on-missing",
        "exclude"
    ],
    |d| {
        disjoint_maps(d);
        std::fs::write(
            d.join("pools.csv"),
            "lucode,c_above,c_below,c_soil,c_dead\n1,1,1,1,1\n2,0,0,0,0\n\
             3,1,1,1,1\n4,2,2,2,2\n5,3,3,3,3\n",
        )
        .unwrap();
    },
    [
        "no cell has data in west.tif and east.tif",
        "expected maps (and zones) whose data overlap"
    ]
);

// ---- errors that say the real cause (kind 5) ----

#[test]
fn compare_of_maps_on_other_grids_advises_warping_not_a_setting_it_lacks() {
    let d = dongguan();
    std::fs::copy(d.path().join("landuse_2006.tif"), d.path().join("sim.tif")).unwrap();
    regrid(&d.path().join("sim.tif"), |g| g.geotransform[0] += 37.0);
    let err = fails(
        d.path(),
        &[
            "compare",
            "--start",
            "landuse_2001.tif",
            "--truth",
            "landuse_2006.tif",
            "--sim",
            "sim.tif",
        ],
        None,
    );
    assert!(
        err.contains("sim.tif") && err.contains("off by 0.37") && err.contains("flus prepare"),
        "{err}"
    );
    assert!(!err.contains("align = true"), "{err}");
}

// ---- no panic (kind 6) ----

case!(
    gwr_coordinates_near_1e160_are_refused_without_a_panic,
    ["gwr", "--csv", "far.csv", "--y", "y", "--x", "a", "--coords", "px,py"],
    |d| {
        let mut rows = String::from("px,py,a,y\n");
        for i in 0..20 {
            let f = i as f64;
            rows.push_str(&format!(
                "{:e},{:e},{},{}\n",
                1e160 + f * 1e150,
                -1e160 + f * 1e150,
                (f * 0.7).sin(),
                f + (f * 1.3).cos()
            ));
        }
        std::fs::write(d.join("far.csv"), rows).unwrap();
    },
    [
        "far.csv",
        "x coordinate of row 0 is 1e160",
        "expected a coordinate within ±1e15"
    ]
);
