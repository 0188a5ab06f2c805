//! Every conversion between the coordinator's core types and the wire messages of
//! `flus_proto`: the CA's steps ([`ca`]), tiles and their suitability rows ([`tiles`]),
//! GWR samples, requests and replies ([`gwr`]), training jobs and their results
//! ([`train`]), and the layer files workers read themselves ([`layer_file`]).

pub(crate) mod ca;
pub(crate) mod gwr;
pub(crate) mod tiles;
pub(crate) mod train;

pub use flus_proto::v1::LayerFile;

/// A static layer a worker reads from a file itself (`--shared-data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedLayer {
    /// An ANN driver.
    Driver,
    /// A restriction layer (non-zero: restricted).
    Restricted,
    /// Zone codes.
    Zones,
}

/// The wire form of layer `kind` in file `path` (relative to the workers' data root, or
/// a URL), band `band`, read with `nodata`.
pub fn layer_file(kind: SharedLayer, path: String, band: u32, nodata: Option<f64>) -> LayerFile {
    use flus_proto::v1::LayerKind;
    let kind = match kind {
        SharedLayer::Driver => LayerKind::Driver,
        SharedLayer::Restricted => LayerKind::Restricted,
        SharedLayer::Zones => LayerKind::Zones,
    };
    LayerFile {
        kind: kind as i32,
        path,
        band,
        nodata,
    }
}
