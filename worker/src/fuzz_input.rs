//! Feeds a byte string to the Worker handlers as a sequence of protobuf messages, with
//! no network: the fuzz target `handlers` and its regression tests call
//! [`run_messages`]. Errors are the handlers' business; a panic is a finding.
//!
//! Format: repeated `[op: u8][len: u16 LE][len bytes of a message]`; `op % 8` picks
//! the message: 0 TileChunk (queued), 1 LoadTile of the queued chunks, 2 Propose,
//! 3 ExactKeys, 4 Commit, 5 CarbonSums, 6 DropTiles, 7 Suitability, or with
//! `(op >> 3) & 3` = 2 ResetClasses and = 3 SuitabilityRows. Every run id is set to "r"
//! so that messages meet the tiles loaded before them.

use std::sync::Arc;

use flus_proto::v1::worker_server::Worker;
use flus_proto::v1::*;
use prost::Message;
use tonic::Request;

use crate::service::{Limits, WorkerService};

/// Limits of the fuzzed worker: small, so that a fuzz input cannot ask for gigabytes.
pub const FUZZ_LIMITS: Limits = Limits {
    max_tile_bytes: 1 << 20,
    max_tiles: 16,
};

/// Runs the messages encoded in `data` through one fresh worker service; returns the
/// number of tiles it holds at the end.
pub fn run_messages(data: &[u8]) -> usize {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return 0;
    };
    let svc = WorkerService::new(FUZZ_LIMITS, Arc::new(tokio::sync::Notify::new()), None);
    rt.block_on(async {
        let mut queued: Vec<TileChunk> = Vec::new();
        let mut rest = data;
        while rest.len() >= 3 {
            let head = rest[0];
            let op = head % 8;
            let len = (u16::from_le_bytes([rest[1], rest[2]]) as usize).min(rest.len() - 3);
            let msg = &rest[3..3 + len];
            rest = &rest[3 + len..];
            let run = || "r".to_string();
            match op {
                0 => {
                    if let Ok(mut c) = TileChunk::decode(msg) {
                        if let Some(tile_chunk::Part::Header(h)) = &mut c.part {
                            h.run_id = run();
                        }
                        queued.push(c);
                    }
                }
                1 => {
                    let chunks: Vec<_> = queued.drain(..).map(Ok).collect();
                    check(svc.receive_tile(tokio_stream::iter(chunks)).await);
                }
                2 => {
                    if let Ok(mut m) = ProposeRequest::decode(msg) {
                        m.run_id = run();
                        check(svc.propose(Request::new(m)).await);
                    }
                }
                3 => {
                    if let Ok(mut m) = ExactKeysRequest::decode(msg) {
                        m.run_id = run();
                        check(svc.exact_keys(Request::new(m)).await);
                    }
                }
                4 => {
                    if let Ok(mut m) = CommitRequest::decode(msg) {
                        m.run_id = run();
                        check(svc.commit(Request::new(m)).await);
                    }
                }
                5 => {
                    if let Ok(mut m) = CarbonRequest::decode(msg) {
                        m.run_id = run();
                        check(svc.carbon_sums(Request::new(m)).await);
                    }
                }
                6 => {
                    if let Ok(mut m) = DropTilesRequest::decode(msg) {
                        m.run_id = run();
                        check(svc.drop_tiles(Request::new(m)).await);
                    }
                }
                // op 7: Suitability, or by the next bits the session calls
                _ => match (head >> 3) & 3 {
                    2 => {
                        if let Ok(mut m) = ResetRequest::decode(msg) {
                            m.run_id = run();
                            check(svc.reset_classes(Request::new(m)).await);
                        }
                    }
                    3 => {
                        if let Ok(mut m) = SuitabilityRowsRequest::decode(msg) {
                            m.run_id = run();
                            check(svc.suitability_rows(Request::new(m)).await);
                        }
                    }
                    _ => {
                        if let Ok(mut m) = SuitabilityRequest::decode(msg) {
                            m.run_id = run();
                            check(svc.suitability(Request::new(m)).await);
                        }
                    }
                },
            }
        }
    });
    svc.store().lock().map(|s| s.count()).unwrap_or(0)
}

/// Errors are the handlers' business; an INTERNAL status means a handler panicked (the
/// blocking task failed or the tile store is poisoned): a bug, so panic here too.
fn check<T>(r: Result<T, tonic::Status>) {
    if let Err(e) = r {
        assert!(
            e.code() != tonic::Code::Internal,
            "a handler failed internally: {}",
            e.message()
        );
    }
}

/// Encodes messages in the format of [`run_messages`] (for seeds and tests).
pub fn encode(messages: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (op, bytes) in messages {
        out.push(*op);
        out.extend_from_slice(&(bytes.len().min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&bytes[..bytes.len().min(u16::MAX as usize)]);
    }
    out
}
