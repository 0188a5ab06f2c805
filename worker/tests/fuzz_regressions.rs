//! Regression tests of the `handlers` fuzz target: every input kept in
//! `fuzz/regressions/handlers/` (inputs that made a handler panic before the fix) runs
//! through the same function without a panic (an INTERNAL status counts as one), and the seed of the fuzz corpus is a
//! well-formed message sequence that loads one tile and steps it.

use std::path::PathBuf;

use flus_proto::v1::*;
use flus_worker::fuzz_input::{encode, run_messages};
use prost::Message;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A 4 x 4 tile of 2 classes (halo 1) with suitability, one CA step, its commit with
/// open thresholds and the carbon counts.
fn valid_sequence() -> Vec<u8> {
    sequence(3)
}

/// [`valid_sequence`] with an N x N neighbourhood in the CA step.
fn sequence(neighbourhood: u32) -> Vec<u8> {
    let spec = TileSpec {
        tile_id: 3,
        x0: 0,
        y0: 0,
        width: 4,
        height: 4,
        halo: 1,
        grid_width: 4,
        grid_height: 4,
        classes: 2,
    };
    // class window 6 x 6: the ring outside the grid is invalid (255)
    let mut classes = vec![255u8; 36];
    for y in 0..4 {
        for x in 0..4 {
            classes[(y + 1) * 6 + x + 1] = ((x + y) % 2) as u8;
        }
    }
    let suit: Vec<u8> = (0..32).flat_map(|_| 0.5f32.to_le_bytes()).collect();
    let header = TileChunk {
        part: Some(tile_chunk::Part::Header(TileHeader {
            run_id: "r".into(),
            spec: Some(spec),
            layers: vec![
                LayerInfo {
                    name: "classes".into(),
                    kind: LayerKind::Classes as i32,
                    bytes: 36,
                },
                LayerInfo {
                    name: "suitability".into(),
                    kind: LayerKind::Suitability as i32,
                    bytes: suit.len() as u64,
                },
            ],
        })),
    };
    let chunk = |layer: u32, data: Vec<u8>| TileChunk {
        part: Some(tile_chunk::Part::Chunk(LayerChunk {
            layer,
            offset: 0,
            data,
        })),
    };
    let propose = ProposeRequest {
        run_id: "r".into(),
        tile_ids: vec![3],
        params: Some(StepParams {
            iteration: 0,
            seed: 7,
            stream: 0,
            neighbourhood,
            weights: vec![1.0, 1.0],
            cost: vec![1.0; 4],
            inertia: vec![1.0, 1.0],
            closed_in: vec![false; 2],
            closed_out: vec![false; 2],
            closed_pairs: vec![false; 4],
            transitions: false,
            ..Default::default()
        }),
        halo_changes: None,
        lane: 0,
    };
    let open = Threshold {
        key: 0,
        cell: 0,
        open: true,
    };
    let commit = CommitRequest {
        run_id: "r".into(),
        tile_ids: vec![3],
        iteration: 0,
        t_in: vec![open; 2],
        t_out: vec![open; 2],
        t_pair: Vec::new(),
        lane: 0,
    };
    let carbon = CarbonRequest {
        run_id: "r".into(),
        tile_ids: vec![3],
        lane: 0,
    };
    encode(&[
        (0, header.encode_to_vec()),
        (0, chunk(0, classes).encode_to_vec()),
        (0, chunk(1, suit).encode_to_vec()),
        (1, Vec::new()),
        (2, propose.encode_to_vec()),
        (4, commit.encode_to_vec()),
        (5, carbon.encode_to_vec()),
    ])
}

#[test]
fn the_seed_sequence_loads_one_tile_and_keeps_it() {
    assert_eq!(run_messages(&valid_sequence()), 1);
    let seed = repo().join("fuzz/seeds/handlers/valid-step");
    assert_eq!(
        std::fs::read(&seed).unwrap(),
        valid_sequence(),
        "{} is stale: run the ignored test write_the_handlers_seed",
        seed.display()
    );
}

/// Writes the seed of the handlers fuzz corpus (`cargo test -- --ignored`).
#[test]
#[ignore]
fn write_the_handlers_seed() {
    let dir = repo().join("fuzz/seeds/handlers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("valid-step"), valid_sequence()).unwrap();
}

/// A tile header with `layers` byte sizes and placement `x0`, `width`.
fn header(x0: u32, width: u32, layers: &[u64]) -> Vec<u8> {
    let h = TileChunk {
        part: Some(tile_chunk::Part::Header(TileHeader {
            run_id: "r".into(),
            spec: Some(TileSpec {
                tile_id: 1,
                x0,
                y0: 0,
                width,
                height: 1,
                halo: 1,
                grid_width: 4,
                grid_height: 4,
                classes: 2,
            }),
            layers: layers
                .iter()
                .map(|&bytes| LayerInfo {
                    name: "l".into(),
                    kind: LayerKind::Classes as i32,
                    bytes,
                })
                .collect(),
        })),
    };
    encode(&[(0, h.encode_to_vec()), (1, Vec::new())])
}

#[test]
fn layer_sizes_that_overflow_when_added_are_refused() {
    // u64::MAX + 2 wrapped to 1 byte and passed the tile limit, then the worker tried
    // to allocate u64::MAX bytes
    assert_eq!(run_messages(&header(0, 1, &[u64::MAX, 2])), 0);
}

#[test]
fn a_placement_that_overflows_when_added_is_refused() {
    // x0 + width wrapped to 1 <= grid width 4 and passed the placement check
    assert_eq!(run_messages(&header(u32::MAX, 2, &[9])), 0);
}

#[test]
fn every_kept_fuzz_input_is_handled() {
    let mut n = 0;
    for sub in ["fuzz/seeds/handlers", "fuzz/regressions/handlers"] {
        let Ok(rd) = std::fs::read_dir(repo().join(sub)) else {
            continue;
        };
        for e in rd {
            run_messages(&std::fs::read(e.unwrap().path()).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no kept fuzz inputs");
}

#[test]
fn a_neighbourhood_wider_than_the_tile_halo_is_refused_without_a_panic() {
    // Found by the handlers target with debug assertions: a 5 x 5 neighbourhood on a
    // tile loaded with halo 1 read past the class window (slice index 102 of 36) and the
    // panic poisoned the tile store, so the worker then held nothing (count 0).
    assert_eq!(run_messages(&sequence(5)), 1);
    assert_eq!(run_messages(&sequence(255)), 1);
}
