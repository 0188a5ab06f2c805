//! Pass 1b of the tile step ([`tile_step`](super::step::tile_step)): the combined scores
//! of a row's cells past the early outs, and which of them need a draw.
//!
//! Two kernels give the same numbers as the cell-by-cell definition
//! ([`neighbour_counts`](super::step::neighbour_counts), [`omega`](super::step::omega),
//! [`combined_scores`](super::step::combined_scores)), each product
//! `sp * Omega * cost` (times `I_c * 10 K` for the own class) and the sum in class order:
//! - [`score_row_packed`]: up to 8 classes and N <= 15, the neighbour counts packed one
//!   byte per class in a u64, K a compile-time constant (the class loop unrolled, no
//!   branch per class);
//! - [`score_row_counts`]: any K and N, the counts in a 256-entry array.
//!
//! Both keep the cells in place, without a branch per cell: every cell is written to the
//! next free slot, which advances only when the cell is kept.

use super::step::{neighbour_counts, start_counts, suitability_from_fixed, ClassWindow};

/// What the scoring of one tile row reads.
pub(super) struct RowInput<'a> {
    /// The class window (halo included).
    pub window: &'a ClassWindow<'a>,
    /// Transition mode: the run's start map over the window's layout (else unused).
    pub start: &'a [u8],
    /// Transition mode ([`StepParams::transitions`](super::step::StepParams)).
    pub transitions: bool,
    /// Neighbourhood side N.
    pub n: usize,
    /// The tile row (0-based, without halo).
    pub y: usize,
    /// The row's centre classes (tile width cells).
    pub crow: &'a [u8],
    /// The tile's suitability from the row's first cell on (cell-major, K per cell).
    pub suitability: &'a [u16],
    /// Conversion cost, row-major K x K.
    pub cost: &'a [f64],
    /// Own-class factor `I_c * 10 K` per class.
    pub own: &'a [f64],
    /// The gate's threshold at U2 = 0: a class whose suitability is not above it cannot
    /// pass the gate.
    pub gate_floor: f64,
    /// Global index of the row's first cell.
    pub global_row: u64,
}

/// Where the scoring of one row writes: `x` holds the row's candidate columns on entry
/// and the kept ones (in order) on return; `cell`, `sum` (at least as long as `x`) and
/// `tp` (at least K per entry of `x`) take the kept cells' global index, score sum and
/// K scores.
pub(super) struct RowOutput<'a> {
    /// Columns: candidates on entry, kept cells on return.
    pub x: &'a mut [u32],
    /// Global cell index per kept cell.
    pub cell: &'a mut [u64],
    /// Score sum per kept cell.
    pub sum: &'a mut [f64],
    /// K scores per kept cell (the lane kernel: the roulette's running sums, 8 slots
    /// readable past the last cell's K).
    pub tp: &'a mut [f64],
    /// Lane kernel only: per kept cell, the bits of its classes of positive score.
    pub pos: &'a mut [u8],
}

impl RowInput<'_> {
    /// The packed neighbour counts of column `x` (one byte per class, the centre of
    /// class `cu` excluded; transition mode: a neighbour off its start class counts for
    /// that class too).
    #[inline(always)]
    pub(super) fn packed_word(&self, onehot: &[u64; 256], x: usize, cu: usize) -> u64 {
        let (n, stride, data) = (self.n, self.window.stride, self.window.data);
        let mut word = 0u64;
        if n == 3 {
            // the 3 x 3 window unrolled (the paper's neighbourhood)
            let a = self.y * stride + x;
            for row in [a, a + stride, a + 2 * stride] {
                let w3 = &data[row..row + 3];
                word += onehot[w3[0] as usize] + onehot[w3[1] as usize] + onehot[w3[2] as usize];
            }
        } else {
            for dy in 0..n {
                let start = (self.y + dy) * stride + x;
                for &b in &data[start..start + n] {
                    word += onehot[b as usize];
                }
            }
        }
        word -= onehot[cu];
        if self.transitions {
            // a neighbour that has made its conversion still counts for the class it
            // had at the start of the run (at most one more per class and neighbour:
            // counts stay <= N*N - 1)
            for dy in 0..n {
                let at = (self.y + dy) * stride + x;
                for (&a, &b) in data[at..at + n].iter().zip(&self.start[at..at + n]) {
                    if a != b {
                        word += onehot[b as usize];
                    }
                }
            }
        }
        word
    }
}

/// Candidates ahead whose suitability [`score_row_packed`] prefetches.
pub(super) const PREFETCH_AHEAD: usize = 8;

/// Hints the CPU to load `values[at]` into the cache (no effect on any value; nothing
/// outside x86-64, or when `at` is out of range).
#[inline(always)]
pub(super) fn prefetch(values: &[u16], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v) = values.get(at) {
        // SAFETY: a prefetch hint reads nothing architecturally; the pointer is in bounds.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (v as *const u16).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (values, at);
}

/// Scores the row's candidates with the packed neighbour count (K <= 8, N <= 15);
/// `onehot[c] = 1 << 8c` for the classes (0 for other values), `omega[k][count] =
/// count / (N*N - 1) * w_k`. Returns the number of kept cells: those with a positive
/// sum and another class of positive score whose suitability is above the gate floor
/// (the others cannot propose whatever their draw; a NaN sum is kept, as the roulette
/// does not refuse it).
#[inline(always)]
pub(super) fn score_row_packed<const K: usize>(
    inp: &RowInput,
    onehot: &[u64; 256],
    omega: &[[f64; 256]],
    out: RowOutput,
) -> usize {
    let omega: &[[f64; 256]; K] = omega[..K].try_into().expect("one table per class");
    let nnu = inp.n * inp.n;
    let mut kept = 0;
    let m = out.x.len();
    for j in 0..m {
        let x = out.x[j] as usize;
        // the suitability of a candidate a few ahead (the table is cells x K x 2 bytes,
        // larger than L2 on the shipped studies, and read once per iteration)
        prefetch(
            inp.suitability,
            out.x[(j + PREFETCH_AHEAD).min(m - 1)] as usize * K,
        );
        let cu = inp.crow[x] as usize;
        let word = inp.packed_word(onehot, x, cu);
        debug_assert!(((word >> (8 * cu)) & 0xff) < nnu as u64);
        let q: &[u16; K] = inp.suitability[x * K..x * K + K]
            .try_into()
            .expect("K values");
        let cost: &[f64; K] = inp.cost[cu * K..cu * K + K].try_into().expect("K values");
        let own = inp.own[cu];
        let tp: &mut [f64; K] = (&mut out.tp[kept * K..kept * K + K])
            .try_into()
            .expect("K slots");
        let mut sum = 0.0;
        let mut alive = false;
        for k in 0..K {
            let spk = suitability_from_fixed(q[k]);
            let count = ((word >> (8 * k)) & 0xff) as usize;
            let mut v = spk * omega[k][count] * cost[k];
            if k == cu {
                v *= own;
            }
            tp[k] = v;
            sum += v;
            alive |= (k != cu) & (v > 0.0) & (spk > inp.gate_floor);
        }
        out.x[kept] = x as u32;
        out.cell[kept] = inp.global_row + x as u64;
        out.sum[kept] = sum;
        kept += (alive & (sum > 0.0 || sum.is_nan())) as usize;
    }
    kept
}

/// [`score_row_packed`] for any K and N: the counts in a 256-entry array.
pub(super) fn score_row_counts(
    inp: &RowInput,
    k: usize,
    weights: &[f64],
    sp: &mut [f64],
    out: RowOutput,
) -> usize {
    let n = inp.n;
    let nn1f = (n * n - 1) as f64;
    let mut counts = [0u32; 256];
    let mut kept = 0;
    for j in 0..out.x.len() {
        let x = out.x[j] as usize;
        let cu = inp.crow[x] as usize;
        for (d, &q) in sp.iter_mut().zip(&inp.suitability[x * k..x * k + k]) {
            *d = suitability_from_fixed(q);
        }
        neighbour_counts(inp.window, x, inp.y, n, &mut counts);
        if inp.transitions {
            start_counts(inp.window, inp.start, x, inp.y, n, &mut counts);
        }
        debug_assert!(counts[cu] as f64 <= nn1f);
        let cost_row = &inp.cost[cu * k..(cu + 1) * k];
        let tp = &mut out.tp[kept * k..(kept + 1) * k];
        let mut sum = 0.0;
        let mut alive = false;
        for (kc, t) in tp.iter_mut().enumerate() {
            let om = counts[kc] as f64 / nn1f * weights[kc];
            let mut v = sp[kc] * om * cost_row[kc];
            if kc == cu {
                v *= inp.own[cu];
            }
            *t = v;
            sum += v;
            alive |= (kc != cu) & (v > 0.0) & (sp[kc] > inp.gate_floor);
        }
        counts[..k].iter_mut().for_each(|v| *v = 0);
        counts[super::INVALID as usize] = 0;
        out.x[kept] = x as u32;
        out.cell[kept] = inp.global_row + x as u64;
        out.sum[kept] = sum;
        kept += (alive & (sum > 0.0 || sum.is_nan())) as usize;
    }
    kept
}
