//! Tests of the parent module.

use super::*;

/// A 2 x 2 tile of 2 classes (halo 0) with one driver; cell 3 is invalid.
fn tile_messages() -> Vec<Result<TileChunk, Status>> {
    let spec = TileSpec {
        tile_id: 7,
        x0: 0,
        y0: 0,
        width: 2,
        height: 2,
        halo: 0,
        grid_width: 2,
        grid_height: 2,
        classes: 2,
    };
    let classes = vec![0u8, 1, 1, ca::INVALID];
    let driver: Vec<u8> = [1f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let layers = [(LayerKind::Classes, classes), (LayerKind::Driver, driver)];
    let mut msgs = vec![Ok(TileChunk {
        part: Some(tile_chunk::Part::Header(TileHeader {
            run_id: "r".into(),
            spec: Some(spec),
            layers: layers
                .iter()
                .map(|(kind, b)| LayerInfo {
                    name: format!("{kind:?}"),
                    kind: *kind as i32,
                    bytes: b.len() as u64,
                })
                .collect(),
        })),
    })];
    for (i, (_, b)) in layers.into_iter().enumerate() {
        msgs.push(Ok(TileChunk {
            part: Some(tile_chunk::Part::Chunk(LayerChunk {
                layer: i as u32,
                offset: 0,
                data: b,
            })),
        }));
    }
    msgs
}

/// One driver, one hidden unit, two classes, every weight 0: each class 1/2.
fn network() -> Vec<u8> {
    let net = flus_shared::ann::Network::from_weights(
        vec!["d".into()],
        vec!["a".into(), "b".into()],
        flus_shared::ann::Normalisation {
            min: vec![1.0],
            max: vec![4.0],
        },
        &[vec![0.0]],
        &[0.0],
        &[vec![0.0], vec![0.0]],
        &[0.0, 0.0],
    )
    .unwrap();
    serde_json::to_vec(&net).unwrap()
}

#[tokio::test]
async fn a_tile_drops_its_drivers_after_its_suitability_and_refuses_a_second_one() {
    let svc = WorkerService::new(
        Limits {
            max_tile_bytes: 1 << 20,
            max_tiles: 4,
        },
        Arc::new(tokio::sync::Notify::new()),
        None,
    );
    svc.receive_tile(tokio_stream::iter(tile_messages()))
        .await
        .unwrap();
    let req = || {
        Request::new(SuitabilityRequest {
            run_id: "r".into(),
            tile_ids: vec![7],
            network: network(),
        })
    };
    let reply = svc.suitability(req()).await.unwrap().into_inner();
    // zero weights: softmax of (0, 0) = (1/2, 1/2) in every valid cell
    assert_eq!(reply.tiles.len(), 1);
    assert_eq!(reply.tiles[0].max, vec![0.5, 0.5]);
    {
        let store = svc.store();
        let store = store.lock().unwrap();
        let t = &store.runs["r"][&7];
        assert!(t.drivers.is_empty() && t.drivers_dropped);
        // cell 3 is invalid: 0 for both classes; 0.5 is kept in u16 fixed point as
        // round(0.5 * 65535) = round(32767.5) = 32768
        let h = 32768u16;
        assert_eq!(t.suitability, vec![h, h, h, h, h, h, 0, 0]);
    }
    let e = svc.suitability(req()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("tile 7"), "{}", e.message());
    // loaded again, the tile has its drivers back
    svc.receive_tile(tokio_stream::iter(tile_messages()))
        .await
        .unwrap();
    assert!(svc.suitability(req()).await.is_ok());
}

fn service() -> WorkerService {
    WorkerService::new(
        Limits {
            max_tile_bytes: 1 << 20,
            max_tiles: 4,
        },
        Arc::new(tokio::sync::Notify::new()),
        None,
    )
}

#[tokio::test]
async fn a_reset_restores_the_start_map_then_applies_the_changes_in_the_window() {
    let svc = service();
    svc.receive_tile(tokio_stream::iter(tile_messages()))
        .await
        .unwrap();
    // a run changes cell 0 to class 1
    svc.store()
        .lock()
        .unwrap()
        .runs
        .get_mut("r")
        .unwrap()
        .get_mut(&7)
        .unwrap()
        .apply(0, 0, 1)
        .unwrap();
    // the next run starts from a checkpoint that differs from the start map in
    // cell 2 (class 0) only; cell 9 lies off this 2 x 2 grid's tile and is ignored
    let reply = svc
        .reset_classes(Request::new(ResetRequest {
            run_id: "r".into(),
            tile_ids: vec![7],
            changes: Some(CellChanges {
                cells: vec![2, 9],
                classes: vec![0, 0],
            }),
            lane: 0,
            start_changes: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.tiles, 1);
    {
        let store = svc.store();
        let store = store.lock().unwrap();
        // loaded as [0, 1, 1, INVALID]: cell 0 back to 0, cell 2 now 0
        assert_eq!(store.runs["r"][&7].main.classes, vec![0, 1, 0, ca::INVALID]);
        assert_eq!(store.runs["r"][&7].start, vec![0, 1, 1, ca::INVALID]);
        // the run starts from the session's map: no start window of its own
        assert!(store.runs["r"][&7].main.start.is_empty());
    }
    // transition mode, a later stage: its start map has cell 1 at 0; resumed from a
    // checkpoint where cell 2 is 0 too. The lane's start window takes cell 1 only.
    let with_start = |start_changes: Option<CellChanges>| ResetRequest {
        run_id: "r".into(),
        tile_ids: vec![7],
        changes: Some(CellChanges {
            cells: vec![1, 2],
            classes: vec![0, 0],
        }),
        lane: 0,
        start_changes,
    };
    svc.reset_classes(Request::new(with_start(Some(CellChanges {
        cells: vec![1],
        classes: vec![0],
    }))))
    .await
    .unwrap();
    {
        let store = svc.store();
        let store = store.lock().unwrap();
        let t = &store.runs["r"][&7];
        assert_eq!(t.main.classes, vec![0, 0, 0, ca::INVALID]);
        assert_eq!(t.main.start, vec![0, 0, 1, ca::INVALID]);
        assert_eq!(t.start, vec![0, 1, 1, ca::INVALID], "the session's is kept");
    }
    // the next run without a start of its own forgets it
    svc.reset_classes(Request::new(with_start(None)))
        .await
        .unwrap();
    let store = svc.store();
    let store = store.lock().unwrap();
    assert!(store.runs["r"][&7].main.start.is_empty());
}

#[tokio::test]
async fn lanes_are_separate_class_windows_of_one_tile() {
    let svc = service();
    svc.receive_tile(tokio_stream::iter(tile_messages()))
        .await
        .unwrap();
    let reset = |lane: u32, cells: Vec<u64>, classes: Vec<u8>| ResetRequest {
        run_id: "r".into(),
        tile_ids: vec![7],
        changes: Some(CellChanges { cells, classes }),
        lane,
        start_changes: None,
    };
    // lane 2 is made from the start map [0, 1, 1, INVALID] with cell 0 set to 1
    svc.reset_classes(Request::new(reset(2, vec![0], vec![1])))
        .await
        .unwrap();
    // lane 0 (the loaded window) gets cell 1 set to 0
    svc.reset_classes(Request::new(reset(0, vec![1], vec![0])))
        .await
        .unwrap();
    {
        let store = svc.store();
        let store = store.lock().unwrap();
        let t = &store.runs["r"][&7];
        assert_eq!(t.main.classes, vec![0, 0, 1, ca::INVALID]);
        assert_eq!(t.lanes[&2].classes, vec![1, 1, 1, ca::INVALID]);
        assert_eq!(t.start, vec![0, 1, 1, ca::INVALID]);
    }
    // carbon counts per lane: lane 2 holds three cells of class 1, lane 0 one
    let counts = |lane: u32| CarbonRequest {
        run_id: "r".into(),
        tile_ids: vec![7],
        lane,
    };
    let two = svc.carbon_sums(Request::new(counts(2))).await.unwrap();
    assert_eq!(two.into_inner().counts, vec![0, 3]);
    let zero = svc.carbon_sums(Request::new(counts(0))).await.unwrap();
    assert_eq!(zero.into_inner().counts, vec![2, 1]);
    // a lane no ResetClasses made is refused, naming it
    let e = svc.carbon_sums(Request::new(counts(5))).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("lane 5"), "{}", e.message());
    // and so is a lane beyond the bound
    let e = svc
        .reset_classes(Request::new(reset(crate::tiles::MAX_LANES, vec![], vec![])))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn suitability_rows_are_the_fixed_point_values_of_the_asked_rows_only() {
    let svc = service();
    svc.receive_tile(tokio_stream::iter(tile_messages()))
        .await
        .unwrap();
    let rows = |row0, rows| {
        Request::new(SuitabilityRowsRequest {
            run_id: "r".into(),
            tile_id: 7,
            row0,
            rows,
        })
    };
    // before its suitability: refused, naming the tile
    let e = svc.suitability_rows(rows(0, 1)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("tile 7"), "{}", e.message());
    svc.suitability(Request::new(SuitabilityRequest {
        run_id: "r".into(),
        tile_ids: vec![7],
        network: network(),
    }))
    .await
    .unwrap();
    // row 1 = cells 2 (valid: 1/2 each) and 3 (invalid: 0), 2 classes, u16 LE;
    // round(0.5 * 65535) = 32768 = 0x8000
    let r = svc.suitability_rows(rows(1, 1)).await.unwrap().into_inner();
    assert_eq!((r.tile_id, r.row0, r.rows), (7, 1, 1));
    assert_eq!(r.values, vec![0x00, 0x80, 0x00, 0x80, 0, 0, 0, 0]);
    let e = svc.suitability_rows(rows(1, 2)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::OutOfRange);
}
