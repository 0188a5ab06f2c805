//! The tiles a worker holds: static layers and, per run of the session under way
//! ("lane"), the current class window with its halo plus the proposals of the last CA
//! step (kept for ExactKeys and Commit).

use std::collections::BTreeMap;

use flus_proto::v1::{LayerFile, LayerKind, TileSpec};
use flus_shared::ca::{suitability_to_fixed, TileProposals, TileRect, INVALID};
use tonic::Status;

use crate::data_root::DataRoot;

/// Most lanes a tile holds at once (lane ids 0 .. MAX_LANES): a bound on the memory a
/// coordinator can make a worker spend, one class window per lane.
pub const MAX_LANES: u32 = 256;

/// The state of one run on a tile: its class window and its last step.
#[derive(Clone, Default)]
pub struct Lane {
    /// Class indices over the core grown by the halo on every side, (w+2r) x (h+2r),
    /// [`INVALID`] off the grid.
    pub classes: Vec<u8>,
    /// Proposals of the last step.
    pub proposals: TileProposals,
    /// Iteration of `proposals`.
    pub step_iteration: Option<u32>,
    /// The run's start map over the window when it is not the session's (a later stage
    /// of staged years in transition mode, where a cell changes at most once per run);
    /// empty: the session's start map ([`Tile::start`]).
    pub start: Vec<u8>,
}

/// One tile of a run.
pub struct Tile {
    /// Placement.
    pub spec: TileSpec,
    /// Lane 0: the class window loaded with the tile.
    pub main: Lane,
    /// The other lanes, made by [`Tile::reset`].
    pub lanes: BTreeMap<u32, Lane>,
    /// The session's start map over the same window, restored by [`Tile::reset`].
    pub start: Vec<u8>,
    /// Restricted cells of the core.
    pub restricted: Vec<bool>,
    /// Cell-major suitability of the core (K per cell), u16 fixed point
    /// (`flus_shared::ca::suitability_to_fixed`, converted once on receipt).
    pub suitability: Vec<u16>,
    /// Drivers over the core (for ANN inference on the worker); emptied once the
    /// tile's suitability is computed from them.
    pub drivers: Vec<Vec<f32>>,
    /// The drivers were dropped after the suitability was computed: a second
    /// Suitability call needs the tile loaded again.
    pub drivers_dropped: bool,
    /// Zone codes over the core (empty: one zone 0).
    pub zones: Vec<i32>,
}

impl Tile {
    /// Halo width.
    pub fn halo(&self) -> usize {
        self.spec.halo as usize
    }

    /// Stride of the class window.
    pub fn stride(&self) -> usize {
        self.spec.width as usize + 2 * self.halo()
    }

    /// Core cells.
    pub fn core_cells(&self) -> usize {
        self.spec.width as usize * self.spec.height as usize
    }

    /// Placement for the CA step.
    pub fn rect(&self) -> TileRect {
        TileRect {
            x0: self.spec.x0 as usize,
            y0: self.spec.y0 as usize,
            width: self.spec.width as usize,
            height: self.spec.height as usize,
            grid_width: self.spec.grid_width as usize,
        }
    }

    /// Lane `lane`, refused (FAILED_PRECONDITION) when no ResetClasses made it.
    #[allow(clippy::result_large_err)]
    pub fn lane(&self, lane: u32) -> Result<&Lane, Status> {
        match lane {
            0 => Ok(&self.main),
            l => self
                .lanes
                .get(&l)
                .ok_or_else(|| no_lane(self.spec.tile_id, l)),
        }
    }

    /// [`Tile::lane`], mutable.
    #[allow(clippy::result_large_err)]
    pub fn lane_mut(&mut self, lane: u32) -> Result<&mut Lane, Status> {
        match lane {
            0 => Ok(&mut self.main),
            l => self
                .lanes
                .get_mut(&l)
                .ok_or_else(|| no_lane(self.spec.tile_id, l)),
        }
    }

    /// Sets the class of global cell `cell` in lane `lane` when it lies in the window
    /// (core or halo).
    #[allow(clippy::result_large_err)]
    pub fn apply(&mut self, lane: u32, cell: u64, class: u8) -> Result<(), Status> {
        let (rect, r) = (self.rect(), self.halo());
        let l = self.lane_mut(lane)?;
        flus_shared::ca::apply_in_window(&mut l.classes, &rect, r, &[(cell, class)]);
        Ok(())
    }

    /// Restores the start map in lane `lane` (made when missing) and forgets its last
    /// step: the start of a new run of the session in that lane. `run_start`: the cells
    /// where the run's start map differs from the session's (transition mode), kept as
    /// the lane's own start window; empty: the run starts from the session's map.
    #[allow(clippy::result_large_err)]
    pub fn reset(&mut self, lane: u32, run_start: &[(u64, u8)]) -> Result<(), Status> {
        if lane >= MAX_LANES {
            return Err(Status::invalid_argument(format!(
                "lane {lane} of tile {}: a tile holds lanes 0..{MAX_LANES}",
                self.spec.tile_id
            )));
        }
        let (rect, r) = (self.rect(), self.halo());
        let l = if lane == 0 {
            &mut self.main
        } else {
            self.lanes.entry(lane).or_default()
        };
        l.classes.clear();
        l.classes.extend_from_slice(&self.start);
        l.proposals = TileProposals::default();
        l.step_iteration = None;
        l.start.clear();
        if !run_start.is_empty() {
            l.start.extend_from_slice(&self.start);
            flus_shared::ca::apply_in_window(&mut l.start, &rect, r, run_start);
        }
        Ok(())
    }

    /// Current class of every core cell of lane `lane`, row-major.
    #[allow(clippy::result_large_err)]
    pub fn core_classes(&self, lane: u32) -> Result<impl Iterator<Item = u8> + '_, Status> {
        let r = self.halo();
        let s = self.stride();
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let classes = &self.lane(lane)?.classes;
        Ok((0..h).flat_map(move |y| {
            classes[(y + r) * s + r..(y + r) * s + r + w]
                .iter()
                .copied()
        }))
    }
}

/// A tile being received: header read, layers filling.
pub struct TileBuilder {
    run_id: String,
    spec: TileSpec,
    kinds: Vec<LayerKind>,
    buffers: Vec<Vec<u8>>,
    files: Vec<LayerFile>,
}

fn no_lane(tile: u32, lane: u32) -> Status {
    Status::failed_precondition(format!(
        "tile {tile} has no lane {lane}: a lane is made by ResetClasses"
    ))
}

fn bad(msg: String) -> Status {
    Status::invalid_argument(msg)
}

impl TileBuilder {
    /// Starts a tile from its header; checks sizes against `max_bytes`.
    #[allow(clippy::result_large_err)]
    pub fn new(header: flus_proto::v1::TileHeader, max_bytes: u64) -> Result<Self, Status> {
        let spec = header
            .spec
            .ok_or_else(|| bad("tile header without spec".into()))?;
        if spec.width == 0 || spec.height == 0 || spec.classes == 0 || spec.classes > 254 {
            return Err(bad(format!(
                "tile {}: {} x {} cells and {} classes, expected a non-empty tile and 1..=254 classes",
                spec.tile_id, spec.width, spec.height, spec.classes
            )));
        }
        if spec.x0 as u64 + spec.width as u64 > spec.grid_width as u64
            || spec.y0 as u64 + spec.height as u64 > spec.grid_height as u64
        {
            return Err(bad(format!("tile {} lies outside the grid", spec.tile_id)));
        }
        // saturating: layer sizes near u64::MAX must not wrap below the limit
        let total: u64 = header
            .layers
            .iter()
            .fold(0u64, |t, l| t.saturating_add(l.bytes));
        if total > max_bytes {
            return Err(Status::resource_exhausted(format!(
                "tile {}: {total} bytes, this worker accepts at most {max_bytes} per tile",
                spec.tile_id
            )));
        }
        let mut kinds = Vec::new();
        let mut buffers = Vec::new();
        for l in &header.layers {
            let kind = LayerKind::try_from(l.kind)
                .map_err(|_| bad(format!("unknown layer kind {}", l.kind)))?;
            kinds.push(kind);
            buffers.push(vec![0u8; l.bytes as usize]);
        }
        Ok(Self {
            run_id: header.run_id,
            spec,
            kinds,
            buffers,
            files: Vec::new(),
        })
    }

    /// Adds layers the worker reads itself (resolved under the data root by `build`).
    #[allow(clippy::result_large_err)]
    pub fn add_files(&mut self, files: Vec<LayerFile>, max_bytes: u64) -> Result<(), Status> {
        let core = self.spec.width as u64 * self.spec.height as u64;
        let streamed: u64 = self.buffers.iter().map(|b| b.len() as u64).sum();
        let mut total = streamed;
        for f in &files {
            let kind = LayerKind::try_from(f.kind)
                .map_err(|_| bad(format!("unknown layer kind {}", f.kind)))?;
            total += match kind {
                LayerKind::Restricted => core,
                LayerKind::Driver | LayerKind::Zones => core * 4,
                _ => {
                    return Err(bad(format!(
                    "file layer {:?} of kind {kind:?}; files hold restrictions, drivers or zones",
                    f.path
                )))
                }
            };
        }
        if total > max_bytes {
            return Err(Status::resource_exhausted(format!(
                "tile {}: {total} bytes, this worker accepts at most {max_bytes} per tile",
                self.spec.tile_id
            )));
        }
        self.files.extend(files);
        Ok(())
    }

    /// Copies a chunk into its layer.
    #[allow(clippy::result_large_err)]
    pub fn add(&mut self, chunk: flus_proto::v1::LayerChunk) -> Result<(), Status> {
        let buf = self.buffers.get_mut(chunk.layer as usize).ok_or_else(|| {
            bad(format!(
                "chunk for layer {} of a tile with {} layers",
                chunk.layer,
                self.kinds.len()
            ))
        })?;
        let start = chunk.offset as usize;
        let end = start
            .checked_add(chunk.data.len())
            .filter(|&e| e <= buf.len())
            .ok_or_else(|| {
                bad(format!(
                    "chunk at {start} of {} bytes overruns its layer of {} bytes",
                    chunk.data.len(),
                    buf.len()
                ))
            })?;
        buf[start..end].copy_from_slice(&chunk.data);
        Ok(())
    }

    /// Finishes the tile: checks every layer's size; reads the file layers (their core
    /// window) under `root` (a tile with file layers and no root is refused).
    #[allow(clippy::result_large_err)]
    pub fn build(self, root: Option<&DataRoot>) -> Result<(String, Tile), Status> {
        let s = &self.spec;
        let (w, h, r, k) = (
            s.width as usize,
            s.height as usize,
            s.halo as usize,
            s.classes as usize,
        );
        let core = w * h;
        let window = (w + 2 * r) * (h + 2 * r);
        let mut tile = Tile {
            spec: *s,
            main: Lane::default(),
            lanes: BTreeMap::new(),
            start: Vec::new(),
            restricted: vec![false; core],
            suitability: Vec::new(),
            drivers: Vec::new(),
            drivers_dropped: false,
            zones: Vec::new(),
        };
        let expect = |name: &str, got: usize, want: usize| -> Result<(), Status> {
            if got != want {
                Err(bad(format!(
                    "tile {}: {name} layer has {got} bytes, expected {want}",
                    s.tile_id
                )))
            } else {
                Ok(())
            }
        };
        for (kind, buf) in self.kinds.into_iter().zip(self.buffers) {
            match kind {
                LayerKind::Classes | LayerKind::StartClasses => {
                    let name = if kind == LayerKind::Classes {
                        "classes"
                    } else {
                        "start classes"
                    };
                    expect(name, buf.len(), window)?;
                    if let Some(v) = buf.iter().find(|&&v| v as usize >= k && v != INVALID) {
                        return Err(bad(format!(
                            "tile {}: class index {v} with {k} classes in its {name} layer",
                            s.tile_id
                        )));
                    }
                    if kind == LayerKind::Classes {
                        tile.main.classes = buf;
                    } else {
                        tile.start = buf;
                    }
                }
                LayerKind::Restricted => {
                    expect("restricted", buf.len(), core)?;
                    tile.restricted = buf.iter().map(|&b| b != 0).collect();
                }
                LayerKind::Suitability => {
                    expect("suitability", buf.len(), core * k * 4)?;
                    tile.suitability = buf
                        .chunks_exact(4)
                        .map(|c| suitability_to_fixed(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                        .collect();
                }
                LayerKind::Driver => {
                    expect("driver", buf.len(), core * 4)?;
                    tile.drivers.push(f32s(&buf));
                }
                LayerKind::Zones => {
                    expect("zones", buf.len(), core * 4)?;
                    tile.zones = buf
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                }
                LayerKind::Unspecified => return Err(bad("layer of unspecified kind".into())),
            }
        }
        if tile.main.classes.is_empty() {
            return Err(bad(format!("tile {}: no class layer", s.tile_id)));
        }
        if tile.start.is_empty() {
            tile.start = tile.main.classes.clone();
        }
        if !self.files.is_empty() {
            let root = root.ok_or_else(|| {
                Status::failed_precondition(
                    "this worker has no --data-root: it reads no files; stream the tile's layers instead",
                )
            })?;
            read_files(&mut tile, &self.files, root)?;
        }
        Ok((self.run_id, tile))
    }
}

/// Reads the core window of every file layer into `tile`, with the coordinator's rules
/// (`flus_shared::stack::load`): drivers as f32 of the f64 values, zones as i32 of
/// them, a cell restricted where any restriction layer has data and the value 0.
#[allow(clippy::result_large_err)]
fn read_files(tile: &mut Tile, files: &[LayerFile], root: &DataRoot) -> Result<(), Status> {
    let s = tile.spec;
    let (x0, y0, w, h) = (
        s.x0 as usize,
        s.y0 as usize,
        s.width as usize,
        s.height as usize,
    );
    // every path is checked before any file is opened
    let paths = files
        .iter()
        .map(|f| root.resolve(&f.path))
        .collect::<Result<Vec<_>, Status>>()?;
    for (f, path) in files.iter().zip(&paths) {
        let info = flus_shared::raster::info(path)
            .map_err(|e| Status::invalid_argument(format!("{:?}: {e}", f.path)))?;
        if info.driver == "VRT" {
            // a VRT names other files, which may lie outside the data root
            return Err(Status::permission_denied(format!(
                "path {:?} refused: a VRT may read files outside the data root",
                f.path
            )));
        }
        if (info.grid.width, info.grid.height) != (s.grid_width as usize, s.grid_height as usize) {
            return Err(bad(format!(
                "{:?} has {} x {} cells, the run's grid {} x {}",
                f.path, info.grid.width, info.grid.height, s.grid_width, s.grid_height
            )));
        }
        let band = f.band.max(1) as usize;
        let v = flus_shared::raster::read_window::<f64>(path, band, x0, y0, w, h)
            .map_err(|e| Status::invalid_argument(format!("{:?}: {e}", f.path)))?;
        match LayerKind::try_from(f.kind) {
            Ok(LayerKind::Driver) => tile.drivers.push(v.iter().map(|&x| x as f32).collect()),
            Ok(LayerKind::Zones) => tile.zones = v.iter().map(|&x| x as i32).collect(),
            Ok(LayerKind::Restricted) => {
                for (r, &x) in tile.restricted.iter_mut().zip(&v) {
                    let data = !x.is_nan() && f.nodata.is_none_or(|nd| x != nd);
                    if data && x == 0.0 {
                        *r = true;
                    }
                }
            }
            _ => return Err(bad(format!("file layer {:?}: unsupported kind", f.path))),
        }
    }
    Ok(())
}

fn f32s(buf: &[u8]) -> Vec<f32> {
    buf.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Every tile the worker holds, by (run, tile id); ordered maps keep every reply in
/// tile order.
#[derive(Default)]
pub struct TileStore {
    /// Tiles by run and id.
    pub runs: BTreeMap<String, BTreeMap<u32, Tile>>,
}

impl TileStore {
    /// Number of tiles held.
    pub fn count(&self) -> usize {
        self.runs.values().map(|r| r.len()).sum()
    }
}
