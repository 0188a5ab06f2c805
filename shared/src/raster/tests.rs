//! Tests of the raster module: writing and reading back, strip writing, windows, band
//! types, errors naming the file, warping.

use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, Metadata};

use super::*;

fn grid() -> Grid {
    Grid {
        width: 300,
        height: 270,
        geotransform: [500000.0, 30.0, 0.0, 1200000.0, 0.0, -30.0],
        crs_wkt: SpatialRef::from_epsg(32648).unwrap().to_wkt().unwrap(),
    }
}

#[test]
fn writes_tiled_compressed_geotiff_and_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("classes.tif");
    let g = grid();
    let data: Vec<u8> = (0..g.cells()).map(|i| (i % 5) as u8).collect();
    let opts = WriteOptions {
        nodata: Some(0.0),
        palette: vec![PaletteEntry {
            value: 1,
            name: "forest".into(),
            rgb: [0, 128, 0],
        }],
        band_names: vec!["land use".into()],
    };
    write_geotiff(&p, &g, &[&data], &opts).unwrap();
    let (info, back) = read_band::<u8>(&p, 1).unwrap();
    assert_eq!(back, data);
    assert_eq!(info.nodata, Some(0.0));
    assert_eq!(info.block_size, (256, 256));
    assert!(same_crs(&info.grid.crs_wkt, &g.crs_wkt));
    assert_eq!(info.grid.geotransform, g.geotransform);
    let ds = Dataset::open(&p).unwrap();
    assert_eq!(
        ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
            .as_deref(),
        Some("DEFLATE")
    );
    let band = ds.rasterband(1).unwrap();
    let ct = band.color_table().unwrap();
    assert_eq!(ct.entry_as_rgb(1).unwrap().g, 128);
    // no temporary file is left behind
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    let mut names: Vec<String> = left
        .iter()
        .map(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["classes.tif".to_string(), "classes.tif.aux.xml".to_string()]
    );
}

#[test]
fn a_raster_written_in_strips_is_the_file_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let g = grid(); // 300 x 270: two rows of 256 x 256 blocks
                    // band b, column x, row y: 100000 b + 10 y + x / 4 (exact in f32)
    let value = |b: usize, x: usize, y: usize| (100000 * b + 10 * y) as f32 + x as f32 / 4.0;
    let bands: Vec<Vec<f32>> = (0..2)
        .map(|b| (0..g.cells()).map(|i| value(b, i % 300, i / 300)).collect())
        .collect();
    let opts = WriteOptions {
        nodata: Some(-1.0),
        palette: Vec::new(),
        band_names: vec!["a".into(), "b".into()],
    };
    let whole = dir.path().join("whole.tif");
    write_geotiff(&whole, &g, &[&bands[0], &bands[1]], &opts).unwrap();
    // strips of STRIP_ROWS rows, band after band: the same bytes
    let strips = dir.path().join("strips.tif");
    let mut w = StripWriter::<f32>::create(&strips, &g, 2, &opts).unwrap();
    for (b, band) in bands.iter().enumerate() {
        for rows in band.chunks(STRIP_ROWS * 300) {
            w.write_rows(b, rows).unwrap();
        }
    }
    // nothing under the final name until it is finished
    assert!(!strips.exists());
    w.finish().unwrap();
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&strips).unwrap()
    );
    // 7 rows at a time, the bands interleaved: strips straddle the block boundary
    // at row 256; the same values
    let sevens = dir.path().join("sevens.tif");
    let mut w = StripWriter::<f32>::create(&sevens, &g, 2, &opts).unwrap();
    for (a, b) in bands[0].chunks(7 * 300).zip(bands[1].chunks(7 * 300)) {
        w.write_rows(0, a).unwrap();
        w.write_rows(1, b).unwrap();
    }
    w.finish().unwrap();
    for p in [&strips, &sevens] {
        let (_, b1) = read_band::<f32>(p, 1).unwrap();
        let (_, b2) = read_band::<f32>(p, 2).unwrap();
        // row 269, column 299 of band 2: 100000 + 2690 + 74.75
        assert_eq!(b2[269 * 300 + 299], 102764.75);
        // row 256 (first row of the second block row), column 1 of band 1: 2560.25
        assert_eq!(b1[256 * 300 + 1], 2560.25);
        // row 255, column 4 of band 1: 2550 + 1
        assert_eq!(b1[255 * 300 + 4], 2551.0);
        assert_eq!(b1, bands[0]);
        assert_eq!(b2, bands[1]);
    }
}

#[test]
fn an_unfinished_strip_writer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let g = grid();
    let p = dir.path().join("part.tif");
    let mut w = StripWriter::<u8>::create(&p, &g, 1, &WriteOptions::default()).unwrap();
    w.write_rows(0, &vec![1u8; 300 * 10]).unwrap();
    // a partial row and rows past the bottom are refused
    assert!(w.write_rows(0, &[1u8; 299]).is_err());
    assert!(w.write_rows(0, &vec![1u8; 300 * 261]).is_err());
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("10 of its 270 rows"), "{e}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!p.exists());
}

#[test]
fn reads_a_window_and_every_band_type() {
    let dir = tempfile::tempdir().unwrap();
    let g = grid();
    let f: Vec<f32> = (0..g.cells()).map(|i| i as f32 * 0.5).collect();
    let p = dir.path().join("f.tif");
    write_geotiff(&p, &g, &[&f], &WriteOptions::default()).unwrap();
    let win: Vec<f64> = read_window(&p, 1, 10, 20, 3, 2).unwrap();
    assert_eq!(
        win,
        vec![
            (20.0 * 300.0 + 10.0) * 0.5,
            3005.5,
            3006.0,
            3155.0,
            3155.5,
            3156.0
        ]
    );
    let i16s: Vec<i16> = (0..g.cells()).map(|i| (i % 1000) as i16 - 500).collect();
    let p16 = dir.path().join("i16.tif");
    write_geotiff(&p16, &g, &[&i16s], &WriteOptions::default()).unwrap();
    assert_eq!(read_band::<f64>(&p16, 1).unwrap().1[1], -499.0);
    assert_eq!(info(&p16).unwrap().data_type, "Int16");
}

#[test]
fn missing_and_corrupt_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.tif");
    let e = info(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.tif") && e.contains("not found"), "{e}");
    let bad = dir.path().join("bad.tif");
    std::fs::write(&bad, b"II*\0garbage that is not a tiff").unwrap();
    let e = info(&bad).unwrap_err().to_string();
    assert!(
        e.contains("bad.tif") && e.contains("not a readable raster"),
        "{e}"
    );
}

#[test]
fn warp_moves_values_onto_a_shifted_grid() {
    let dir = tempfile::tempdir().unwrap();
    let g = grid();
    let vals: Vec<f32> = (0..g.cells()).map(|i| (i % g.width) as f32).collect();
    let p = dir.path().join("x.tif");
    write_geotiff(
        &p,
        &g,
        &[&vals],
        &WriteOptions {
            nodata: Some(-1.0),
            ..Default::default()
        },
    )
    .unwrap();
    let mut t = g.clone();
    t.geotransform[0] += 60.0; // two cells east
    let (out, nodata) = warp_to_grid(&p, &t, Resample::Nearest).unwrap();
    assert_eq!(nodata, -1.0);
    assert_eq!(out[0], 2.0);
    assert_eq!(out[g.width - 1], -1.0); // east of the source: nodata
}
