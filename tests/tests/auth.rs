//! Workers refuse calls without the cluster token, or with a wrong one, before any
//! work: no tile data is served to such a client.

use flus_e2e::{start_worker, TEST_TOKEN};
use flus_proto::v1::worker_client::WorkerClient;
use flus_proto::v1::{
    tile_chunk, CarbonRequest, DropTilesRequest, ExactKeysRequest, TileChunk, TileHeader, TileSpec,
};

async fn client(addr: &str) -> WorkerClient<tonic::transport::Channel> {
    WorkerClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

#[tokio::test]
async fn calls_without_or_with_a_wrong_token_are_refused() {
    let w = start_worker(&[]);
    let mut c = client(&w.addr).await;
    for token in [None, Some("wrong-token-wrong-token")] {
        let e = c
            .exact_keys(with_token(
                ExactKeysRequest {
                    run_id: "r".into(),
                    tile_ids: vec![0],
                    iteration: 0,
                    bucket: 0,
                    classes: vec![0, 1],
                    lane: 0,
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{token:?}: {e}");
        let e = c
            .carbon_sums(with_token(
                CarbonRequest {
                    run_id: "r".into(),
                    tile_ids: vec![],
                    lane: 0,
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let chunk = TileChunk {
            part: Some(tile_chunk::Part::Header(TileHeader {
                run_id: "r".into(),
                spec: Some(TileSpec::default()),
                layers: vec![],
            })),
        };
        let e = c
            .load_tile(with_token(tokio_stream::iter(vec![chunk]), token))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }
    // with the token the same call reaches the service (which has no such run)
    let e = c
        .drop_tiles(with_token(
            DropTilesRequest {
                run_id: "r".into(),
                tile_ids: vec![],
            },
            Some(TEST_TOKEN),
        ))
        .await
        .map(|r| r.into_inner().dropped);
    assert_eq!(e.unwrap(), 0);
    let e = c
        .exact_keys(with_token(
            ExactKeysRequest {
                run_id: "r".into(),
                tile_ids: vec![0],
                iteration: 0,
                bucket: 0,
                classes: vec![0],
                lane: 0,
            },
            Some(TEST_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e}");
}

#[test]
fn a_run_with_a_wrong_token_stops_at_the_first_refusal_naming_the_worker_and_the_call() {
    // two workers: a refusal is an answer any worker gives, so the run must not drop
    // them one after the other and end with "all workers lost"
    let (a, b) = (start_worker(&[]), start_worker(&[]));
    let dir = tempfile::tempdir().unwrap();
    let list = format!("{},{}", a.addr, b.addr);
    let out = flus_e2e::flus_watch(
        &[
            "run",
            "examples/bencat/study.toml",
            "--no-validation",
            "--scenario",
            "urbanized",
            "--out",
            dir.path().to_str().unwrap(),
            "--workers",
            &list,
        ],
        &[("FLUS_TOKEN", "not-the-cluster-token-0123456789")],
        std::time::Duration::from_secs(300),
        |_, _| {},
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    // the first call of a run is the scenarios' network's training job
    assert!(
        out.stderr.contains("UNAUTHENTICATED") && out.stderr.contains("TrainAnn"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("resuming cannot cure this"),
        "{}",
        out.stderr
    );
    // stopped at the refusal: no worker was dropped for it
    assert!(!out.stderr.contains("worker lost"), "{}", out.stderr);
}
