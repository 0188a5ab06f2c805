//! Counter-based random numbers: Philox4x32-10 (Salmon et al. 2011, Random123).
//!
//! Every random number of a run is a pure function of (seed, stream, iteration, cell,
//! draw): nothing depends on the order in which cells are visited, on the tiling, on
//! the thread count or on a worker's history. A "stream" separates independent uses
//! (one per scenario for the CA, others for ANN sampling and training, GWR sampling).

/// Philox4x32 round multipliers and Weyl key increments (Random123).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64) * (b as u64);
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32-10 block: 10 rounds over the 128-bit counter `ctr` with the 64-bit `key`.
#[inline]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Counters per call of [`philox4x32_10_lanes`]: 8 lanes of u32 (with u64 products)
/// fill SSE2's 128-bit registers twice over, so the rounds vectorise on baseline x86-64.
pub const LANES: usize = 8;

/// [`philox4x32_10`] on [`LANES`] counters with one key, struct-of-arrays: `ctr[w][i]`
/// is word `w` of lane `i`'s counter on entry and of its output block on return. Each
/// lane equals the scalar function of its counter; the lanes only share instructions
/// (on x86-64 with AVX2, detected at run time, all 8 lanes in one register; otherwise
/// SSE2 — part of the baseline — 4 lanes per register, 32 x 32 -> 64-bit products by
/// `pmuludq`; elsewhere a plain loop). Integer arithmetic only: every path gives the
/// same bits.
#[inline]
pub fn philox4x32_10_lanes(ctr: &mut [[u32; LANES]; 4], key: [u32; 2]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected on this CPU just above.
            unsafe { avx2::philox_lanes(ctr, key) }
        } else {
            // SAFETY: SSE2 is part of every x86-64 CPU (the target's baseline).
            unsafe { sse2::philox_lanes(ctr, key) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let [mut c0, mut c1, mut c2, mut c3] = *ctr;
        let mut k = key;
        for round in 0..10 {
            if round > 0 {
                k[0] = k[0].wrapping_add(W0);
                k[1] = k[1].wrapping_add(W1);
            }
            for i in 0..LANES {
                let (hi0, lo0) = mulhilo(M0, c0[i]);
                let (hi1, lo1) = mulhilo(M1, c2[i]);
                let n0 = hi1 ^ c1[i] ^ k[0];
                let n2 = hi0 ^ c3[i] ^ k[1];
                c0[i] = n0;
                c1[i] = lo1;
                c2[i] = n2;
                c3[i] = lo0;
            }
        }
        *ctr = [c0, c1, c2, c3];
    }
}

/// Philox lanes with SSE2 (always present on x86-64).
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::{LANES, M0, M1, W0, W1};
    use std::arch::x86_64::*;

    /// (high words, low words) of the 32 x 32 -> 64-bit products of the 4 lanes of `a`
    /// with the constant in both halves of every 64-bit slot of `m`.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn mulhilo4(a: __m128i, m: __m128i) -> (__m128i, __m128i) {
        let even = _mm_mul_epu32(a, m); // lanes 0, 2 as u64
        let odd = _mm_mul_epu32(_mm_srli_epi64::<32>(a), m); // lanes 1, 3
        let lo_mask = _mm_set1_epi64x(0xFFFF_FFFF);
        let hi = _mm_or_si128(_mm_srli_epi64::<32>(even), _mm_andnot_si128(lo_mask, odd));
        let lo = _mm_or_si128(_mm_and_si128(even, lo_mask), _mm_slli_epi64::<32>(odd));
        (hi, lo)
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn load(v: &[u32; LANES], half: usize) -> __m128i {
        let a = &v[4 * half..4 * half + 4];
        _mm_set_epi32(a[3] as i32, a[2] as i32, a[1] as i32, a[0] as i32)
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn store(x: __m128i, v: &mut [u32; LANES], half: usize) {
        let mut a = [0u32; 4];
        // SAFETY: `a` is 16 bytes; the unaligned store writes exactly those.
        unsafe { _mm_storeu_si128(a.as_mut_ptr().cast(), x) };
        v[4 * half..4 * half + 4].copy_from_slice(&a);
    }

    /// [`super::philox4x32_10_lanes`], 4 lanes per register.
    #[target_feature(enable = "sse2")]
    pub(super) fn philox_lanes(ctr: &mut [[u32; LANES]; 4], key: [u32; 2]) {
        let m0 = _mm_set1_epi64x(M0 as i64);
        let m1 = _mm_set1_epi64x(M1 as i64);
        for half in 0..LANES / 4 {
            let mut c0 = load(&ctr[0], half);
            let mut c1 = load(&ctr[1], half);
            let mut c2 = load(&ctr[2], half);
            let mut c3 = load(&ctr[3], half);
            let mut k = key;
            for round in 0..10 {
                if round > 0 {
                    k[0] = k[0].wrapping_add(W0);
                    k[1] = k[1].wrapping_add(W1);
                }
                let (hi0, lo0) = mulhilo4(c0, m0);
                let (hi1, lo1) = mulhilo4(c2, m1);
                let k0 = _mm_set1_epi32(k[0] as i32);
                let k1 = _mm_set1_epi32(k[1] as i32);
                c0 = _mm_xor_si128(_mm_xor_si128(hi1, c1), k0);
                c1 = lo1;
                c2 = _mm_xor_si128(_mm_xor_si128(hi0, c3), k1);
                c3 = lo0;
            }
            store(c0, &mut ctr[0], half);
            store(c1, &mut ctr[1], half);
            store(c2, &mut ctr[2], half);
            store(c3, &mut ctr[3], half);
        }
    }
}

/// Philox lanes with AVX2: the 8 lanes of a word in one 256-bit register.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{LANES, M0, M1, W0, W1};
    use std::arch::x86_64::*;

    /// (high words, low words) of the 32 x 32 -> 64-bit products of the 8 lanes of `a`
    /// with the constant in both halves of every 64-bit slot of `m`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mulhilo8(a: __m256i, m: __m256i) -> (__m256i, __m256i) {
        let even = _mm256_mul_epu32(a, m); // lanes 0, 2, 4, 6 as u64
        let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), m); // lanes 1, 3, 5, 7
        let lo_mask = _mm256_set1_epi64x(0xFFFF_FFFF);
        let hi = _mm256_or_si256(
            _mm256_srli_epi64::<32>(even),
            _mm256_andnot_si256(lo_mask, odd),
        );
        let lo = _mm256_or_si256(
            _mm256_and_si256(even, lo_mask),
            _mm256_slli_epi64::<32>(odd),
        );
        (hi, lo)
    }

    /// [`super::philox4x32_10_lanes`] with AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) fn philox_lanes(ctr: &mut [[u32; LANES]; 4], key: [u32; 2]) {
        const { assert!(LANES == 8) };
        // SAFETY: each `ctr[w]` is 8 u32 = 32 bytes; the unaligned loads read exactly those.
        let load = |w: &[u32; LANES]| unsafe { _mm256_loadu_si256(w.as_ptr().cast()) };
        let (mut c0, mut c1, mut c2, mut c3) =
            (load(&ctr[0]), load(&ctr[1]), load(&ctr[2]), load(&ctr[3]));
        let m0 = _mm256_set1_epi64x(M0 as i64);
        let m1 = _mm256_set1_epi64x(M1 as i64);
        let mut k = key;
        for round in 0..10 {
            if round > 0 {
                k[0] = k[0].wrapping_add(W0);
                k[1] = k[1].wrapping_add(W1);
            }
            let (hi0, lo0) = mulhilo8(c0, m0);
            let (hi1, lo1) = mulhilo8(c2, m1);
            let k0 = _mm256_set1_epi32(k[0] as i32);
            let k1 = _mm256_set1_epi32(k[1] as i32);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k0);
            c1 = lo1;
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k1);
            c3 = lo0;
        }
        for (w, c) in ctr.iter_mut().zip([c0, c1, c2, c3]) {
            // SAFETY: each `ctr[w]` is 32 bytes; the unaligned store writes exactly those.
            unsafe { _mm256_storeu_si256(w.as_mut_ptr().cast(), c) };
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::{philox4x32_10, sse2, LANES};

        /// Both SIMD paths (whichever the dispatch picks here) give every lane the
        /// scalar function's block, on counters and keys of every bit pattern.
        #[test]
        fn avx2_and_sse2_lanes_equal_the_scalar_function() {
            let mut x = 0x0123_4567_89AB_CDEFu64;
            let mut next = || {
                // splitmix64, a fixed sequence of test inputs
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) as u32
            };
            for _ in 0..200 {
                let key = [next(), next()];
                let mut c = [[0u32; LANES]; 4];
                c.iter_mut().flatten().for_each(|v| *v = next());
                let want: Vec<[u32; 4]> = (0..LANES)
                    .map(|i| philox4x32_10([c[0][i], c[1][i], c[2][i], c[3][i]], key))
                    .collect();
                let mut s = c;
                // SAFETY: SSE2 is part of every x86-64 CPU.
                unsafe { sse2::philox_lanes(&mut s, key) };
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut a = c;
                    // SAFETY: AVX2 was detected just above.
                    unsafe { super::philox_lanes(&mut a, key) };
                    assert_eq!(a, s);
                }
                for (i, w) in want.iter().enumerate() {
                    assert_eq!([s[0][i], s[1][i], s[2][i], s[3][i]], *w, "lane {i}");
                }
            }
        }
    }
}

/// Well-known stream numbers (the CA uses `CA_BASE + scenario index`).
pub mod stream {
    /// Sampling of ANN training cells.
    pub const ANN_SAMPLE: u32 = 1;
    /// ANN weight initialisation.
    pub const ANN_INIT: u32 = 2;
    /// ANN mini-batch order.
    pub const ANN_SHUFFLE: u32 = 3;
    /// GWR sample points.
    pub const GWR_SAMPLE: u32 = 4;
    /// Random-allocation baseline of the validation.
    pub const RANDOM_BASELINE: u32 = 5;
    /// Pilot subsample of a GWR bandwidth search (seeded with a fixed key).
    pub const GWR_PILOT: u32 = 6;
    /// Synthetic land-use maps of `flus bench` (`synth`).
    pub const SYNTH_LULC: u32 = 7;
    /// Synthetic GWR points of `flus bench` (`synth`).
    pub const SYNTH_GWR: u32 = 8;
    /// Bootstrap rows of a random-forest tree (`forest`).
    pub const FOREST_BOOTSTRAP: u32 = 9;
    /// Features tried at a random-forest split (`forest`).
    pub const FOREST_SPLIT: u32 = 10;
    /// Out-of-bag permutations of the random-forest importance (`forest`).
    pub const FOREST_PERMUTE: u32 = 11;
    /// LEAS sample of expansion and non-expansion cells (`forest::leas`).
    pub const LEAS_SAMPLE: u32 = 12;
    /// Permutations of a factor across the GWR sample points (the factor table's
    /// significance test): iteration = permutation, cell = class << 48 | factor << 32 |
    /// point.
    pub const GWR_PERMUTATION: u32 = 13;
    /// Noised drivers of PLUS's LEAS contribution (`forest::contribution`): key = forest,
    /// cell = driver << 40 | position.
    pub const LEAS_NOISE: u32 = 14;
    /// Seeds of ensemble members (`ensemble::member_seed`).
    pub const ENSEMBLE_MEMBER: u32 = 15;
    /// First CA stream; scenario `i` uses `CA_BASE + i`.
    pub const CA_BASE: u32 = 16;
    /// Bit position of the stage in a CA scenario stream ([`ca_scenario`]).
    pub const CA_STAGE_SHIFT: u32 = 16;

    /// The CA stream of scenario `index` (0-based) in stage `stage` of its staged years
    /// (`[markov] target_years`; stage 0 runs from the base map):
    /// `CA_BASE + 1 + index + stage << 16`. Stage 0 is the stream of a one-year run, so a
    /// staged run's first year draws what a direct run to that year draws; each later
    /// stage draws its own numbers (scenario indices below 2^16 - 17 never collide).
    pub const fn ca_scenario(index: usize, stage: usize) -> u32 {
        CA_BASE + 1 + index as u32 + ((stage as u32) << CA_STAGE_SHIFT)
    }

    /// PLUS's patch seeds (CARS, `ca::patches`) of the CA stream `s` use stream
    /// `s + CARS_OFFSET`, keyed by iteration and cell: draw 0 word 0 says whether the cell
    /// is a seed, draw `1 + k / 4` word `k % 4` is class k's draw; a scenario's seeds
    /// never share numbers with its roulette or any other use.
    pub const CARS_OFFSET: u32 = 1 << 23;
}

/// A keyed counter-based generator: `block(stream, iteration, cell, draw)` is a pure
/// function of its arguments and the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRng {
    key: [u32; 2],
}

impl CounterRng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            key: [seed as u32, (seed >> 32) as u32],
        }
    }

    /// Four 32-bit words for (`stream` < 2^24, `iteration`, `cell`, `draw` block < 256).
    ///
    /// Counter layout: [cell low, cell high, iteration, stream << 8 | draw].
    #[inline]
    pub fn block(&self, stream: u32, iteration: u32, cell: u64, draw: u8) -> [u32; 4] {
        debug_assert!(stream < (1 << 24));
        philox4x32_10(
            [
                cell as u32,
                (cell >> 32) as u32,
                iteration,
                (stream << 8) | draw as u32,
            ],
            self.key,
        )
    }

    /// The blocks of `cells` for one (`stream` < 2^24, `iteration`, `draw`): `out[j]`
    /// becomes `block(stream, iteration, cells[j], draw)`, computed [`LANES`] cells at a
    /// time ([`philox4x32_10_lanes`]). `out` must be at least as long as `cells`.
    pub fn blocks(
        &self,
        stream: u32,
        iteration: u32,
        draw: u8,
        cells: &[u64],
        out: &mut [[u32; 4]],
    ) {
        debug_assert!(stream < (1 << 24));
        let tag = (stream << 8) | draw as u32;
        for (cs, os) in cells.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let mut ctr = [[0u32; LANES]; 4];
            for (i, &c) in cs.iter().enumerate() {
                ctr[0][i] = c as u32;
                ctr[1][i] = (c >> 32) as u32;
            }
            ctr[2] = [iteration; LANES];
            ctr[3] = [tag; LANES];
            philox4x32_10_lanes(&mut ctr, self.key);
            for (i, o) in os.iter_mut().take(cs.len()).enumerate() {
                *o = [ctr[0][i], ctr[1][i], ctr[2][i], ctr[3][i]];
            }
        }
    }

    /// A uniform number in (0, 1) from one 32-bit word: (w + 0.5) / 2^32.
    #[inline]
    pub fn unit(word: u32) -> f64 {
        (word as f64 + 0.5) * (1.0 / 4_294_967_296.0)
    }

    /// A uniform integer in 0..n (n > 0) from (stream, iteration, cell, draw), by
    /// 64-bit multiply-shift of two words (bias below 2^-32 for n < 2^32).
    #[inline]
    pub fn below(&self, stream: u32, iteration: u32, cell: u64, draw: u8, n: u64) -> u64 {
        let b = self.block(stream, iteration, cell, draw);
        let x = ((b[0] as u64) << 32) | b[1] as u64;
        ((x as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's published known-answer vectors (tests/kat_vectors, philox4x32 10).
    #[test]
    fn philox4x32_10_matches_random123_known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    /// The lanes run with one key; each known-answer counter goes into every lane in
    /// turn, the other lanes holding counters checked against the scalar function.
    #[test]
    fn philox_lanes_match_random123_known_answers_in_every_lane() {
        let kat: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            (
                [0, 0, 0, 0],
                [0, 0],
                [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
            ),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (ctr, key, want) in kat {
            for lane in 0..LANES {
                let mut c = [[0u32; LANES]; 4];
                for i in 0..LANES {
                    for w in 0..4 {
                        c[w][i] = if i == lane {
                            ctr[w]
                        } else {
                            ctr[w] ^ (0x0101_0101 * (i as u32 + 1)) ^ w as u32
                        };
                    }
                }
                let before = c;
                philox4x32_10_lanes(&mut c, key);
                for i in 0..LANES {
                    let got = [c[0][i], c[1][i], c[2][i], c[3][i]];
                    if i == lane {
                        assert_eq!(got, want, "lane {i}");
                    } else {
                        let ci = [before[0][i], before[1][i], before[2][i], before[3][i]];
                        assert_eq!(got, philox4x32_10(ci, key), "lane {i}");
                    }
                }
            }
        }
    }

    /// `blocks` over many cells (every remainder length, cells above 2^32, several
    /// streams, iterations and draws) equals `block` of each cell.
    #[test]
    fn batched_blocks_equal_the_scalar_block_of_every_cell() {
        let mut out = vec![[0u32; 4]; 64];
        for (seed, stream, iteration, draw) in [
            (0u64, 16u32, 0u32, 0u8),
            (42, 17, 3, 0),
            (0xDEAD_BEEF_0123_4567, (1 << 24) - 1, u32::MAX, 255),
            (u64::MAX, 1, 77, 9),
        ] {
            let r = CounterRng::new(seed);
            for len in 0..=41usize {
                let cells: Vec<u64> = (0..len as u64)
                    .map(|j| j.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (j % 40))
                    .collect();
                out.iter_mut().for_each(|o| *o = [0; 4]);
                r.blocks(stream, iteration, draw, &cells, &mut out);
                for (j, &c) in cells.iter().enumerate() {
                    assert_eq!(out[j], r.block(stream, iteration, c, draw), "cell {c}");
                }
                assert!(out[len..].iter().all(|o| *o == [0; 4]), "past the end");
            }
            // 100 000 consecutive cells in one call
            let cells: Vec<u64> = (0..100_000u64).map(|j| j + (1 << 33)).collect();
            let mut out = vec![[0u32; 4]; cells.len()];
            r.blocks(stream, iteration, draw, &cells, &mut out);
            for (j, &c) in cells.iter().enumerate() {
                assert_eq!(out[j], r.block(stream, iteration, c, draw));
            }
        }
    }

    #[test]
    fn draws_depend_only_on_their_key_not_on_order() {
        let r = CounterRng::new(42);
        let forward: Vec<_> = (0..100u64).map(|c| r.block(16, 3, c, 0)).collect();
        let backward: Vec<_> = (0..100u64).rev().map(|c| r.block(16, 3, c, 0)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
        assert_ne!(r.block(16, 3, 0, 0), r.block(17, 3, 0, 0));
        assert_ne!(r.block(16, 3, 0, 0), r.block(16, 4, 0, 0));
        assert_ne!(r.block(16, 3, 0, 0), r.block(16, 3, 0, 1));
        assert_ne!(CounterRng::new(1).block(16, 3, 0, 0), r.block(16, 3, 0, 0));
    }

    #[test]
    fn uniforms_are_in_the_open_unit_interval_with_the_right_mean() {
        let r = CounterRng::new(7);
        let mut sum = 0.0;
        let n = 100_000u64;
        for c in 0..n {
            let u = CounterRng::unit(r.block(1, 0, c, 0)[0]);
            assert!(u > 0.0 && u < 1.0);
            sum += u;
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.005);
        assert!(CounterRng::unit(0) > 0.0 && CounterRng::unit(u32::MAX) < 1.0);
        for c in 0..1000 {
            assert!(r.below(2, 0, c, 0, 7) < 7);
        }
    }
}
