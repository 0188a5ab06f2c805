//! What a worker accepts: the token is checked before any work (a refused LoadTile
//! leaves no tile behind), messages above `--max-message-mib` are refused, and at most
//! `--max-tiles` tiles are held.

use flus_e2e::{start_worker, TEST_TOKEN};
use flus_proto::v1::health_client::HealthClient;
use flus_proto::v1::worker_client::WorkerClient;
use flus_proto::v1::{
    tile_chunk, HealthRequest, LayerChunk, LayerInfo, LayerKind, TileChunk, TileHeader, TileSpec,
};

async fn channel(addr: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// A 4 x 4 tile of 2 classes with a halo of 1: its class window is 6 x 6 = 36 bytes,
/// sent as one chunk of `chunk_bytes` bytes (36 for a well-formed tile).
fn tile(id: u32, chunk_bytes: usize) -> Vec<TileChunk> {
    vec![
        TileChunk {
            part: Some(tile_chunk::Part::Header(TileHeader {
                run_id: "limits".into(),
                spec: Some(TileSpec {
                    tile_id: id,
                    x0: 0,
                    y0: 0,
                    width: 4,
                    height: 4,
                    halo: 1,
                    grid_width: 4,
                    grid_height: 4,
                    classes: 2,
                }),
                layers: vec![LayerInfo {
                    name: "classes".into(),
                    kind: LayerKind::Classes as i32,
                    bytes: 36,
                }],
            })),
        },
        TileChunk {
            part: Some(tile_chunk::Part::Chunk(LayerChunk {
                layer: 0,
                offset: 0,
                data: vec![0u8; chunk_bytes],
            })),
        },
    ]
}

async fn tiles_held(ch: &tonic::transport::Channel) -> u32 {
    HealthClient::new(ch.clone())
        .check(HealthRequest {})
        .await
        .unwrap()
        .into_inner()
        .tiles
}

#[tokio::test]
async fn a_load_tile_with_a_wrong_token_stores_nothing() {
    let w = start_worker(&[]);
    let ch = channel(&w.addr).await;
    let mut c = WorkerClient::new(ch.clone());
    let e = c
        .load_tile(with_token(
            tokio_stream::iter(tile(0, 36)),
            "not-the-cluster-token",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert_eq!(tiles_held(&ch).await, 0);
    // the same tile with the token is stored
    let r = c
        .load_tile(with_token(tokio_stream::iter(tile(0, 36)), TEST_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.tile_id, r.bytes), (0, 36));
    assert_eq!(tiles_held(&ch).await, 1);
}

#[tokio::test]
async fn a_message_above_the_size_limit_is_refused() {
    let w = start_worker(&["--max-message-mib", "1"]);
    let ch = channel(&w.addr).await;
    let mut c = WorkerClient::new(ch.clone());
    // a chunk of 1 MiB + 1 byte of data: above the limit whatever its framing
    let e = c
        .load_tile(with_token(
            tokio_stream::iter(tile(0, 1024 * 1024 + 1)),
            TEST_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e}");
    assert!(e.message().contains("too large"), "{e}");
    assert_eq!(tiles_held(&ch).await, 0);
}

#[tokio::test]
async fn a_worker_holds_at_most_max_tiles() {
    let w = start_worker(&["--max-tiles", "2"]);
    let ch = channel(&w.addr).await;
    let mut c = WorkerClient::new(ch.clone());
    for id in 0..2 {
        c.load_tile(with_token(tokio_stream::iter(tile(id, 36)), TEST_TOKEN))
            .await
            .unwrap();
    }
    let e = c
        .load_tile(with_token(tokio_stream::iter(tile(2, 36)), TEST_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("holds 2 tiles, its limit"), "{e}");
    // re-sending a tile it holds replaces it and is accepted
    c.load_tile(with_token(tokio_stream::iter(tile(1, 36)), TEST_TOKEN))
        .await
        .unwrap();
    assert_eq!(tiles_held(&ch).await, 2);
}
