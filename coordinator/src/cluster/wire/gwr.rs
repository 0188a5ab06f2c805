//! GWR on the wire: a sample's GwrLoad stream, the fit requests of a model, and the
//! checks and conversions of the workers' replies.

use std::ops::Range;

use flus_proto::v1::{
    gwr_load_chunk, GwrArray, GwrDataChunk, GwrFitReply, GwrKernel, GwrLoadChunk, GwrSampleHeader,
};
use flus_shared::gwr::{GwrError, GwrModel, Kernel, Weighting};

use crate::cluster::gwr_remote::GwrSample;

/// Doubles per GwrLoad chunk (1 MiB).
const LOAD_CHUNK: usize = 1 << 17;

/// The GwrLoad messages of `sample` under the id `id`.
pub(crate) fn sample_chunks(sample: &GwrSample, id: &str) -> Vec<GwrLoadChunk> {
    let mut msgs = vec![GwrLoadChunk {
        part: Some(gwr_load_chunk::Part::Header(GwrSampleHeader {
            sample_id: id.to_string(),
            points: sample.coords.len() as u64,
            columns: sample.columns.clone(),
            y_columns: sample.y_columns.clone(),
            spherical: sample.spherical,
        })),
    }];
    for (array, values) in [
        (GwrArray::X, sample.x.as_slice()),
        (GwrArray::Y, sample.y.as_slice()),
        (GwrArray::Coords, sample.coords.as_flattened()),
    ] {
        for (k, c) in values.chunks(LOAD_CHUNK).enumerate() {
            msgs.push(GwrLoadChunk {
                part: Some(gwr_load_chunk::Part::Chunk(GwrDataChunk {
                    array: array as i32,
                    offset: (k * LOAD_CHUNK) as u64,
                    values: c.to_vec(),
                })),
            });
        }
    }
    msgs
}

/// The wire form of a kernel weighting.
pub(crate) fn kernel_code(weighting: &Weighting) -> i32 {
    (match weighting.kernel {
        Kernel::Bisquare => GwrKernel::Bisquare,
        Kernel::Gaussian => GwrKernel::Gaussian,
        Kernel::Exponential => GwrKernel::Exponential,
    }) as i32
}

/// The values of `reply` for items `range` (`what`: "points" or "permutations"), checked
/// to be `stride` values per item.
pub(crate) fn values<'r>(
    reply: &'r GwrFitReply,
    range: &Range<usize>,
    stride: usize,
    what: &str,
) -> Result<&'r [f64], GwrError> {
    if reply.stride as usize != stride || reply.values.len() != range.len() * stride {
        return Err(GwrError::Cluster(format!(
            "a worker answered {} values of stride {} for {what} {}..{}, expected stride {stride}",
            reply.values.len(),
            reply.stride,
            range.start,
            range.end
        )));
    }
    Ok(&reply.values)
}

/// The error of a reply that found a singular local fit (`reply.singular`) of `model` at
/// `bandwidth`: the point, its coordinates, the column and the neighbours.
pub(crate) fn singular(reply: &GwrFitReply, model: &GwrModel, bandwidth: f64) -> GwrError {
    let data = model.data();
    let point = reply.singular_point as usize;
    let c = data.coords().get(point).copied().unwrap_or([f64::NAN; 2]);
    GwrError::SingularLocal {
        point,
        x: c[0],
        y: c[1],
        bandwidth,
        column: data
            .names()
            .get(reply.singular_column as usize)
            .cloned()
            .unwrap_or_default(),
        neighbours: reply.singular_neighbours as usize,
    }
}
