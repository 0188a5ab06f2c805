//! The tile step (docs/design.md §4): for every valid, unrestricted cell of a tile, the
//! neighbourhood term, the combined score with own-class inertia, the roulette, the gate
//! and, for the cells that propose a change, a priority key U3. A pure function of (class
//! window with halo, static tile layers, step parameters); random numbers come from the
//! counter-based generator keyed by (seed, stream, iteration, global cell, draw 0).

use super::params::CaParams;
use super::score::{score_row_counts, score_row_packed, RowInput, RowOutput};
use super::{BUCKETS, BUCKET_SHIFT, INVALID};
use crate::rng::CounterRng;

/// Global parameters of one iteration, computed on the coordinator and broadcast.
#[derive(Clone, Debug, PartialEq)]
pub struct StepParams {
    /// Iteration t (0-based).
    pub iteration: u32,
    /// Inertia I_k per class.
    pub inertia: Vec<f64>,
    /// Class may not receive cells in this iteration (initial gap 0, full, or locked).
    pub closed_in: Vec<bool>,
    /// Class may not lose cells in this iteration (initial gap 0, at its floor, or locked).
    pub closed_out: Vec<bool>,
    /// Conversion `from -> to` refused in this iteration, row-major K x K
    /// ([`InertiaState::closed_pairs`](super::inertia::InertiaState::closed_pairs)).
    pub closed_pairs: Vec<bool>,
    /// Decay steps l of the patch seeds' threshold (`[ca] patches`,
    /// [`patch_level`](super::patches::patch_level)); 0 and unused without patches.
    pub patch_level: u32,
    /// Transition allocation (`[ca] allocation = "transitions"`, docs/design.md §5): a
    /// cell changes at most once per run, so cells whose class differs from the run's
    /// start map ([`TileStatic::start_classes`]) are skipped.
    pub transitions: bool,
}

/// A tile's class window including its halo of r = (N - 1) / 2 cells on every side;
/// cells off the grid hold [`INVALID`]. `data[0]` is the top-left halo cell.
#[derive(Clone, Copy, Debug)]
pub struct ClassWindow<'a> {
    /// Class indices, row-major with `stride` cells per row.
    pub data: &'a [u8],
    /// Cells per row of `data` (at least tile width + 2r).
    pub stride: usize,
}

/// Largest stored suitability: the fixed-point code of 1.
pub const SUITABILITY_ONE: u16 = u16::MAX;

/// A suitability as tiles store it: `round(s * 65535)` in u16 fixed point (2 bytes per
/// class and cell instead of 4), values below 0 as 0, above 1 as 65535, NaN as 0. Every
/// holder of a tile's suitability (the single-process engine, the worker's tiles, the
/// benchmark) converts with this function, once, when the suitability is computed or
/// received, so that all of them step on the same numbers.
#[inline]
pub fn suitability_to_fixed(s: f32) -> u16 {
    let v = (s as f64 * SUITABILITY_ONE as f64).round();
    if v >= 0.0 {
        v.min(SUITABILITY_ONE as f64) as u16
    } else {
        0
    }
}

/// [`suitability_to_fixed`] of every value of `values`.
pub fn suitability_fixed(values: &[f32]) -> Vec<u16> {
    values.iter().map(|&s| suitability_to_fixed(s)).collect()
}

/// The suitability the step computes with for a stored code `q`: `q * (1 / 65535)` in
/// f64 (within 1 ulp of `q / 65535`, and the same product everywhere).
#[inline]
pub fn suitability_from_fixed(q: u16) -> f64 {
    q as f64 * (1.0 / SUITABILITY_ONE as f64)
}

/// One row of cell-major fixed-point suitability as the workers send it (`K` codes per
/// cell, each a little-endian u16: class `c` of cell `x` at bytes `2 (x K + c)`), spread
/// into the class bands: cell `x` goes to `bands[c][at + x]`, as the value the CA steps
/// on ([`suitability_from_fixed`], rounded to f32). `K` is `bands.len()`. A row that is
/// not whole cells, or that does not fit in a band from `at`, is an error (nothing is
/// written then).
pub fn fixed_row_into_bands(row: &[u8], bands: &mut [Vec<f32>], at: usize) -> crate::Result<()> {
    let k = bands.len();
    let cell_bytes = 2 * k;
    if k == 0 || !row.len().is_multiple_of(cell_bytes) {
        return Err(crate::Error::Data(format!(
            "a suitability row of {} bytes for {k} classes: expected whole cells of {cell_bytes} bytes",
            row.len()
        )));
    }
    let n = row.len() / cell_bytes;
    if let Some(b) = bands.iter().find(|b| b.len() < at + n) {
        return Err(crate::Error::Data(format!(
            "a suitability row of {n} cells at cell {at} of a band of {} cells",
            b.len()
        )));
    }
    for (c, band) in bands.iter_mut().enumerate() {
        let out = &mut band[at..at + n];
        for (o, cell) in out.iter_mut().zip(row.chunks_exact(cell_bytes)) {
            let q = u16::from_le_bytes([cell[2 * c], cell[2 * c + 1]]);
            *o = suitability_from_fixed(q) as f32;
        }
    }
    Ok(())
}

/// A tile's static layers. Index 0 is the tile's top-left cell.
#[derive(Clone, Copy, Debug)]
pub struct TileStatic<'a> {
    /// Cell-major suitability in fixed point ([`suitability_to_fixed`]):
    /// `(y * stride + x) * K + k`; each cell sums to about 1.
    pub suitability: &'a [u16],
    /// Restricted cells (never change): `y * stride + x`.
    pub restricted: &'a [bool],
    /// Cells per row of both layers.
    pub stride: usize,
    /// The run's start map over the class window's layout (halo included, the class
    /// window's stride); read only in transition mode ([`StepParams::transitions`]),
    /// may be empty otherwise.
    pub start_classes: &'a [u8],
}

/// Where a tile lies in the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRect {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Columns of the whole grid (for global cell indices).
    pub grid_width: usize,
}

/// One proposed change c -> k of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Proposal {
    /// Global cell index (row-major over the grid).
    pub cell: u64,
    /// Priority key U3.
    pub key: u32,
    /// Current class c.
    pub from: u8,
    /// Proposed class k.
    pub to: u8,
}

impl Proposal {
    /// The proposal's place in the acceptance order: (key, cell).
    #[inline]
    pub fn order(&self) -> super::Key {
        (self.key, self.cell)
    }

    /// The key bucket (top 10 bits of the key).
    #[inline]
    pub fn bucket(&self) -> usize {
        (self.key >> BUCKET_SHIFT) as usize
    }
}

/// The output of a tile step, reused from one iteration to the next (no allocation once
/// the buffers have grown).
#[derive(Clone, Debug, Default)]
pub struct TileProposals {
    /// Proposals that no lock and no class closed at the start of the iteration refuses,
    /// in row-major order.
    pub proposals: Vec<Proposal>,
    /// Counts of `proposals` per (bucket, from, to): index `(bucket * K + from) * K + to`.
    pub histogram: Vec<u32>,
    /// Valid unrestricted cells of the tile.
    pub cells: u64,
    /// Cells skipped because every neighbour is of their own class (they cannot change).
    pub skipped_uniform: u64,
    /// Cells skipped because their class may not lose cells in this iteration (or, in
    /// transition mode, because they already changed in this run).
    pub skipped_closed: u64,
    /// All proposals that passed roulette and gate, including those a lock or a closed
    /// class refuses.
    pub raw_proposals: u64,
    scratch: StepScratch,
}

/// Buffers of [`tile_step`], kept from one call to the next.
#[derive(Clone, Debug, Default)]
struct StepScratch {
    /// Omega per class, indexed by the neighbour count: `omega[k][count]`.
    omega: Vec<[f64; 256]>,
    /// Own-class factor I_c * 10 K per class.
    own: Vec<f64>,
    /// Per window column: its N rows equal the centre row ([`uniform_row`]).
    column: Vec<u8>,
    /// Per cell of the row: its whole window is its class.
    uniform: Vec<u8>,
    /// Transition mode: per cell of the row, its whole window is its class in the
    /// run's start map too.
    uniform_start: Vec<u8>,
    /// Classes that may not lose cells.
    closed: Vec<u8>,
    /// Per cell of the row: past the early outs (0/1).
    mask: Vec<u8>,
    /// Suitability of the current cell as f64, per class.
    sp: Vec<f64>,
    /// Conversion cost, row-major K x K.
    cost: Vec<f64>,
    /// The row's cells past the early outs, then those that need a draw: column;
    /// and of the latter global cell, score sum, scores (K each) and Philox block.
    x: Vec<u32>,
    cell: Vec<u64>,
    sum: Vec<f64>,
    /// Lane kernel: bits of the classes of positive score per kept cell.
    pos: Vec<u8>,
    tp: Vec<f64>,
    blocks: Vec<[u32; 4]>,
    /// Tables of the lane kernel (AVX2 build, K <= 8).
    lanes: super::score_avx2::LaneTables,
}

impl TileProposals {
    /// Appends to `dst` the proposals of `bucket` whose from or to class is in `touch`.
    pub fn in_bucket(&self, bucket: usize, touch: &[bool], dst: &mut Vec<Proposal>) {
        dst.extend(
            self.proposals.iter().filter(|p| {
                p.bucket() == bucket && (touch[p.from as usize] || touch[p.to as usize])
            }),
        );
    }
}

/// Counts the classes of the N*N - 1 neighbours of the tile cell (x, y) (centre
/// excluded) into `counts` (indexed by class value, [`INVALID`] included), which must be
/// zero on entry.
#[inline]
pub fn neighbour_counts(
    window: &ClassWindow,
    x: usize,
    y: usize,
    n: usize,
    counts: &mut [u32; 256],
) {
    let r = (n - 1) / 2;
    for dy in 0..n {
        let start = (y + dy) * window.stride + x;
        for &b in &window.data[start..start + n] {
            counts[b as usize] += 1;
        }
    }
    counts[window.data[(y + r) * window.stride + x + r] as usize] -= 1;
}

/// Transition mode: adds to `counts` the start class of every neighbour of the tile
/// cell (x, y) whose class differs from it in `start` (the run's start map over the
/// class window's layout): a neighbour that has made its conversion counts for the
/// class it left too.
#[inline]
pub fn start_counts(
    window: &ClassWindow,
    start: &[u8],
    x: usize,
    y: usize,
    n: usize,
    counts: &mut [u32; 256],
) {
    for dy in 0..n {
        let at = (y + dy) * window.stride + x;
        for (&a, &b) in window.data[at..at + n].iter().zip(&start[at..at + n]) {
            if a != b {
                counts[b as usize] += 1;
            }
        }
    }
}

/// The neighbourhood term Omega(p, k) = count_k / (N*N - 1) * w_k; invalid or off-grid
/// neighbours count as nothing, the divisor stays N*N - 1.
#[inline]
pub fn omega(counts: &[u32], n: usize, weights: &[f64], out: &mut [f64]) {
    let nn1 = (n * n - 1) as f64;
    for (k, o) in out.iter_mut().enumerate() {
        *o = counts[k] as f64 / nn1 * weights[k];
    }
}

/// Combined scores TP(p, k) = sp(p, k) * Omega(p, k) * cost[c][k], times I_c * 10 K for
/// k == c; returns their sum.
#[inline]
pub fn combined_scores<S: Copy + Into<f64>>(
    sp: &[S],
    omega: &[f64],
    cost_row: &[f64],
    c: usize,
    inertia_c: f64,
    out: &mut [f64],
) -> f64 {
    let kk = out.len();
    let mut sum = 0.0;
    for k in 0..kk {
        let mut tp = sp[k].into() * omega[k] * cost_row[k];
        if k == c {
            tp *= inertia_c * 10.0 * kk as f64;
        }
        out[k] = tp;
        sum += tp;
    }
    sum
}

/// Roulette: the class k with probability TP(k) / sum, from a uniform `u1` in (0, 1);
/// `None` when the sum is 0.
#[inline]
pub fn roulette(tp: &[f64], sum: f64, u1: f64) -> Option<usize> {
    if sum <= 0.0 {
        return None;
    }
    let target = u1 * sum;
    let mut acc = 0.0;
    let mut last = None;
    for (k, &v) in tp.iter().enumerate() {
        if v > 0.0 {
            acc += v;
            last = Some(k);
            if target < acc {
                return Some(k);
            }
        }
    }
    last
}

/// [`roulette`] with the class count a compile-time constant (the class loop unrolled)
/// for K <= 8.
#[inline(always)]
fn roulette_k(tp: &[f64], sum: f64, u1: f64) -> Option<usize> {
    #[inline(always)]
    fn fixed<const K: usize>(tp: &[f64], sum: f64, u1: f64) -> Option<usize> {
        let tp: &[f64; K] = tp.try_into().expect("K scores");
        roulette(tp, sum, u1)
    }
    match tp.len() {
        2 => fixed::<2>(tp, sum, u1),
        3 => fixed::<3>(tp, sum, u1),
        4 => fixed::<4>(tp, sum, u1),
        5 => fixed::<5>(tp, sum, u1),
        6 => fixed::<6>(tp, sum, u1),
        7 => fixed::<7>(tp, sum, u1),
        8 => fixed::<8>(tp, sum, u1),
        _ => roulette(tp, sum, u1),
    }
}

/// The gate: (U2 + 1/K) / (t + 1) < sp(p, k).
#[inline]
pub fn gate(u2: f64, k: usize, t: u32, sp: f64) -> bool {
    (u2 + 1.0 / k as f64) / (t as f64 + 1.0) < sp
}

/// Marks, for the tile row `y`, the cells whose whole N x N neighbourhood equals the
/// cell's class (`uniform[x] = 1`), in two vectorisable passes: per window column,
/// whether its N rows equal the centre row; then per cell, whether its N columns do and
/// the centre row is constant across them. `column` and `uniform` are scratch buffers.
fn uniform_row(
    window: &ClassWindow,
    y: usize,
    width: usize,
    n: usize,
    column: &mut Vec<u8>,
    uniform: &mut Vec<u8>,
) {
    let r = (n - 1) / 2;
    let cols = width + n - 1;
    let mid = &window.data[(y + r) * window.stride..(y + r) * window.stride + cols];
    column.clear();
    column.resize(cols, 1);
    for dy in 0..n {
        if dy == r {
            continue;
        }
        let row = &window.data[(y + dy) * window.stride..(y + dy) * window.stride + cols];
        for ((c, &a), &m) in column.iter_mut().zip(row).zip(mid) {
            *c &= (a == m) as u8;
        }
    }
    // every cell of the row is written below
    uniform.resize(width, 0);
    if n == 3 {
        let (c0, c1, c2) = (&column[..width], &column[1..=width], &column[2..width + 2]);
        let (m0, m1, m2) = (&mid[..width], &mid[1..=width], &mid[2..width + 2]);
        for ((((((u, &a), &b), &c), &p), &q), &s) in uniform
            .iter_mut()
            .zip(c0)
            .zip(c1)
            .zip(c2)
            .zip(m0)
            .zip(m1)
            .zip(m2)
        {
            *u = a & b & c & (p == q) as u8 & (s == q) as u8;
        }
    } else {
        for x in 0..width {
            let c = mid[x + r];
            let mut u = 1u8;
            for d in 0..n {
                u &= column[x + d] & (mid[x + d] == c) as u8;
            }
            uniform[x] = u;
        }
    }
}

/// The lane kernel for K = 1..=8 classes (only reached from the AVX2 build).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn score_lanes(
    kk: usize,
    inp: &RowInput,
    onehot: &[u64; 256],
    tables: &super::score_avx2::LaneTables,
    rows: RowOutput,
) -> usize {
    use super::score_avx2::score_row_lanes;
    // SAFETY: LANES is true only in tile_step_avx2, called once AVX2 was detected.
    unsafe {
        match kk {
            1 => score_row_lanes::<1>(inp, onehot, tables, rows),
            2 => score_row_lanes::<2>(inp, onehot, tables, rows),
            3 => score_row_lanes::<3>(inp, onehot, tables, rows),
            4 => score_row_lanes::<4>(inp, onehot, tables, rows),
            5 => score_row_lanes::<5>(inp, onehot, tables, rows),
            6 => score_row_lanes::<6>(inp, onehot, tables, rows),
            7 => score_row_lanes::<7>(inp, onehot, tables, rows),
            _ => score_row_lanes::<8>(inp, onehot, tables, rows),
        }
    }
}

/// The roulette of the lane kernel's running sums (only reached from the AVX2 build).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn roulette_lanes(partials: &[f64], pos: u8, sum: f64, u1: f64) -> Option<usize> {
    // SAFETY: LANES is true only in tile_step_avx2, called once AVX2 was detected.
    unsafe { super::score_avx2::roulette_partials_avx2(partials, pos, sum, u1) }
}

/// Never reached: `LANES` is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn roulette_lanes(_: &[f64], _: u8, _: f64, _: f64) -> Option<usize> {
    unreachable!("the lane kernel is built for x86-64 only")
}

/// Never reached: `LANES` is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn score_lanes(
    _: usize,
    _: &RowInput,
    _: &[u64; 256],
    _: &super::score_avx2::LaneTables,
    _: RowOutput,
) -> usize {
    unreachable!("the lane kernel is built for x86-64 only")
}

/// Classes the packed neighbour count of [`tile_step`] holds (one byte each in a u64):
/// the N x N window's one-hot words summed, minus the centre's.
const PACKED_CLASSES: usize = 8;

/// Largest neighbourhood whose N*N cells fit a byte of the packed count.
const PACKED_MAX_N: usize = 15;

/// The tile step of iteration `step.iteration`: fills `out` with the tile's proposals and
/// their key histogram. Cells whose whole neighbourhood is their own class and cells of a
/// class that may not lose cells are skipped (they cannot change); with counter-based
/// draws that changes nobody else's numbers.
///
/// Row by row, in three passes: the cells that need a draw (past every early out) with
/// their scores; their Philox blocks, [`LANES`](crate::rng::LANES) at a time
/// ([`CounterRng::blocks`]); then roulette, gate and proposals in row order. The
/// numbers are those of the cell-by-cell definition ([`neighbour_counts`], [`omega`],
/// [`combined_scores`], [`roulette`], [`gate`], [`CounterRng::block`]).
pub fn tile_step(
    params: &CaParams,
    step: &StepParams,
    rect: &TileRect,
    window: &ClassWindow,
    stat: &TileStatic,
    out: &mut TileProposals,
) {
    if let Some(patches) = &params.patches {
        super::patches::tile_step_cars(params, patches, step, rect, window, stat, out);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected on this CPU just above.
        unsafe { tile_step_avx2(params, step, rect, window, stat, out) };
        return;
    }
    tile_step_body::<false>(params, step, rect, window, stat, out);
}

/// [`tile_step_body`] with AVX2 enabled (the row passes and scoring are inlined into
/// it): the byte masks take 32 cells per instruction. Integer, comparison and the same
/// floating-point operations in the same order (no fused multiply-add), so the same
/// proposals as the portable build (test
/// `tile_step_equals_the_cell_by_cell_definition_on_random_tiles` runs both).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tile_step_avx2(
    params: &CaParams,
    step: &StepParams,
    rect: &TileRect,
    window: &ClassWindow,
    stat: &TileStatic,
    out: &mut TileProposals,
) {
    tile_step_body::<true>(params, step, rect, window, stat, out);
}

/// [`tile_step`] without patches, for the instruction set of its caller: with `LANES`
/// (the AVX2 build only) the packed scoring runs with the classes in vector lanes
/// ([`score_row_lanes`](super::score_avx2::score_row_lanes)).
#[inline(always)]
fn tile_step_body<const LANES: bool>(
    params: &CaParams,
    step: &StepParams,
    rect: &TileRect,
    window: &ClassWindow,
    stat: &TileStatic,
    out: &mut TileProposals,
) {
    let kk = params.k;
    let n = params.neighbourhood;
    let r = params.radius();
    let nn1 = (n * n - 1) as u32;
    let nn1f = nn1 as f64;
    let rng = CounterRng::new(params.seed);
    let t = step.iteration;
    out.proposals.clear();
    out.histogram.clear();
    out.histogram.resize(BUCKETS * kk * kk, 0);
    out.cells = 0;
    out.skipped_uniform = 0;
    out.skipped_closed = 0;
    out.raw_proposals = 0;
    let s = &mut out.scratch;
    // Neighbour counts of up to 8 classes packed one byte per class in a u64, from a
    // one-hot word per class value (invalid: 0). Wider neighbourhoods or more classes
    // count into a 256-entry array.
    let packed = kk <= PACKED_CLASSES && n <= PACKED_MAX_N;
    let mut onehot = [0u64; 256];
    for (c, v) in onehot.iter_mut().enumerate().take(kk.min(PACKED_CLASSES)) {
        *v = 1 << (8 * c);
    }
    // Omega = count / (N*N - 1) * w_k by table (the same two operations per value).
    // One 256-entry table per class, indexed by the count byte itself: no bounds check
    // in the scoring loop (n <= 15: counts <= 224).
    s.omega.clear();
    if packed {
        s.omega.resize(kk, [0.0; 256]);
        for c in 0..=nn1 {
            let share = c as f64 / nn1f;
            for (tab, &w) in s.omega.iter_mut().zip(&params.weights) {
                tab[c as usize] = share * w;
            }
        }
    }
    // I_c * 10 K, the own-class factor of the combined score.
    s.own.clear();
    s.own
        .extend(step.inertia.iter().map(|&i| i * 10.0 * kk as f64));
    // The gate's threshold (U2 + 1/K) / (t + 1) at U2 = 0: a lower bound of it.
    let gate_floor = (1.0 / kk as f64) / (t as f64 + 1.0);
    // Class values that may not lose cells in this iteration.
    s.closed.clear();
    s.closed
        .extend((0..kk).filter(|&c| step.closed_out[c]).map(|c| c as u8));
    s.cost.clear();
    for row in &params.cost {
        s.cost.extend_from_slice(row);
    }
    if LANES && packed {
        s.lanes.fill(&params.weights, &s.cost, &s.own);
    }
    let width = rect.width;
    for y in 0..rect.height {
        uniform_row(window, y, width, n, &mut s.column, &mut s.uniform);
        if step.transitions {
            // a neighbour counts for its start class too: uniform in both maps
            let start = ClassWindow {
                data: stat.start_classes,
                stride: window.stride,
            };
            uniform_row(&start, y, width, n, &mut s.column, &mut s.uniform_start);
            for (u, &v) in s.uniform.iter_mut().zip(&s.uniform_start) {
                *u &= v;
            }
        }
        let centre_row = (y + r) * window.stride + r;
        let static_row = y * stat.stride;
        let global_row = ((rect.y0 + y) * rect.grid_width + rect.x0) as u64;
        // Pass 1a: the row's cells past the early outs (valid, unrestricted, class open
        // for leaving, not uniform) as a 0/1 mask, in vectorisable passes; then their
        // columns, skipping 8 cells at a time where the mask is 0.
        let crow = &window.data[centre_row..centre_row + width];
        let rrow = &stat.restricted[static_row..static_row + width];
        // every byte of the mask is written by the first pass
        s.mask.resize(width, 0);
        let mut cells = 0u32;
        for ((m, &c), &rs) in s.mask.iter_mut().zip(crow).zip(rrow) {
            let valid = (c != INVALID) & !rs;
            *m = valid as u8;
            cells += valid as u32;
        }
        out.cells += cells as u64;
        if cells == 0 {
            continue;
        }
        if step.transitions {
            // a cell changes at most once per run: cells off their start class are done
            let srow = &stat.start_classes[centre_row..centre_row + width];
            let mut done = 0u32;
            for ((m, &c), &s0) in s.mask.iter_mut().zip(crow).zip(srow) {
                let hit = *m & (c != s0) as u8;
                done += hit as u32;
                *m &= hit ^ 1;
            }
            out.skipped_closed += done as u64;
        }
        for &v in &s.closed {
            let mut shut = 0u32;
            for (m, &c) in s.mask.iter_mut().zip(crow) {
                let hit = *m & (c == v) as u8;
                shut += hit as u32;
                *m &= hit ^ 1;
            }
            out.skipped_closed += shut as u64;
        }
        let mut uniform = 0u32;
        for (m, &u) in s.mask.iter_mut().zip(&s.uniform[..width]) {
            let hit = *m & u;
            uniform += hit as u32;
            *m &= hit ^ 1;
        }
        out.skipped_uniform += uniform as u64;
        s.x.clear();
        // eight mask bytes as one word (whole words: a copy of a variable length was a
        // call to memcpy per word)
        let words = s.mask.chunks_exact(8);
        let tail = words.remainder();
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        let full = words.len();
        let words = words.map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        // every column of a word with a cell is written, the next free slot advancing
        // only past the cells (no branch per cell; at most 8 slots past the last)
        s.x.resize(width + 8, 0);
        let mut m = 0;
        for (i, bits) in words.chain([u64::from_le_bytes(last)]).enumerate() {
            debug_assert!(i <= full);
            if bits == 0 {
                continue;
            }
            let dst: &mut [u32; 8] = (&mut s.x[m..m + 8]).try_into().expect("8 slots");
            let mut n = 0;
            for b in 0..8 {
                dst[n & 7] = (i * 8 + b) as u32;
                n += ((bits >> (8 * b)) & 1) as usize;
            }
            m += n;
        }
        s.x.truncate(m);
        if m == 0 {
            continue;
        }
        // Pass 1b: their scores; kept are those that need a draw (score.rs). Each
        // kept cell's scores go to the next free K slots of `tp`.
        // grown, never cleared: every slot is written before it is read
        // (8 more: the lane kernel stores whole vectors of 8 lanes)
        if s.tp.len() < m * kk + 8 {
            s.tp.resize(m * kk + 8, 0.0);
        }
        s.cell.resize(m, 0);
        s.sum.resize(m, 0.0);
        s.pos.resize(m, 0);
        s.sp.resize(kk, 0.0);
        let inp = RowInput {
            window,
            start: stat.start_classes,
            transitions: step.transitions,
            n,
            y,
            crow,
            suitability: &stat.suitability[static_row * kk..],
            cost: &s.cost,
            own: &s.own,
            gate_floor,
            global_row,
        };
        let rows = RowOutput {
            x: &mut s.x,
            cell: &mut s.cell,
            sum: &mut s.sum,
            tp: &mut s.tp,
            pos: &mut s.pos,
        };
        let kept = if packed && LANES {
            score_lanes(kk, &inp, &onehot, &s.lanes, rows)
        } else {
            match (packed, kk) {
                (true, 1) => score_row_packed::<1>(&inp, &onehot, &s.omega, rows),
                (true, 2) => score_row_packed::<2>(&inp, &onehot, &s.omega, rows),
                (true, 3) => score_row_packed::<3>(&inp, &onehot, &s.omega, rows),
                (true, 4) => score_row_packed::<4>(&inp, &onehot, &s.omega, rows),
                (true, 5) => score_row_packed::<5>(&inp, &onehot, &s.omega, rows),
                (true, 6) => score_row_packed::<6>(&inp, &onehot, &s.omega, rows),
                (true, 7) => score_row_packed::<7>(&inp, &onehot, &s.omega, rows),
                (true, 8) => score_row_packed::<8>(&inp, &onehot, &s.omega, rows),
                _ => score_row_counts(&inp, kk, &params.weights, &mut s.sp, rows),
            }
        };
        s.x.truncate(kept);
        s.cell.truncate(kept);
        s.sum.truncate(kept);
        if kept == 0 {
            continue;
        }
        // Pass 2: their Philox blocks, several cells per instruction.
        s.blocks.resize(s.cell.len(), [0; 4]);
        rng.blocks(params.stream, t, 0, &s.cell, &mut s.blocks);
        // Pass 3: roulette, gate and proposals in row order.
        for (j, (&x, &cell)) in s.x.iter().zip(&s.cell).enumerate() {
            let x = x as usize;
            let c = window.data[centre_row + x];
            let cu = c as usize;
            let b = s.blocks[j];
            let u1 = CounterRng::unit(b[0]);
            let to = if LANES && packed {
                roulette_lanes(&s.tp[j * kk..j * kk + 8], s.pos[j], s.sum[j], u1)
            } else {
                roulette_k(&s.tp[j * kk..(j + 1) * kk], s.sum[j], u1)
            };
            let Some(to) = to else {
                continue;
            };
            if to == cu || s.cost[cu * kk + to] <= 0.0 {
                continue;
            }
            let sp_to = suitability_from_fixed(stat.suitability[(static_row + x) * kk + to]);
            if !gate(CounterRng::unit(b[1]), kk, t, sp_to) {
                continue;
            }
            out.raw_proposals += 1;
            if step.closed_in[to] || step.closed_pairs[cu * kk + to] {
                continue;
            }
            let p = Proposal {
                cell,
                key: b[2],
                from: c,
                to: to as u8,
            };
            out.histogram[(p.bucket() * kk + cu) * kk + to] += 1;
            out.proposals.push(p);
        }
    }
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;
