//! The sums of one local fit: A = X'WX (upper triangle), g = X'Wy and B = X'W^2X over a
//! point's neighbours, by blocks of neighbours and register tiles.
//!
//! Every entry is summed in one fixed order, that of [`dot`]: [`LANES`] interleaved
//! partial sums (neighbour t goes to lane t mod 4, in ascending t), combined
//! `(l0 + l1) + (l2 + l3)`, then the last `k mod 4` neighbours added one by one; each
//! product is `(w_t x_at) x_bt` (or `(w_t x_at)(w_t x_bt)` in B). The blocks only decide
//! when a lane's running sum is kept in a register or in memory, never which additions
//! happen or in what order, so the result is the same bits as the straightforward sum
//! (tests below and in `local.rs`).
//!
//! Why blocks and tiles: the neighbours' columns of a large neighbourhood (p x k values,
//! 100 KB for k = 1,226) do not fit in L1, and computing one entry (or one row of
//! entries) at a time streams them from L2 once per row; the weighted columns were also
//! stored and loaded again. Here a block of [`BLOCK`] neighbours is gathered (its
//! columns and y) and weighted into L1 buffers, and every entry's lanes advance over the
//! block in tiles of 2 rows x 4 columns (8 independent sums of 4 lanes in registers, 6
//! loads for 8 products per lane group instead of 9).

/// Lanes of every sum: independent partial sums the compiler keeps in vector registers.
pub(super) const LANES: usize = 4;

/// Neighbours per block (a multiple of [`LANES`]): the block's p + 1 columns and p
/// weighted columns, 2 (p + 1) x 1 KB for p = 10, stay in L1.
const BLOCK: usize = 128;

/// The dot product of two equally long slices in the fixed order of the module
/// documentation (the reference the tiles reproduce).
#[cfg(test)]
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Reusable buffers of [`local_sums`] (nothing is allocated per point).
#[derive(Debug, Default)]
pub(super) struct SumBuffers {
    /// The block's columns: `xb[a * BLOCK + t] = X[idx[t], a]`, and y as column p.
    xb: Vec<f64>,
    /// The block's weighted columns: `wb[a * BLOCK + t] = w_t X[idx[t], a]`.
    wb: Vec<f64>,
    /// Lane sums of A and g: entry (a, b) at `a * (p + 1) + b`, b = p for g.
    acc_a: Vec<[f64; LANES]>,
    /// Lane sums of B: entry (a, b) at `a * p + b`.
    acc_b: Vec<[f64; LANES]>,
}

/// The sums of one neighbourhood: the neighbours `idx` (rows of the row-major `design`
/// of p columns, and of `y`) with weights `w`. Writes the upper triangles of A = X'WX
/// into `a` and, if `full`, of B = X'W^2X into `b` (row-major p x p; the entries below
/// the diagonal are left alone), and X'Wy into `g`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn local_sums(
    design: &[f64],
    y: &[f64],
    p: usize,
    idx: &[usize],
    w: &[f64],
    full: bool,
    buf: &mut SumBuffers,
    out: (&mut [f64], &mut [f64], &mut [f64]),
) {
    let (a_out, b_out, g_out) = out;
    let m = p + 1;
    let k = idx.len();
    buf.xb.resize(m * BLOCK, 0.0);
    buf.wb.resize(p * BLOCK, 0.0);
    buf.acc_a.clear();
    buf.acc_a.resize(p * m, [0.0; LANES]);
    buf.acc_b.clear();
    if full {
        buf.acc_b.resize(p * p, [0.0; LANES]);
    }
    // the length of the last block and its whole lane groups (the tail lies between)
    let (mut len, mut n4) = (0, 0);
    for start in (0..k).step_by(BLOCK) {
        len = (k - start).min(BLOCK);
        n4 = len - len % LANES;
        let rows = &idx[start..start + len];
        gather_block(design, y, p, rows, &mut buf.xb);
        weigh_block(&w[start..start + len], &buf.xb, p, &mut buf.wb);
        upper_tiles(&buf.wb, &buf.xb, p, m, n4, &mut buf.acc_a);
        if full {
            upper_tiles(&buf.wb, &buf.wb, p, p, n4, &mut buf.acc_b);
        }
    }
    // combine the lanes, then the last block's tail, neighbour by neighbour
    let finish = |acc: &[f64; LANES], row: &[f64], col: &[f64]| {
        let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for u in n4..len {
            s += row[u] * col[u];
        }
        s
    };
    for ra in 0..p {
        let row = &buf.wb[ra * BLOCK..(ra + 1) * BLOCK];
        for cb in ra..m {
            let col = &buf.xb[cb * BLOCK..(cb + 1) * BLOCK];
            let s = finish(&buf.acc_a[ra * m + cb], row, col);
            if cb < p {
                a_out[ra * p + cb] = s;
            } else {
                g_out[ra] = s;
            }
        }
        if full {
            for cb in ra..p {
                let col = &buf.wb[cb * BLOCK..(cb + 1) * BLOCK];
                b_out[ra * p + cb] = finish(&buf.acc_b[ra * p + cb], row, col);
            }
        }
    }
}

/// Copies the rows `rows` of `design` (p columns) and of `y` into the block's columns:
/// four rows at a time, so that each column receives one store of four values (the
/// store port, one per cycle, bounded a row-at-a-time copy), then the remaining rows.
#[inline(always)]
fn gather_block(design: &[f64], y: &[f64], p: usize, rows: &[usize], xb: &mut [f64]) {
    let groups = rows.chunks_exact(LANES);
    let rest = groups.remainder();
    for (g, four) in groups.enumerate() {
        let t = g * LANES;
        let r: [&[f64]; LANES] = std::array::from_fn(|l| &design[four[l] * p..(four[l] + 1) * p]);
        for a in 0..p {
            let v = [r[0][a], r[1][a], r[2][a], r[3][a]];
            xb[a * BLOCK + t..a * BLOCK + t + LANES].copy_from_slice(&v);
        }
        let v = [y[four[0]], y[four[1]], y[four[2]], y[four[3]]];
        xb[p * BLOCK + t..p * BLOCK + t + LANES].copy_from_slice(&v);
    }
    let done = rows.len() - rest.len();
    for (t, &j) in rest.iter().enumerate().map(|(u, j)| (done + u, j)) {
        let row = &design[j * p..(j + 1) * p];
        for (a, &v) in row.iter().enumerate() {
            xb[a * BLOCK + t] = v;
        }
        xb[p * BLOCK + t] = y[j];
    }
}

/// `wb[a][t] = w[t] * xb[a][t]` for the block's p factor columns.
#[inline(always)]
fn weigh_block(w: &[f64], xb: &[f64], p: usize, wb: &mut [f64]) {
    let len = w.len();
    for a in 0..p {
        let col = &xb[a * BLOCK..a * BLOCK + len];
        let out = &mut wb[a * BLOCK..a * BLOCK + len];
        for ((o, &wt), &v) in out.iter_mut().zip(w).zip(col) {
            *o = wt * v;
        }
    }
}

/// Advances the lane sums of the entries (a, b), b >= a, of rows(p rows) x cols (`ncols`
/// columns) over the block's first `n4` neighbours, two rows and up to four columns at
/// a time (the entry (a + 1, a) of a pair of rows is computed and never read).
#[inline(always)]
fn upper_tiles(
    rows: &[f64],
    cols: &[f64],
    p: usize,
    ncols: usize,
    n4: usize,
    acc: &mut [[f64; LANES]],
) {
    let mut a = 0;
    while a < p {
        let pair = a + 1 < p;
        let mut b = a;
        while b < ncols {
            let c = (ncols - b).min(4);
            let at = (a, b, ncols, n4);
            match (pair, c) {
                (true, 4) => tile::<2, 4>(rows, cols, at, acc),
                (true, 3) => tile::<2, 3>(rows, cols, at, acc),
                (true, 2) => tile::<2, 2>(rows, cols, at, acc),
                (true, _) => tile::<2, 1>(rows, cols, at, acc),
                (false, 4) => tile::<1, 4>(rows, cols, at, acc),
                (false, 3) => tile::<1, 3>(rows, cols, at, acc),
                (false, 2) => tile::<1, 2>(rows, cols, at, acc),
                (false, _) => tile::<1, 1>(rows, cols, at, acc),
            }
            b += c;
        }
        a += if pair { 2 } else { 1 };
    }
}

/// The R x C entries from (a, b) (`at` = (a, b, ncols, n4)): their lane sums are loaded
/// into registers, advanced over neighbours 0..n4 of the block (4 at a time, each lane
/// its own chain of additions) and stored back.
#[inline(always)]
fn tile<const R: usize, const C: usize>(
    rows: &[f64],
    cols: &[f64],
    at: (usize, usize, usize, usize),
    acc: &mut [[f64; LANES]],
) {
    let (a, b, ncols, n4) = at;
    let mut r = [[[0.0f64; LANES]; C]; R];
    for (i, ri) in r.iter_mut().enumerate() {
        ri.copy_from_slice(&acc[(a + i) * ncols + b..(a + i) * ncols + b + C]);
    }
    let rs: [&[f64]; R] = std::array::from_fn(|i| &rows[(a + i) * BLOCK..(a + i) * BLOCK + n4]);
    let cs: [&[f64]; C] = std::array::from_fn(|j| &cols[(b + j) * BLOCK..(b + j) * BLOCK + n4]);
    let mut t = 0;
    while t < n4 {
        let ys: [&[f64; LANES]; C] =
            std::array::from_fn(|j| cs[j][t..t + LANES].try_into().expect("LANES values"));
        for i in 0..R {
            let x: &[f64; LANES] = rs[i][t..t + LANES].try_into().expect("LANES values");
            for j in 0..C {
                for l in 0..LANES {
                    r[i][j][l] += x[l] * ys[j][l];
                }
            }
        }
        t += LANES;
    }
    for (i, ri) in r.iter().enumerate() {
        acc[(a + i) * ncols + b..(a + i) * ncols + b + C].copy_from_slice(ri);
    }
}

/// What the bit-for-bit tests of the sums compare against.
#[cfg(test)]
pub(crate) mod reference {
    use super::LANES;
    use crate::rng::CounterRng;

    /// `n` values of mixed sign and magnitude (Philox, generator `seed`, `stream`), so
    /// that another order of summation would show in the last bits.
    pub(crate) fn values(seed: u64, stream: u32, n: usize) -> Vec<f64> {
        let rng = CounterRng::new(seed);
        (0..n as u64)
            .map(|i| {
                let b = rng.block(stream, 0, i, 0);
                (CounterRng::unit(b[0]) - 0.5) * 10f64.powi((b[1] % 7) as i32 - 3)
            })
            .collect()
    }

    /// The straightforward sum written out term by term: term t into lane t mod 4 for
    /// the whole lane groups, lanes combined pairwise, then the tail.
    pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
        let full = a.len() - a.len() % LANES;
        let mut acc = [0.0f64; LANES];
        for t in 0..full {
            acc[t % LANES] += a[t] * b[t];
        }
        let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for t in full..a.len() {
            s += a[t] * b[t];
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reference::dot as reference_dot;

    /// Every entry of A, B and g from the blocks and tiles equals the straightforward sum
    /// over the neighbours (rows read one by one, weighted products summed term by term)
    /// to the bit, for neighbourhoods around the lane width and the block size (k = 0 to
    /// 1,947, one to four blocks, with and without a tail) and p = 1..=11 (even and odd
    /// rows, every column remainder); the neighbours are listed out of order and with
    /// gaps, as a grid query gives them.
    #[test]
    fn blocked_tiles_equal_the_straightforward_sums_bit_for_bit() {
        let n = 2500;
        for p in 1..=11usize {
            let design = reference::values(13, 1 + p as u32, n * p);
            let y = reference::values(13, 30, n);
            let mut buf = SumBuffers::default();
            for k in [0usize, 1, 3, 4, 5, 127, 128, 129, 130, 256, 394, 515, 1947] {
                let idx: Vec<usize> = (0..k).map(|t| (t * 7 + t / 3) % n).collect();
                let w: Vec<f64> = reference::values(13, 40, k)
                    .iter()
                    .map(|v| v.abs())
                    .collect();
                for full in [false, true] {
                    let (mut a, mut b, mut g) = (
                        vec![f64::NAN; p * p],
                        vec![f64::NAN; p * p],
                        vec![f64::NAN; p],
                    );
                    local_sums(
                        &design,
                        &y,
                        p,
                        &idx,
                        &w,
                        full,
                        &mut buf,
                        (&mut a, &mut b, &mut g),
                    );
                    let col =
                        |c: usize| -> Vec<f64> { idx.iter().map(|&j| design[j * p + c]).collect() };
                    let wcol = |c: usize| -> Vec<f64> {
                        idx.iter()
                            .zip(&w)
                            .map(|(&j, &wt)| wt * design[j * p + c])
                            .collect()
                    };
                    let ys: Vec<f64> = idx.iter().map(|&j| y[j]).collect();
                    for r in 0..p {
                        let wr = wcol(r);
                        let want = reference_dot(&wr, &ys);
                        assert_eq!(g[r].to_bits(), want.to_bits(), "g p {p} k {k} ({r})");
                        assert_eq!(dot(&wr, &ys).to_bits(), want.to_bits());
                        for c in r..p {
                            let want = reference_dot(&wr, &col(c));
                            let at = format!("p {p} k {k} full {full} ({r},{c})");
                            assert_eq!(a[r * p + c].to_bits(), want.to_bits(), "A {at}");
                            if full {
                                let want = reference_dot(&wr, &wcol(c));
                                assert_eq!(b[r * p + c].to_bits(), want.to_bits(), "B {at}");
                            }
                        }
                    }
                }
            }
        }
    }
}
