//! Pass 1b of the tile step with AVX2, one cell at a time and its classes in the lanes
//! (up to 8 classes: two vectors of 4 f64).
//!
//! The same numbers as [`score_row_packed`](super::score::score_row_packed): per class
//! `sp = q * (1 / 65535)`, `Omega = count / (N*N - 1) * w_k` (the table's two
//! operations, done in the lanes; when N*N - 1 is a power of two, as for N = 3, the
//! quotient is exact and taken as the product by the exact inverse, the same number), `v = sp * Omega * cost`, then `v * own_k` with
//! `own_k = I_c * 10 K` for the own class and 1 for the others (a product by 1 leaves
//! every value as it is, so no branch on the own class); the sum is taken in class order
//! from the stored scores, as the scalar kernel adds them. Every lane operation is the
//! IEEE operation of the scalar code (no fused multiply-add), so the scores, sums and
//! kept cells are the same bits (test `simd_scores_equal_the_scalar_kernel_bit_for_bit`).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[cfg(target_arch = "x86_64")]
use super::score::{prefetch, RowInput, RowOutput, PREFETCH_AHEAD};
#[cfg(target_arch = "x86_64")]
use super::step::SUITABILITY_ONE;

/// Per-tile-step tables of the lane kernel, each padded to 8 lanes.
#[derive(Clone, Debug, Default)]
pub(super) struct LaneTables {
    /// Neighbourhood weight w_k per class (0 past K).
    pub weights: [f64; 8],
    /// Conversion cost row of each current class (0 past K).
    pub cost: Vec<[f64; 8]>,
    /// Per current class c: `I_c * 10 K` in lane c, 1 in the other lanes.
    pub own: Vec<[f64; 8]>,
    /// Per current class c: the bits of the other classes below K.
    pub others: Vec<u32>,
}

impl LaneTables {
    /// Fills the tables for K classes from the weights, the row-major K x K cost and
    /// the own-class factor per class.
    pub fn fill(&mut self, weights: &[f64], cost: &[f64], own: &[f64]) {
        let kk = weights.len();
        debug_assert!(kk <= 8 && cost.len() == kk * kk && own.len() == kk);
        self.weights = [0.0; 8];
        self.weights[..kk].copy_from_slice(weights);
        self.cost.clear();
        self.own.clear();
        self.others.clear();
        for c in 0..kk {
            let mut row = [0.0; 8];
            row[..kk].copy_from_slice(&cost[c * kk..(c + 1) * kk]);
            self.cost.push(row);
            let mut f = [1.0; 8];
            f[c] = own[c];
            self.own.push(f);
            self.others.push(((1u32 << kk) - 1) & !(1 << c));
        }
    }
}

/// [`score_row_packed`](super::score::score_row_packed) with the classes in AVX2 lanes
/// (K <= 8, N <= 15, the packed neighbour count). Instead of the scores, `out.tp`
/// takes per kept cell the roulette's running sums ([`roulette_partials_avx2`]) and `out.pos`
/// the bits of its classes of positive score. Returns the number of kept cells.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn score_row_lanes<const K: usize>(
    inp: &RowInput,
    onehot: &[u64; 256],
    tables: &LaneTables,
    out: RowOutput,
) -> usize {
    debug_assert!((1..=8).contains(&K));
    let m = out.x.len();
    assert!(out.tp.len() >= m * K && out.cell.len() >= m && out.sum.len() >= m);
    assert!(out.pos.len() >= m);
    assert!(tables.cost.len() >= K && tables.own.len() >= K && tables.others.len() >= K);
    let nnu = inp.n * inp.n;
    let divisor = _mm256_set1_pd((nnu - 1) as f64);
    // N*N - 1 a power of two (N = 3: 8): a count divided by it is exact, and so is the
    // product by its inverse, so they are the same number (and the product is cheaper)
    let inverse = ((nnu - 1).is_power_of_two()).then(|| _mm256_set1_pd(1.0 / (nnu - 1) as f64));
    let share = |counts: __m128i| {
        let c = _mm256_cvtepi32_pd(counts);
        match inverse {
            Some(inv) => _mm256_mul_pd(c, inv),
            None => _mm256_div_pd(c, divisor),
        }
    };
    let unit = _mm256_set1_pd(1.0 / SUITABILITY_ONE as f64);
    let floor = _mm256_set1_pd(inp.gate_floor);
    let zero = _mm256_setzero_pd();
    let w_lo = _mm256_loadu_pd(tables.weights.as_ptr());
    let w_hi = _mm256_loadu_pd(tables.weights.as_ptr().add(4));
    let suit = inp.suitability;
    let mut kept = 0;
    for j in 0..m {
        let x = out.x[j] as usize;
        prefetch(suit, out.x[(j + PREFETCH_AHEAD).min(m - 1)] as usize * K);
        let cu = inp.crow[x] as usize;
        assert!(cu < K);
        let word = inp.packed_word(onehot, x, cu);
        debug_assert!(((word >> (8 * cu)) & 0xff) < nnu as u64);
        // the counts (one byte per class) as 8 x i32, then f64 per half
        let counts = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(word as i64));
        // the cell's K suitability codes; 8 read at once where the table goes on
        let base = x * K;
        let codes = if base + 8 <= suit.len() {
            _mm_loadu_si128(suit.as_ptr().add(base).cast())
        } else {
            let mut q = [0u16; 8];
            q[..K].copy_from_slice(&suit[base..base + K]);
            _mm_loadu_si128(q.as_ptr().cast())
        };
        let codes = _mm256_cvtepu16_epi32(codes);
        let cost = tables.cost[cu].as_ptr();
        let own = tables.own[cu].as_ptr();
        let slot = out.tp.as_mut_ptr().add(kept * K);
        // classes 0..4
        let sp_lo = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(codes)), unit);
        let om_lo = _mm256_mul_pd(share(_mm256_castsi256_si128(counts)), w_lo);
        let v_lo = _mm256_mul_pd(
            _mm256_mul_pd(_mm256_mul_pd(sp_lo, om_lo), _mm256_loadu_pd(cost)),
            _mm256_loadu_pd(own),
        );
        // the scores, and the positive ones (others +0)
        let mut v = [0.0f64; 8];
        let mut vpos = [0.0f64; 8];
        let pos_lo = _mm256_cmp_pd::<_CMP_GT_OQ>(v_lo, zero);
        _mm256_storeu_pd(v.as_mut_ptr(), v_lo);
        _mm256_storeu_pd(vpos.as_mut_ptr(), _mm256_and_pd(v_lo, pos_lo));
        let mut pos = _mm256_movemask_pd(pos_lo) as u32;
        let mut live = _mm256_movemask_pd(_mm256_and_pd(
            pos_lo,
            _mm256_cmp_pd::<_CMP_GT_OQ>(sp_lo, floor),
        )) as u32;
        if K > 4 {
            // classes 4..8
            let sp_hi = _mm256_mul_pd(
                _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(codes)),
                unit,
            );
            let om_hi = _mm256_mul_pd(share(_mm256_extracti128_si256::<1>(counts)), w_hi);
            let v_hi = _mm256_mul_pd(
                _mm256_mul_pd(_mm256_mul_pd(sp_hi, om_hi), _mm256_loadu_pd(cost.add(4))),
                _mm256_loadu_pd(own.add(4)),
            );
            let pos_hi = _mm256_cmp_pd::<_CMP_GT_OQ>(v_hi, zero);
            _mm256_storeu_pd(v.as_mut_ptr().add(4), v_hi);
            _mm256_storeu_pd(vpos.as_mut_ptr().add(4), _mm256_and_pd(v_hi, pos_hi));
            pos |= (_mm256_movemask_pd(pos_hi) as u32) << 4;
            live |= (_mm256_movemask_pd(_mm256_and_pd(
                pos_hi,
                _mm256_cmp_pd::<_CMP_GT_OQ>(sp_hi, floor),
            )) as u32)
                << 4;
        }
        // the sum in class order, as the scalar kernel; and the roulette's running
        // sums, which add the positive scores only (adding +0 to a sum of positive
        // numbers leaves it as it is)
        let mut sum = 0.0;
        let mut acc = 0.0;
        for k in 0..K {
            sum += v[k];
            acc += vpos[k];
            *slot.add(k) = acc;
        }
        let alive = live & tables.others[cu] != 0;
        out.pos[kept] = pos as u8;
        out.x[kept] = x as u32;
        out.cell[kept] = inp.global_row + x as u64;
        out.sum[kept] = sum;
        kept += (alive & (sum > 0.0 || sum.is_nan())) as usize;
    }
    kept
}

/// The [`roulette`](super::step::roulette) from its running sums: `partials[k]` is the
/// sum of the positive scores of classes 0..=k (a class of score <= 0 or NaN adds +0,
/// which the roulette skips), `pos` the bits of the classes of positive score (below K;
/// `partials` is read for 8 classes, those past K are not in `pos`). The first positive
/// class whose running sum exceeds `u1 * sum`, else the last positive class, as the
/// roulette's walk: the same class for every input, with the 8 comparisons in two AVX2
/// instructions and no branch per class.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn roulette_partials_avx2(
    partials: &[f64],
    pos: u8,
    sum: f64,
    u1: f64,
) -> Option<usize> {
    if sum <= 0.0 {
        return None;
    }
    let p: &[f64; 8] = partials[..8].try_into().expect("8 running sums");
    let target = _mm256_set1_pd(u1 * sum);
    let lo = _mm256_cmp_pd::<_CMP_LT_OQ>(target, _mm256_loadu_pd(p.as_ptr()));
    let hi = _mm256_cmp_pd::<_CMP_LT_OQ>(target, _mm256_loadu_pd(p.as_ptr().add(4)));
    let hits = (_mm256_movemask_pd(lo) | (_mm256_movemask_pd(hi) << 4)) as u32;
    pick(hits, pos)
}

/// The first class of `hits & pos`, else the last of `pos`, else none.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pick(hits: u32, pos: u8) -> Option<usize> {
    let first = hits & pos as u32;
    if first != 0 {
        Some(first.trailing_zeros() as usize)
    } else if pos != 0 {
        Some(31 - (pos as u32).leading_zeros() as usize)
    } else {
        None
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::ca::score::score_row_packed;
    use crate::ca::step::{roulette, suitability_from_fixed, ClassWindow};
    use crate::ca::INVALID;
    use crate::rng::CounterRng;

    /// The roulette of the scores `tp` from the running sums and positive bits the lane
    /// kernel stores (the rule of its doc: positive scores only).
    fn partials_of(tp: &[f64]) -> ([f64; 8], u8) {
        let (mut p, mut pos, mut acc) = ([0.0; 8], 0u8, 0.0);
        for (k, &v) in tp.iter().enumerate() {
            if v > 0.0 {
                acc += v;
                pos |= 1 << k;
            }
            p[k] = acc;
        }
        (p, pos)
    }

    #[test]
    fn roulette_from_running_sums_equals_the_roulette_walk() {
        // Hand-built scores: zeros, a negative and a NaN score (skipped by the walk),
        // a single positive class, none; and u1 on the class boundaries: with scores
        // [0, 2, -1, NaN, 3, 0, 5] (sum of the positive ones 10) u1 = 0.2 gives the
        // target 2, not below the running sum 2 of class 1, so class 4 (running sum 5).
        let cases: [&[f64]; 6] = [
            &[0.0, 2.0, -1.0, f64::NAN, 3.0, 0.0, 5.0],
            &[1.0],
            &[0.0, 0.0, 4.0],
            &[0.0, -2.0, 0.0, 0.0, 0.0],
            &[0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25],
            &[1e-300, 1e300, 7.0, 0.0],
        ];
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: the lane kernel is not used here");
            return;
        }
        let (p, pos) = partials_of(cases[0]);
        // SAFETY: AVX2 was detected just above.
        assert_eq!(
            unsafe { roulette_partials_avx2(&p, pos, 10.0, 0.2) },
            Some(4)
        );
        assert_eq!(roulette(cases[0], 10.0, 0.2), Some(4));
        let rng = CounterRng::new(5);
        for (i, tp) in cases.iter().enumerate() {
            let sum: f64 = tp.iter().filter(|v| **v > 0.0).sum();
            let (p, pos) = partials_of(tp);
            let mut us: Vec<f64> = (0..2000)
                .map(|d| CounterRng::unit(rng.block(0, i as u32, d, 0)[0]))
                .collect();
            // u1 at and around every boundary p_k / sum, and the ends of (0, 1)
            for &a in &p {
                let u = a / sum;
                us.extend([u, u.next_down(), u.next_up()]);
            }
            us.extend([CounterRng::unit(0), CounterRng::unit(u32::MAX), 1.0]);
            for &s in &[sum, sum * 1.5, 0.0, -1.0, f64::NAN] {
                for &u1 in &us {
                    let want = roulette(tp, s, u1);
                    // SAFETY: the test returned above without AVX2.
                    let got = unsafe { roulette_partials_avx2(&p, pos, s, u1) };
                    assert_eq!(got, want, "case {i} u1 {u1}");
                }
            }
        }
    }

    /// Scores every valid cell of every row of a random window with the scalar kernel
    /// and the lane kernel; both must keep the same cells with the same sums (bits),
    /// and the lane kernel's running sums must give the scalar scores' roulette.
    fn lanes_equal_scalar<const K: usize>(n: usize, case: u32) -> usize {
        let rng = CounterRng::new(77);
        let draw = |i: u64, d: u8, m: u64| rng.below(case, K as u32, i, d, m);
        let r = (n - 1) / 2;
        let (w, h) = (45usize, 9usize);
        let stride = w + 2 * r;
        // patches of one class with single cells of others, invalid cells and halo
        let data: Vec<u8> = (0..stride * (h + 2 * r))
            .map(|i| {
                let (x, y) = ((i % stride) as u64, (i / stride) as u64);
                match draw(i as u64, 0, 10) {
                    0 => INVALID,
                    1 | 2 => draw(i as u64, 1, K as u64) as u8,
                    _ => draw((x / 4) * 7 + y / 3, 2, K as u64) as u8,
                }
            })
            .collect();
        let window = ClassWindow {
            data: &data,
            stride,
        };
        // suitability codes with 0 and 65535 among them
        let suit: Vec<u16> = (0..w * h * K)
            .map(|i| match draw(i as u64, 3, 8) {
                0 => 0,
                1 => u16::MAX,
                _ => draw(i as u64, 4, 65536) as u16,
            })
            .collect();
        // a weight and a cost of 0 from K = 3 on (classes that score 0)
        let weights: Vec<f64> = (0..K)
            .map(|k| match k {
                2 => 0.0,
                _ => (1 + draw(k as u64, 5, 10)) as f64 / 10.0,
            })
            .collect();
        let cost: Vec<f64> = (0..K * K)
            .map(|i| match i % 7 {
                5 => 0.0,
                _ => (1 + draw(i as u64, 6, 4)) as f64 / 4.0,
            })
            .collect();
        let own: Vec<f64> = (0..K)
            .map(|k| (0.3 + draw(k as u64, 7, 100) as f64 / 40.0) * 10.0 * K as f64)
            .collect();
        let nn1 = (n * n - 1) as f64;
        let omega: Vec<[f64; 256]> = weights
            .iter()
            .map(|&wk| std::array::from_fn(|c| c as f64 / nn1 * wk))
            .collect();
        let mut onehot = [0u64; 256];
        for (c, v) in onehot.iter_mut().enumerate().take(K) {
            *v = 1 << (8 * c);
        }
        let mut tables = LaneTables::default();
        tables.fill(&weights, &cost, &own);
        let mut kept_all = 0;
        for y in 0..h {
            let crow = &data[(y + r) * stride + r..(y + r) * stride + r + w];
            let xs: Vec<u32> = (0..w as u32)
                .filter(|&x| crow[x as usize] != INVALID)
                .collect();
            let m = xs.len();
            let inp = RowInput {
                window: &window,
                start: &[],
                transitions: false,
                n,
                y,
                crow,
                suitability: &suit[y * w * K..],
                cost: &cost,
                own: &own,
                gate_floor: (1.0 / K as f64) / (1.0 + (y % 4) as f64),
                global_row: (y * w) as u64,
            };
            let (mut x1, mut c1, mut s1, mut t1) =
                (xs.clone(), vec![0; m], vec![0.0; m], vec![0.0; m * K]);
            let k1 = score_row_packed::<K>(
                &inp,
                &onehot,
                &omega,
                RowOutput {
                    x: &mut x1,
                    cell: &mut c1,
                    sum: &mut s1,
                    tp: &mut t1,
                    pos: &mut [],
                },
            );
            let (mut x2, mut c2, mut s2, mut t2, mut p2) = (
                xs.clone(),
                vec![0; m],
                vec![0.0; m],
                vec![0.0; m * K + 8],
                vec![0u8; m],
            );
            // SAFETY: the caller checked AVX2.
            let k2 = unsafe {
                score_row_lanes::<K>(
                    &inp,
                    &onehot,
                    &tables,
                    RowOutput {
                        x: &mut x2,
                        cell: &mut c2,
                        sum: &mut s2,
                        tp: &mut t2,
                        pos: &mut p2,
                    },
                )
            };
            assert_eq!(k1, k2, "K={K} N={n} row {y}: kept cells");
            assert_eq!(x1[..k1], x2[..k2], "K={K} N={n} row {y}");
            assert_eq!(c1[..k1], c2[..k2], "K={K} N={n} row {y}");
            for j in 0..k1 {
                assert_eq!(s1[j].to_bits(), s2[j].to_bits(), "K={K} row {y} cell {j}");
                let tp = &t1[j * K..(j + 1) * K];
                let (p, pos) = partials_of(tp);
                assert_eq!(p[..K], t2[j * K..(j + 1) * K], "K={K} row {y} cell {j}");
                assert_eq!(pos, p2[j], "K={K} row {y} cell {j}");
                // and the roulette of the scalar scores, on a few draws
                for d in 0..8u8 {
                    let u1 = CounterRng::unit(rng.block(1, y as u32, j as u64, d)[0]);
                    let want = roulette(tp, s1[j], u1);
                    // SAFETY: the caller checked AVX2.
                    let got = unsafe { roulette_partials_avx2(&t2[j * K..], p2[j], s2[j], u1) };
                    assert_eq!(got, want, "K={K} row {y} cell {j} u1 {u1}");
                }
                // a hand check of one class: sp * count / (N*N - 1) * w * cost (* own)
                let x = x1[j] as usize;
                let cu = crow[x] as usize;
                let mut count = 0;
                for dy in 0..n {
                    for dx in 0..n {
                        count += (data[(y + dy) * stride + x + dx] as usize == K - 1) as u32;
                    }
                }
                count -= (cu == K - 1) as u32;
                let sp = suitability_from_fixed(suit[(y * w + x) * K + K - 1]);
                let mut v = sp * (count as f64 / nn1 * weights[K - 1]) * cost[cu * K + K - 1];
                if cu == K - 1 {
                    v *= own[cu];
                }
                assert_eq!(tp[K - 1].to_bits(), v.to_bits());
            }
            kept_all += k1;
        }
        kept_all
    }

    #[test]
    fn simd_scores_equal_the_scalar_kernel_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: the lane kernel is not used here");
            return;
        }
        // every K of the lane kernel, N = 3 (the exact inverse) and N = 5 (division)
        for (case, n) in [3usize, 5].into_iter().enumerate() {
            let case = case as u32;
            let kept = [
                lanes_equal_scalar::<1>(n, case),
                lanes_equal_scalar::<2>(n, case),
                lanes_equal_scalar::<3>(n, case),
                lanes_equal_scalar::<4>(n, case),
                lanes_equal_scalar::<5>(n, case),
                lanes_equal_scalar::<6>(n, case),
                lanes_equal_scalar::<7>(n, case),
                lanes_equal_scalar::<8>(n, case),
            ];
            // K = 1 keeps nothing (no other class); the others keep cells
            assert_eq!(kept[0], 0);
            assert!(kept[1..].iter().all(|&k| k > 20), "N={n}: kept {kept:?}");
        }
    }
}
