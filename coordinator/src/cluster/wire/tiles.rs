//! Tiles on the wire: the LoadTile (or LoadTileFiles) stream of a tile cut from the
//! session's layers, and the u16 suitability rows a worker returns (SuitabilityRows),
//! decoded into the f32 values the CA steps on.

use flus_proto::v1::{
    file_tile_chunk, tile_chunk, FileTileChunk, LayerChunk, LayerFile, LayerInfo, LayerKind,
    SuitabilityRowsReply, TileChunk, TileFiles, TileHeader, TileSpec,
};
use flus_shared::ca::{self, TileRect};

use crate::cluster::remote::StaticLayers;

/// Bytes per LoadTile chunk (well under the message limit).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Where a tile lies: its id and rectangle, the halo width, the grid height and the
/// number of classes.
pub(crate) struct TilePlace {
    pub id: u32,
    pub rect: TileRect,
    pub halo: usize,
    pub grid_height: usize,
    pub classes: usize,
}

impl TilePlace {
    /// The tile's spec as sent in its LoadTile header.
    pub(crate) fn spec(&self) -> TileSpec {
        let rc = &self.rect;
        TileSpec {
            tile_id: self.id,
            x0: rc.x0 as u32,
            y0: rc.y0 as u32,
            width: rc.width as u32,
            height: rc.height as u32,
            halo: self.halo as u32,
            grid_width: rc.grid_width as u32,
            grid_height: self.grid_height as u32,
            classes: self.classes as u32,
        }
    }
}

/// The LoadTile messages of the tile at `place` of run `run_id`: its class window (with
/// halo, INVALID off the grid) from the session's start map, then (unless the worker
/// reads them from files, `files`) its restricted cells, suitability or drivers, zones.
pub(crate) fn tile_chunks(
    run_id: &str,
    place: &TilePlace,
    layers: &StaticLayers,
    files: bool,
) -> flus_shared::Result<Vec<TileChunk>> {
    let rc = place.rect;
    let w = rc.grid_width;
    let mut out: Vec<(LayerKind, String, Vec<u8>)> = Vec::new();
    let win = ca::tile_window(layers.start, place.grid_height, &rc, place.halo)?;
    out.push((LayerKind::Classes, "classes".into(), win));
    if files {
        return Ok(chunked(run_id, place.spec(), out));
    }
    let core = |f: &mut dyn FnMut(usize, &mut Vec<u8>)| {
        let mut bytes = Vec::new();
        for y in rc.y0..rc.y0 + rc.height {
            for x in rc.x0..rc.x0 + rc.width {
                f(y * w + x, &mut bytes);
            }
        }
        bytes
    };
    out.push((
        LayerKind::Restricted,
        "restricted".into(),
        core(&mut |i, o| o.push(layers.restricted[i] as u8)),
    ));
    if let Some(s) = layers.suitability {
        let k = place.classes;
        out.push((
            LayerKind::Suitability,
            "suitability".into(),
            core(&mut |i, o| {
                s[i * k..(i + 1) * k]
                    .iter()
                    .for_each(|v| o.extend_from_slice(&v.to_le_bytes()))
            }),
        ));
    } else {
        let mut row = vec![0f32; rc.width];
        for n in 0..layers.drivers.count() {
            let mut bytes = Vec::with_capacity(rc.width * rc.height * 4);
            for y in rc.y0..rc.y0 + rc.height {
                layers.drivers.read(n, y * w + rc.x0, &mut row)?;
                bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
            }
            out.push((LayerKind::Driver, format!("driver{n}"), bytes));
        }
    }
    if let Some(z) = layers.zones {
        out.push((
            LayerKind::Zones,
            "zones".into(),
            core(&mut |i, o| o.extend_from_slice(&z[i].to_le_bytes())),
        ));
    }
    Ok(chunked(run_id, place.spec(), out))
}

/// The LoadTile messages of `layers`: header, then chunks of at most [`CHUNK_BYTES`].
fn chunked(
    run_id: &str,
    spec: TileSpec,
    layers: Vec<(LayerKind, String, Vec<u8>)>,
) -> Vec<TileChunk> {
    let mut msgs = vec![TileChunk {
        part: Some(tile_chunk::Part::Header(TileHeader {
            run_id: run_id.to_string(),
            spec: Some(spec),
            layers: layers
                .iter()
                .map(|(kind, name, b)| LayerInfo {
                    name: name.clone(),
                    kind: *kind as i32,
                    bytes: b.len() as u64,
                })
                .collect(),
        })),
    }];
    for (li, (_, _, bytes)) in layers.into_iter().enumerate() {
        for (ci, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
            msgs.push(TileChunk {
                part: Some(tile_chunk::Part::Chunk(LayerChunk {
                    layer: li as u32,
                    offset: (ci * CHUNK_BYTES) as u64,
                    data: chunk.to_vec(),
                })),
            });
        }
    }
    msgs
}

/// The layer data bytes of `msgs` (headers not counted).
pub(crate) fn data_bytes(msgs: &[TileChunk]) -> u64 {
    msgs.iter()
        .map(|m| match &m.part {
            Some(tile_chunk::Part::Chunk(c)) => c.data.len() as u64,
            _ => 0,
        })
        .sum()
}

/// The LoadTileFiles stream of `msgs`: the header, the files the worker reads the static
/// layers from, then the class chunks.
pub(crate) fn with_files(msgs: Vec<TileChunk>, files: &[LayerFile]) -> Vec<FileTileChunk> {
    let mut v: Vec<FileTileChunk> = Vec::with_capacity(msgs.len() + 1);
    for (i, m) in msgs.into_iter().enumerate() {
        let part = match m.part {
            Some(tile_chunk::Part::Header(h)) => file_tile_chunk::Part::Header(h),
            Some(tile_chunk::Part::Chunk(c)) => file_tile_chunk::Part::Chunk(c),
            None => continue,
        };
        v.push(FileTileChunk { part: Some(part) });
        if i == 0 {
            v.push(FileTileChunk {
                part: Some(file_tile_chunk::Part::Files(TileFiles {
                    layers: files.to_vec(),
                })),
            });
        }
    }
    v
}

/// Writes the suitability of reply `rep` (u16 per cell and class, cell-major) of a tile
/// of `rects` into `bands` (one per class, rows `y0..` of a strip `w` cells wide) as the
/// values the CA steps on ([`ca::fixed_row_into_bands`], a row at a time). A reply that
/// names no tile of `rects`, whose size disagrees with its rows or whose rows lie outside
/// the strip is an error naming them.
pub(crate) fn decode_rows(
    rep: &SuitabilityRowsReply,
    rects: &[TileRect],
    y0: usize,
    w: usize,
    bands: &mut [Vec<f32>],
) -> flus_shared::Result<()> {
    let k = bands.len();
    let rc = rects.get(rep.tile_id as usize).ok_or_else(|| {
        flus_shared::Error::Data(format!(
            "SuitabilityRows: a reply for tile {} of {}",
            rep.tile_id,
            rects.len()
        ))
    })?;
    let row_bytes = rc.width * k * 2;
    if rep.values.len() != rep.rows as usize * row_bytes {
        return Err(flus_shared::Error::Data(format!(
            "SuitabilityRows of tile {}: {} bytes for {} rows of {} cells x {k} classes",
            rep.tile_id,
            rep.values.len(),
            rep.rows,
            rc.width
        )));
    }
    let first = rc.y0 + rep.row0 as usize;
    let strip_rows = bands.first().map_or(0, |b| b.len() / w.max(1));
    if first < y0 || first + rep.rows as usize > y0 + strip_rows {
        return Err(flus_shared::Error::Data(format!(
            "SuitabilityRows of tile {}: rows {first}..{} of the grid, asked for rows \
             within {y0}..{}",
            rep.tile_id,
            first + rep.rows as usize,
            y0 + strip_rows
        )));
    }
    for (i, row) in rep.values.chunks_exact(row_bytes.max(1)).enumerate() {
        let at = (first + i - y0) * w + rc.x0;
        ca::fixed_row_into_bands(row, bands, at)?;
    }
    Ok(())
}
