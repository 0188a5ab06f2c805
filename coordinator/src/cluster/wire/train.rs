//! Training jobs on the wire: the TrainAnn / FitTrees stream of a job (header, then the
//! arrays in chunks), and the results the workers return.

use flus_proto::v1::{train_job_chunk, TrainArray, TrainDataChunk, TrainJobChunk, TrainJobHeader};
use flus_shared::ann::{AnnSettings, TrainedAnn, TrainingSet};
use flus_shared::forest::{FittedTree, ForestSettings, Samples};

/// Elements per chunk of a job stream (1 MiB of doubles).
const CHUNK: usize = 1 << 17;

/// The chunks of one array, `per` elements each; `make` puts the values in their field.
fn chunks<T: Clone>(
    array: TrainArray,
    values: &[T],
    per: usize,
    make: impl Fn(Vec<T>) -> TrainDataChunk,
) -> Vec<TrainJobChunk> {
    values
        .chunks(per)
        .enumerate()
        .map(|(i, c)| {
            let mut chunk = make(c.to_vec());
            chunk.array = array as i32;
            chunk.offset = (i * per) as u64;
            TrainJobChunk {
                part: Some(train_job_chunk::Part::Chunk(chunk)),
            }
        })
        .collect()
}

fn header(h: TrainJobHeader) -> TrainJobChunk {
    TrainJobChunk {
        part: Some(train_job_chunk::Part::Header(h)),
    }
}

/// The messages of an ANN job.
pub(crate) fn ann_messages(
    job: &str,
    set: &TrainingSet,
    settings: &AnnSettings,
    seed: u64,
) -> anyhow::Result<Vec<TrainJobChunk>> {
    let mut msgs = vec![header(TrainJobHeader {
        job: job.to_string(),
        meta_json: serde_json::to_vec(set)?,
        settings_json: serde_json::to_vec(settings)?,
        seed,
        train_rows: set.train.cells.len() as u64,
        holdout_rows: set.holdout.cells.len() as u64,
        ..TrainJobHeader::default()
    })];
    let (x, cells, bytes) = (
        |v| TrainDataChunk {
            values: v,
            ..TrainDataChunk::default()
        },
        |v| TrainDataChunk {
            cells: v,
            ..TrainDataChunk::default()
        },
        |v| TrainDataChunk {
            bytes_values: v,
            ..TrainDataChunk::default()
        },
    );
    for (rows, [c, xa, y]) in [
        (
            &set.train,
            [
                TrainArray::TrainCells,
                TrainArray::TrainX,
                TrainArray::TrainClasses,
            ],
        ),
        (
            &set.holdout,
            [
                TrainArray::HoldoutCells,
                TrainArray::HoldoutX,
                TrainArray::HoldoutClasses,
            ],
        ),
    ] {
        msgs.extend(chunks(c, &rows.cells, CHUNK, cells));
        msgs.extend(chunks(xa, &rows.xs, CHUNK, x));
        msgs.extend(chunks(y, &rows.ys, CHUNK * 8, bytes));
    }
    Ok(msgs)
}

/// The messages of a forest job: trees `trees` of forest `key` on `s`.
pub(crate) fn tree_messages(
    job: &str,
    s: &Samples,
    settings: &ForestSettings,
    seed: u64,
    key: u32,
    trees: (usize, usize),
) -> anyhow::Result<Vec<TrainJobChunk>> {
    let mut msgs = vec![header(TrainJobHeader {
        job: job.to_string(),
        meta_json: serde_json::to_vec(settings)?,
        seed,
        train_rows: s.len() as u64,
        features: s.d as u32,
        forest_key: key,
        tree_start: trees.0 as u32,
        tree_end: trees.1 as u32,
        ..TrainJobHeader::default()
    })];
    msgs.extend(chunks(TrainArray::ForestX, s.x, CHUNK * 2, |v| {
        TrainDataChunk {
            floats: v,
            ..TrainDataChunk::default()
        }
    }));
    let y: Vec<u8> = s.y.iter().map(|&b| b as u8).collect();
    msgs.extend(chunks(TrainArray::ForestY, &y, CHUNK * 8, |v| {
        TrainDataChunk {
            bytes_values: v,
            ..TrainDataChunk::default()
        }
    }));
    Ok(msgs)
}

/// The network a worker returned for training job `job`.
pub(crate) fn trained_ann(job: &str, result_json: &[u8]) -> anyhow::Result<TrainedAnn> {
    serde_json::from_slice(result_json)
        .map_err(|e| anyhow::anyhow!("training job {job}: the worker's network: {e}"))
}

/// The trees a worker returned for job `job`, checked to be `expected` of them.
pub(crate) fn fitted_trees(
    job: &str,
    result_json: &[u8],
    expected: usize,
) -> anyhow::Result<Vec<FittedTree>> {
    let trees: Vec<FittedTree> = serde_json::from_slice(result_json)
        .map_err(|e| anyhow::anyhow!("{job}: the worker's trees: {e}"))?;
    anyhow::ensure!(
        trees.len() == expected,
        "{job}: the worker returned {} trees",
        trees.len()
    );
    Ok(trees)
}
