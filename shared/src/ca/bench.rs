//! Throughput measurements shared by `flus bench` and the `ca_bench` example: the
//! machine's memory bandwidth (a stream-copy loop), the tile step's cell-updates per
//! second on one thread, and the bytes the step touches per cell.
//!
//! The step's test grid is Ben Cat 2010 (classes), demand = the 2020 counts, and as
//! suitability per class its share in the 7 x 7 window of the 2020 map (as in the Ben Cat
//! tests; no ANN), with the Ben Cat test parameters (Table 2 weights, every conversion
//! allowed except into water).

use std::path::Path;
use std::time::Instant;

use super::{
    tile_step, CaParams, ClassWindow, InertiaState, TileProposals, TileRect, TileStatic, INVALID,
};
use crate::error::{Error, Result};
use crate::raster::read_band;

/// Bytes of memory traffic per cell of one tile step, from the data layout (an upper
/// bound on what must come from DRAM per cell; the step streams its layers row by row):
/// - class window: 1 byte (u8). The `N x N` neighbourhood re-reads the `N` rows around
///   the current one, which stay in cache, so each class byte comes from memory once;
/// - restriction: 1 byte (`bool`);
/// - suitability: `2 K` bytes (K u16 fixed point, cell-major). Only cells that are not
///   uniform or closed read it, but hardware prefetch streams the whole layer, so all
///   are counted;
/// - proposals written: `size_of::<Proposal>() = 16` bytes for the few cells that
///   propose (typically < 1 % of the cells), not counted.
pub const fn kernel_bytes_per_cell(k: usize) -> usize {
    1 + 1 + 2 * k
}

/// Memory bandwidth of a stream copy (`dst.copy_from_slice(src)` of `bytes` bytes),
/// bytes per second counting read + write (the STREAM "copy" convention), best of
/// `reps` (at least 1) after one warm-up copy.
pub fn stream_copy_bandwidth(bytes: usize, reps: usize) -> f64 {
    let n = (bytes / 8).max(1);
    let src: Vec<u64> = (0..n as u64).collect();
    let mut dst = vec![0u64; n];
    dst.copy_from_slice(&src);
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (2 * n * 8) as f64 / best.max(1e-9)
}

/// A whole grid for the tile-step benchmark.
pub struct BenchGrid {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Class indices ([`INVALID`] off the mask).
    pub classes: Vec<u8>,
    /// Cell-major suitability (K = 4 per cell).
    pub suitability: Vec<f32>,
    /// Demand per class.
    pub demand: Vec<i64>,
}

/// Classes of this grid.
pub const BENCH_K: usize = 4;

/// The Ben Cat benchmark grid from `dir` (the folder of `examples/bencat`).
pub fn bencat(dir: &Path) -> Result<BenchGrid> {
    let (info, a) = read_band::<u8>(&dir.join("landuse_2010.tif"), 1)?;
    let (_, b) = read_band::<u8>(&dir.join("landuse_2020.tif"), 1)?;
    let (w, h, k) = (info.grid.width, info.grid.height, BENCH_K);
    if a.len() != b.len() {
        return Err(Error::Data(format!(
            "{}: the 2010 and 2020 maps differ in size",
            dir.display()
        )));
    }
    if let Some(&v) = a.iter().chain(&b).find(|&&v| v as usize > k) {
        return Err(Error::raster(
            dir.join("landuse_2010.tif"),
            format!("class code {v}, expected 0 (nodata) or 1..=4"),
        ));
    }
    let valid: Vec<bool> = a.iter().zip(&b).map(|(&x, &y)| x != 0 && y != 0).collect();
    let classes = a
        .iter()
        .zip(&valid)
        .map(|(&c, &v)| if v { c - 1 } else { INVALID })
        .collect();
    let mut demand = vec![0i64; k];
    for (&c, &v) in b.iter().zip(&valid) {
        if v {
            demand[c as usize - 1] += 1;
        }
    }
    let mut suitability = vec![0f32; w * h * k];
    for y in 0..h {
        for x in 0..w {
            if !valid[y * w + x] {
                continue;
            }
            let mut n = [0u32; 5];
            for yy in y.saturating_sub(3)..(y + 4).min(h) {
                for xx in x.saturating_sub(3)..(x + 4).min(w) {
                    if valid[yy * w + xx] {
                        n[b[yy * w + xx] as usize] += 1;
                        n[0] += 1;
                    }
                }
            }
            for c in 0..k {
                suitability[(y * w + x) * k + c] = n[c + 1] as f32 / n[0] as f32;
            }
        }
    }
    Ok(BenchGrid {
        width: w,
        height: h,
        classes,
        suitability,
        demand,
    })
}

/// The grid repeated `f` x `f` times (demand scaled by f^2).
pub fn tiled(g: &BenchGrid, f: usize) -> BenchGrid {
    let (w, h, k) = (g.width * f, g.height * f, BENCH_K);
    let mut classes = vec![0u8; w * h];
    let mut suitability = vec![0f32; w * h * k];
    for y in 0..h {
        for x in 0..w {
            let s = (y % g.height) * g.width + x % g.width;
            classes[y * w + x] = g.classes[s];
            suitability[(y * w + x) * k..(y * w + x + 1) * k]
                .copy_from_slice(&g.suitability[s * k..(s + 1) * k]);
        }
    }
    BenchGrid {
        width: w,
        height: h,
        classes,
        suitability,
        demand: g.demand.iter().map(|d| d * (f * f) as i64).collect(),
    }
}

/// The Ben Cat test parameters: weights of Table 2, every conversion allowed except
/// into water (index 1).
pub fn params() -> CaParams {
    let mut cost = vec![vec![1.0; 4]; 4];
    for (c, row) in cost.iter_mut().enumerate() {
        if c != 1 {
            row[1] = 0.0;
        }
    }
    CaParams::new(vec![0.01, 0.4, 1.0, 0.2], cost, 1)
}

/// Timing of the tile step over a whole grid on the calling thread.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepTiming {
    /// Grid cells.
    pub cells: u64,
    /// Valid, unrestricted cells visited.
    pub valid_cells: u64,
    /// Seconds per step (mean of the timed repetitions).
    pub seconds: f64,
    /// Grid cells per second (cell-updates per second on one core).
    pub cells_per_second: f64,
    /// CPU seconds of the calling thread per step (mean), where the system reports a
    /// thread's CPU time (Linux `/proc/thread-self/schedstat`): unlike `seconds` it
    /// leaves out the time other processes held the core.
    pub cpu_seconds: Option<f64>,
    /// Grid cells per CPU second of the calling thread.
    pub cells_per_cpu_second: Option<f64>,
    /// Cells skipped because their whole neighbourhood is their own class.
    pub skipped_uniform: u64,
    /// Proposals of the step.
    pub proposals: u64,
}

/// The calling thread's CPU time in nanoseconds (Linux: first field of
/// `/proc/thread-self/schedstat`), `None` elsewhere.
pub fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Everything one tile step of iteration 0 over a [`BenchGrid`] (as one tile) needs,
/// built once: the padded class window, the restriction mask, the fixed-point
/// suitability, the parameters, the output buffers.
pub struct StepSetup<'a> {
    grid: &'a BenchGrid,
    params: CaParams,
    step: super::StepParams,
    padded: Vec<u8>,
    restricted: Vec<bool>,
    suitability: Vec<u16>,
    /// Output of the last [`StepSetup::run`].
    pub out: TileProposals,
}

impl<'a> StepSetup<'a> {
    /// The setup of `g` with the Ben Cat test [`params`].
    pub fn new(g: &'a BenchGrid) -> Self {
        let p = params();
        let k = p.k;
        let mut counts = vec![0u64; k];
        for &c in &g.classes {
            if c != INVALID {
                counts[c as usize] += 1;
            }
        }
        let mut state = InertiaState::new(k, p.accelerate);
        state.update(&counts, &g.demand, 0);
        let step = state.step_params(0, &p.cost);
        let r = p.radius();
        let padded = super::window::pad(&g.classes, g.width, g.height, r)
            .expect("the bench grid's map has width x height cells");
        Self {
            grid: g,
            params: p,
            step,
            padded,
            restricted: vec![false; g.width * g.height],
            suitability: super::suitability_fixed(&g.suitability),
            out: TileProposals::default(),
        }
    }

    /// One tile step over the whole grid into `self.out`.
    pub fn run(&mut self) {
        let g = self.grid;
        let rect = TileRect {
            x0: 0,
            y0: 0,
            width: g.width,
            height: g.height,
            grid_width: g.width,
        };
        let window = ClassWindow {
            data: &self.padded,
            stride: g.width + 2 * self.params.radius(),
        };
        let stat = TileStatic {
            suitability: &self.suitability,
            restricted: &self.restricted,
            stride: g.width,
            start_classes: &[],
        };
        tile_step(
            &self.params,
            &self.step,
            &rect,
            &window,
            &stat,
            &mut self.out,
        );
    }
}

/// Times `reps` (at least 1) tile steps of iteration 0 over `g` as one tile, after one
/// warm-up step, on the calling thread.
pub fn time_step(g: &BenchGrid, reps: usize) -> StepTiming {
    let mut setup = StepSetup::new(g);
    setup.run();
    let reps = reps.max(1);
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    for _ in 0..reps {
        setup.run();
    }
    let seconds = start.elapsed().as_secs_f64() / reps as f64;
    let cpu_seconds = cpu0
        .zip(thread_cpu_ns())
        .map(|(a, b)| b.saturating_sub(a) as f64 * 1e-9 / reps as f64);
    let cells = (g.width * g.height) as u64;
    let out = &setup.out;
    StepTiming {
        cells,
        valid_cells: out.cells,
        seconds,
        cells_per_second: cells as f64 / seconds.max(1e-12),
        cpu_seconds,
        cells_per_cpu_second: cpu_seconds.map(|c| cells as f64 / c.max(1e-12)),
        skipped_uniform: out.skipped_uniform,
        proposals: out.proposals.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_cell_follow_the_layout() {
        // Ben Cat: K = 4 -> 1 (class) + 1 (restriction) + 4 x 2 (u16 suitability) = 10
        assert_eq!(kernel_bytes_per_cell(4), 10);
        // K = 10 -> 1 + 1 + 20 = 22
        assert_eq!(kernel_bytes_per_cell(10), 22);
    }

    #[test]
    fn a_stream_copy_has_a_positive_finite_bandwidth() {
        let bw = stream_copy_bandwidth(1 << 20, 2);
        assert!(bw.is_finite() && bw > 0.0, "{bw}");
    }
}
