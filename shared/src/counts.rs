//! Counting over the cells of a map on every thread: each block of cells adds into its
//! own bins, the blocks' bins are summed (sums of counts: the same in any order).

use std::ops::Range;

use rayon::prelude::*;

/// Cells per block.
const BLOCK: usize = 1 << 16;

/// `bins` counts over cells `0..cells`: `count(range, bins)` adds the counts of a block
/// of cells into its block's bins; the blocks run on the threads and their bins are
/// added up.
pub fn block_counts(
    cells: usize,
    bins: usize,
    count: impl Fn(Range<usize>, &mut [u64]) + Sync,
) -> Vec<u64> {
    (0..cells.div_ceil(BLOCK))
        .into_par_iter()
        .fold(
            || vec![0u64; bins],
            |mut n, b| {
                count(b * BLOCK..((b + 1) * BLOCK).min(cells), &mut n);
                n
            },
        )
        .reduce(
            || vec![0u64; bins],
            |mut x, y| {
                x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
                x
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_add_up_to_the_counts_of_one_pass() {
        // 200,003 cells (four blocks, the last partial), value i % 7: 200,003 =
        // 7 x 28,571 + 6, so 28,572 cells of values 0..=5 and 28,571 of 6
        let v: Vec<u8> = (0..200_003usize).map(|i| (i % 7) as u8).collect();
        let n = block_counts(v.len(), 7, |r, n| {
            for &x in &v[r] {
                n[x as usize] += 1;
            }
        });
        assert_eq!(
            n,
            vec![28_572, 28_572, 28_572, 28_572, 28_572, 28_572, 28_571]
        );
        assert_eq!(block_counts(0, 3, |_, _| unreachable!()), vec![0, 0, 0]);
    }
}
