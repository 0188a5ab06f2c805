//! A worker reads files only under its data root: absolute paths, `..` out of the root
//! and symlinks leading out of it are refused with PERMISSION_DENIED naming the path; a
//! worker without `--data-root` refuses every file load (FAILED_PRECONDITION); a path
//! inside the root is read.

use flus_e2e::{start_worker, TEST_TOKEN};
use flus_proto::v1::worker_client::WorkerClient;
use flus_proto::v1::{
    file_tile_chunk, FileTileChunk, LayerChunk, LayerFile, LayerInfo, LayerKind, TileFiles,
    TileHeader, TileSpec,
};

/// A 2 x 2 tile (no halo) of a 2 x 2 grid, class window streamed, one driver file.
fn stream(path: &str) -> Vec<FileTileChunk> {
    vec![
        FileTileChunk {
            part: Some(file_tile_chunk::Part::Header(TileHeader {
                run_id: "r".into(),
                spec: Some(TileSpec {
                    tile_id: 0,
                    x0: 0,
                    y0: 0,
                    width: 2,
                    height: 2,
                    halo: 0,
                    grid_width: 2,
                    grid_height: 2,
                    classes: 2,
                }),
                layers: vec![LayerInfo {
                    name: "classes".into(),
                    kind: LayerKind::Classes as i32,
                    bytes: 4,
                }],
            })),
        },
        FileTileChunk {
            part: Some(file_tile_chunk::Part::Files(TileFiles {
                layers: vec![LayerFile {
                    kind: LayerKind::Driver as i32,
                    path: path.into(),
                    band: 1,
                    nodata: None,
                }],
            })),
        },
        FileTileChunk {
            part: Some(file_tile_chunk::Part::Chunk(LayerChunk {
                layer: 0,
                offset: 0,
                data: vec![0, 1, 1, 0],
            })),
        },
    ]
}

async fn load(addr: &str, path: &str) -> Result<u32, tonic::Status> {
    let mut c = WorkerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut r = tonic::Request::new(tokio_stream::iter(stream(path)));
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {TEST_TOKEN}").parse().unwrap(),
    );
    c.load_tile_files(r).await.map(|r| r.into_inner().tile_id)
}

/// A 2 x 2 Float32 GeoTIFF.
fn write_raster(path: &std::path::Path) {
    let grid = flus_shared::Grid {
        width: 2,
        height: 2,
        geotransform: [0.0, 1.0, 0.0, 2.0, 0.0, -1.0],
        crs_wkt: String::new(),
    };
    let v = [1f32, 2.0, 3.0, 4.0];
    flus_shared::raster::write_geotiff(path, &grid, &[&v], &Default::default()).unwrap();
}

#[tokio::test]
async fn paths_outside_the_data_root_requested_from_a_worker_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    write_raster(&root.join("sub/inside.tif"));
    let outside = dir.path().join("outside.tif");
    write_raster(&outside);
    std::os::unix::fs::symlink(&outside, root.join("escape.tif")).unwrap();
    let w = start_worker(&["--data-root", root.to_str().unwrap()]);

    // inside the root: read
    assert_eq!(load(&w.addr, "sub/inside.tif").await.unwrap(), 0);
    assert_eq!(load(&w.addr, "sub/../sub/inside.tif").await.unwrap(), 0);

    let absolute = outside.to_str().unwrap().to_string();
    for bad in [
        absolute.as_str(),
        "../outside.tif",
        "sub/../../outside.tif",
        "escape.tif",
    ] {
        let e = load(&w.addr, bad).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{bad}: {e}");
        assert!(
            e.message().contains(bad),
            "the refusal names the path {bad}: {}",
            e.message()
        );
    }
}

#[tokio::test]
async fn a_worker_without_a_data_root_refuses_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_raster(&dir.path().join("a.tif"));
    let w = start_worker(&[]);
    let e = load(&w.addr, "a.tif").await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
    assert!(e.message().contains("--data-root"), "{}", e.message());
}
