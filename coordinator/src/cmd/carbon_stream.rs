//! The pass of `flus carbon` over its maps, a strip of [`STRIP_ROWS`] rows at a time: no
//! layer is ever held whole. Three kinds of threads overlap:
//!
//! - a reader reads the strip's rows of the baseline, alternate and zone rasters;
//! - this thread classifies, counts and computes the per-cell rasters of the strip
//!   ([`CellKernel::block_par`], on all cores);
//! - one writer per output raster appends the strip to its file, GDAL compressing the
//!   blocks of a row of blocks on all cores (DEFLATE level 1).
//!
//! Strips are handed over (not queued) and buffers go back to where they came from, so
//! at most three strips of each input layer and of each output exist at once (about
//! 2.2 KB per column of the map with an alternate map and three outputs). Counts of the strips merge by addition (integers), so totals
//! are those of the whole map whatever the strip height; the rasters are only renamed to
//! their names once every strip is written and `accept` approved the counts (an unknown
//! land-use code, say, leaves no output behind).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use anyhow::Context;
use flus_shared::area::CellAreas;
use flus_shared::carbon::{
    add_row_areas, AreaSums, CarbonCounts, CarbonLayers, CellKernel, CellRaster, CodeLayer,
};
use flus_shared::error::WARP_HINT;
use flus_shared::grid::Grid;
use flus_shared::raster::{self, Encoding, RowReader, StripWriter, STRIP_ROWS};
use flus_shared::zones::Zones;

/// Where the zones of a run come from.
pub enum ZoneInput<'a> {
    /// No zones.
    None,
    /// A raster on the baseline's grid, read a strip at a time.
    Raster(&'a Path),
    /// Zones already on the grid (rasterised polygons).
    Cells(&'a Zones),
}

/// The maps of a run.
pub struct Inputs<'a> {
    /// Baseline land use.
    pub baseline: &'a Path,
    /// Alternate land use.
    pub alternate: Option<&'a Path>,
    /// Zones.
    pub zones: ZoneInput<'a>,
}

/// One per-cell raster to write.
pub struct Output {
    /// What it holds.
    pub raster: CellRaster,
    /// Its file.
    pub path: PathBuf,
    /// Its band description.
    pub band: String,
}

/// The rows of one strip of every input layer.
struct Strip {
    y0: usize,
    baseline: Vec<f64>,
    alternate: Vec<f64>,
    zones: Vec<f64>,
}

/// The readers of the input rasters, opened on the reading thread.
struct Readers {
    baseline: RowReader,
    alternate: Option<RowReader>,
    zones: Option<RowReader>,
}

impl Readers {
    fn open(inputs: &Inputs<'_>) -> anyhow::Result<Self> {
        let baseline = RowReader::open(inputs.baseline, 1)?;
        let grid = &baseline.info().grid;
        let alternate = match inputs.alternate {
            Some(a) => {
                let r = RowReader::open(a, 1)?;
                raster::check_same_grid(inputs.baseline, grid, a, &r.info().grid, 0.01)
                    .map_err(|e| e.with_grid_hint(WARP_HINT))?;
                Some(r)
            }
            None => None,
        };
        let zones = match inputs.zones {
            ZoneInput::Raster(z) => {
                let r = RowReader::open(z, 1)?;
                raster::check_same_grid(inputs.baseline, grid, z, &r.info().grid, 0.01)
                    .map_err(|e| e.with_grid_hint(WARP_HINT))?;
                Some(r)
            }
            _ => None,
        };
        Ok(Self {
            baseline,
            alternate,
            zones,
        })
    }

    /// Reads the strip starting at row `y0` into `s` (its buffers resized).
    fn read(&self, y0: usize, s: &mut Strip) -> anyhow::Result<()> {
        let g = &self.baseline.info().grid;
        let cells = STRIP_ROWS.min(g.height - y0) * g.width;
        s.y0 = y0;
        for (r, buf) in [
            (Some(&self.baseline), &mut s.baseline),
            (self.alternate.as_ref(), &mut s.alternate),
            (self.zones.as_ref(), &mut s.zones),
        ] {
            if let Some(r) = r {
                buf.resize(cells, 0.0);
                r.read(y0, buf)?;
            }
        }
        Ok(())
    }
}

/// Reads every strip in order into buffers coming back on `free` (or new ones).
fn read_strips(
    readers: &Readers,
    height: usize,
    tx: &SyncSender<anyhow::Result<Strip>>,
    free: &Receiver<Strip>,
) {
    for y0 in (0..height).step_by(STRIP_ROWS) {
        let mut s = free.try_recv().unwrap_or(Strip {
            y0,
            baseline: Vec::new(),
            alternate: Vec::new(),
            zones: Vec::new(),
        });
        let r = readers.read(y0, &mut s).map(|_| s);
        let failed = r.is_err();
        if tx.send(r).is_err() || failed {
            return;
        }
    }
}

/// What a writer thread is sent.
enum Rows {
    /// The next strip of rows.
    Strip(Vec<f32>),
    /// Every strip was sent and the run is accepted: rename the file.
    Finish,
}

/// Writes the strips of one output as they come; renames the file on [`Rows::Finish`]
/// (true), removes it when the channel closes without it (false).
fn write_strips(
    out: &Output,
    grid: &Grid,
    rx: &Receiver<Rows>,
    done: &SyncSender<Vec<f32>>,
) -> anyhow::Result<bool> {
    let encoding = Encoding {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        // DEFLATE level 1 (the default of every output): on the 127 M-pixel benchmark
        // 6.4 CPU s against 14.9 at GDAL's default level 6 (docs/kernels.md)
        ..Encoding::default()
    };
    let mut w = StripWriter::<f32>::create_encoded(
        &out.path,
        grid,
        1,
        &super::carbon::carbon_options(&out.band),
        encoding,
    )?;
    while let Ok(msg) = rx.recv() {
        match msg {
            Rows::Strip(rows) => {
                w.write_rows(0, &rows)?;
                let _ = done.try_send(rows);
            }
            Rows::Finish => {
                w.finish()?;
                return Ok(true);
            }
        }
    }
    // the run failed: the writer is dropped, its temporary file removed
    Ok(false)
}

/// Streams `inputs` through `kernel` (made for `outputs`' rasters in order) with the
/// cell areas `areas`, writes `outputs`, and returns the counts of the whole map (with
/// per-row areas, their area sums added strip after strip in row order: the sums of the
/// whole map to the bit). `accept` sees the counts before the outputs are renamed; its
/// error leaves no output.
pub fn run(
    inputs: &Inputs<'_>,
    kernel: &CellKernel,
    areas: &CellAreas,
    outputs: &[Output],
    accept: impl FnOnce(&CarbonCounts) -> anyhow::Result<()>,
) -> anyhow::Result<CarbonCounts> {
    anyhow::ensure!(
        kernel.rasters() == outputs.len(),
        "carbon kernel made for {} rasters, {} outputs asked",
        kernel.rasters(),
        outputs.len()
    );
    let readers = Readers::open(inputs)?;
    let nodata = |r: &Option<RowReader>| r.as_ref().and_then(|r| r.info().nodata);
    let pass = Pass {
        inputs,
        kernel,
        areas,
        binfo: readers.baseline.info().clone(),
        nodata: [nodata(&readers.alternate), nodata(&readers.zones)],
        names: input_names(inputs),
    };
    let grid = &pass.binfo.grid;
    std::thread::scope(|scope| {
        // handed over, not queued: a strip is being read, one counted, one on its way back
        let (strip_tx, strip_rx) = sync_channel::<anyhow::Result<Strip>>(0);
        let (free_tx, free_rx) = sync_channel::<Strip>(1);
        let reader = scope.spawn(move || read_strips(&readers, grid.height, &strip_tx, &free_rx));
        let mut writers = Vec::new();
        for out in outputs {
            let (tx, rx) = sync_channel::<Rows>(0);
            let (back_tx, back_rx) = sync_channel::<Vec<f32>>(1);
            let handle = scope.spawn(move || write_strips(out, grid, &rx, &back_tx));
            writers.push(Writer {
                tx,
                back: back_rx,
                handle,
            });
        }
        let counted = pass.count(&strip_rx, &free_tx, &writers, accept);
        drop(strip_rx);
        let result = finish_writers(writers, outputs, counted)?;
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the carbon raster reader panicked"))?;
        result
    })
}

/// The names of the baseline, alternate and zone layers, for messages ("" when absent).
fn input_names(inputs: &Inputs<'_>) -> [String; 3] {
    [
        inputs.baseline.display().to_string(),
        inputs
            .alternate
            .map(|a| a.display().to_string())
            .unwrap_or_default(),
        match inputs.zones {
            ZoneInput::Raster(z) => z.display().to_string(),
            ZoneInput::Cells(z) => z.path.display().to_string(),
            ZoneInput::None => String::new(),
        },
    ]
}

/// The thread of one output raster: where its strips go, where their buffers come back.
struct Writer<'scope> {
    tx: SyncSender<Rows>,
    back: Receiver<Vec<f32>>,
    handle: std::thread::ScopedJoinHandle<'scope, anyhow::Result<bool>>,
}

/// What the counting of the strips works with.
struct Pass<'a> {
    inputs: &'a Inputs<'a>,
    kernel: &'a CellKernel,
    areas: &'a CellAreas,
    /// The baseline raster's description.
    binfo: raster::RasterInfo,
    /// The nodata values of the alternate and zone rasters.
    nodata: [Option<f64>; 2],
    /// [`input_names`].
    names: [String; 3],
}

impl Pass<'_> {
    /// Counts the strips as they come, hands each strip's rows to the writers, and
    /// returns the counts of the whole map once `accept` approved them.
    fn count(
        &self,
        strips: &Receiver<anyhow::Result<Strip>>,
        free: &SyncSender<Strip>,
        writers: &[Writer<'_>],
        accept: impl FnOnce(&CarbonCounts) -> anyhow::Result<()>,
    ) -> anyhow::Result<CarbonCounts> {
        let (kernel, areas, width) = (self.kernel, self.areas, self.binfo.grid.width);
        let mut counts: Option<CarbonCounts> = None;
        let mut area_sums = areas.is_geographic().then(|| AreaSums {
            baseline: Default::default(),
            alternate: self.inputs.alternate.map(|_| Default::default()),
        });
        for strip in strips {
            let strip = strip?;
            let layers = self.layers(&strip)?;
            let mut outs: Vec<Vec<f32>> = writers
                .iter()
                .map(|w| w.back.try_recv().unwrap_or_default())
                .collect();
            let c = kernel.block_par(&layers, strip.y0 * width, width, areas, &mut outs)?;
            if let Some(sums) = area_sums.as_mut() {
                add_row_areas(sums, kernel.pools(), &layers, width, areas, strip.y0)?;
            }
            match counts.as_mut() {
                Some(all) => all.merge(&c)?,
                None => counts = Some(c),
            }
            for (w, o) in writers.iter().zip(outs) {
                // a writer that stopped reports its error when joined
                let _ = w.tx.send(Rows::Strip(o));
            }
            let _ = free.try_send(strip);
        }
        let mut counts = counts.context("the baseline raster has no rows")?;
        counts.areas = area_sums;
        accept(&counts)?;
        Ok(counts)
    }

    /// The layers of `strip` (zones on the grid: their cells of the strip's rows).
    fn layers<'s>(&'s self, strip: &'s Strip) -> anyhow::Result<CarbonLayers<'s>> {
        let names = &self.names;
        let first = strip.y0 * self.binfo.grid.width;
        let n = strip.baseline.len();
        Ok(CarbonLayers {
            baseline: CodeLayer {
                name: &names[0],
                values: &strip.baseline,
                nodata: self.binfo.nodata,
            },
            alternate: self.inputs.alternate.map(|_| CodeLayer {
                name: &names[1],
                values: &strip.alternate,
                nodata: self.nodata[0],
            }),
            zones: match self.inputs.zones {
                ZoneInput::None => None,
                ZoneInput::Raster(_) => Some(CodeLayer {
                    name: &names[2],
                    values: &strip.zones,
                    nodata: self.nodata[1],
                }),
                ZoneInput::Cells(z) => Some(CodeLayer {
                    name: &names[2],
                    values: z.values.get(first..first + n).with_context(|| {
                        format!("{}: fewer cells than the baseline's grid", names[2])
                    })?,
                    nodata: z.nodata,
                }),
            },
        })
    }
}

/// Tells the writers to rename their files when `counted` is Ok, joins them, and
/// returns `counted` or the first writer's error; on an error no output is left renamed.
/// Err only when a writer panicked.
fn finish_writers(
    writers: Vec<Writer<'_>>,
    outputs: &[Output],
    counted: anyhow::Result<CarbonCounts>,
) -> anyhow::Result<anyhow::Result<CarbonCounts>> {
    let ok = counted.is_ok();
    let mut result = counted;
    for w in &writers {
        if ok {
            let _ = w.tx.send(Rows::Finish);
        }
    }
    let mut renamed = Vec::new();
    for (w, out) in writers.into_iter().zip(outputs) {
        drop(w.tx);
        let written = w
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("a carbon raster writer panicked"))?;
        match written {
            Ok(true) => renamed.push(&out.path),
            Ok(false) => {}
            Err(e) => {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
    }
    if result.is_err() {
        // no output that looks complete when the run is not
        for p in renamed {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(result)
}
