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
    /// First CA stream; scenario `i` uses `CA_BASE + i`.
    pub const CA_BASE: u32 = 16;
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
