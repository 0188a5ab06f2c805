//! Selecting the `n` smallest items of a parallel stream without collecting the
//! stream: the sampling of the ANN and of the GWR keep O(n) memory instead of one
//! (key, cell) pair per valid cell.

#[cfg(test)]
use std::collections::BinaryHeap;

use rayon::prelude::*;

/// Adds `e` to `heap` (a max-heap of the `n` smallest items seen) when it is among them.
#[cfg(test)]
fn push_bounded<T: Ord>(heap: &mut BinaryHeap<T>, e: T, n: usize) {
    if heap.len() < n {
        heap.push(e);
    } else if heap.peek().is_some_and(|top| e < *top) {
        heap.pop();
        heap.push(e);
    }
}

/// The `n` smallest items of `items` (all of them when there are fewer), ascending,
/// with a bounded heap per rayon split: the reference [`smallest_n_spread`] is tested
/// against (the samplers used it before it).
///
/// The items must be totally ordered with no two equal (e.g. (key, cell) pairs): the
/// result is then the same set whatever the thread count or the order of the visit.
#[cfg(test)]
pub fn smallest_n<T, I>(items: I, n: usize) -> Vec<T>
where
    T: Ord + Send,
    I: ParallelIterator<Item = T>,
{
    if n == 0 {
        return Vec::new();
    }
    items
        .fold(BinaryHeap::new, |mut h, e| {
            push_bounded(&mut h, e, n);
            h
        })
        .reduce(BinaryHeap::new, |a, b| {
            let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
            for e in small {
                push_bounded(&mut big, e, n);
            }
            big
        })
        .into_sorted_vec()
}

/// The `n` smallest of the (key, index) pairs that `items()` visits, ascending, for
/// about `count` pairs whose keys are spread evenly over `u64` (counter-based random
/// numbers). A visit keeps only the keys at or below the quantile that a little more
/// than `n` of `count` even keys fall under, then sorts those; when fewer than `n` pass
/// (unlucky keys, or more pairs than `count`), the bound is doubled and the pairs
/// visited again. Every pair left out has a larger key than every pair kept, so the
/// bound changes the time and memory, never the result: it is the tests' reference
/// `smallest_n`'s, whose heap per rayon split cost a push per pair while the splits
/// were smaller than `n` (half of the ANN sample's time on 20 M cells).
pub fn smallest_n_spread<I>(items: impl Fn() -> I, n: usize, count: usize) -> Vec<(u64, usize)>
where
    I: ParallelIterator<Item = (u64, usize)>,
{
    if n == 0 {
        return Vec::new();
    }
    let mut share = first_share(n, count);
    loop {
        let bound = bound_of(share);
        let mut kept: Vec<(u64, usize)> = items().filter(|&(k, _)| k <= bound).collect();
        if kept.len() >= n || bound == u64::MAX {
            kept.par_sort_unstable();
            kept.truncate(n);
            return kept;
        }
        share *= 2.0;
    }
}

/// The share of `count` even keys that a little more than `n` of them fall under.
fn first_share(n: usize, count: usize) -> f64 {
    if count == 0 {
        return 1.0;
    }
    let m = n as f64;
    (m + 4.0 * m.sqrt() + 64.0) / count as f64
}

/// The key below which `share` of the keys spread over `u64` fall (all at 1).
fn bound_of(share: f64) -> u64 {
    if share >= 1.0 {
        u64::MAX
    } else {
        // 2^64 times the share (saturating)
        (share * 18_446_744_073_709_551_616.0) as u64
    }
}

/// [`smallest_n_spread`] of several groups in one visit: `items()` visits (group, key,
/// index) triples, and group `g` keeps its `n[g]` smallest (key, index) pairs of about
/// `count[g]`. Each group's result is [`smallest_n_spread`]'s over that group's pairs;
/// one visit of a stream draws every group's keys once (the ANN's sample per class)
/// instead of once per group. A group whose bound kept too few is visited again alone
/// with its bound doubled, as [`smallest_n_spread`] does.
pub fn smallest_n_spread_groups<I>(
    items: impl Fn() -> I,
    n: &[usize],
    count: &[usize],
) -> Vec<Vec<(u64, usize)>>
where
    I: ParallelIterator<Item = (usize, u64, usize)>,
{
    let mut share: Vec<f64> = n
        .iter()
        .zip(count)
        .map(|(&n, &c)| first_share(n, c))
        .collect();
    let mut done: Vec<Option<Vec<(u64, usize)>>> =
        n.iter().map(|&n| (n == 0).then(Vec::new)).collect();
    while done.iter().any(Option::is_none) {
        // the bound of every group still open; None: the group is done
        let bounds: Vec<Option<u64>> = done
            .iter()
            .zip(&share)
            .map(|(d, &s)| d.is_none().then(|| bound_of(s)))
            .collect();
        let kept: Vec<(usize, u64, usize)> = items()
            .filter(|&(g, k, _)| bounds.get(g).copied().flatten().is_some_and(|b| k <= b))
            .collect();
        let mut by_group: Vec<Vec<(u64, usize)>> = vec![Vec::new(); n.len()];
        for (g, k, i) in kept {
            by_group[g].push((k, i));
        }
        for (g, mut kept) in by_group.into_iter().enumerate() {
            let Some(bound) = bounds[g] else { continue };
            if kept.len() >= n[g] || bound == u64::MAX {
                kept.par_sort_unstable();
                kept.truncate(n[g]);
                done[g] = Some(kept);
            } else {
                share[g] *= 2.0;
            }
        }
    }
    done.into_iter().map(Option::unwrap_or_default).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_n_smallest_in_ascending_order() {
        // keys 7 i mod 11 over i = 0..11: 0, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4
        let items = (0..11usize).into_par_iter().map(|i| ((7 * i) % 11, i));
        // the three smallest keys 0, 1, 2 are at i = 0, 8, 5
        assert_eq!(smallest_n(items, 3), vec![(0, 0), (1, 8), (2, 5)]);
    }

    #[test]
    fn fewer_items_than_n_are_all_kept_and_n_zero_keeps_none() {
        let items = vec![(5u32, 1usize), (2, 9), (2, 3)];
        assert_eq!(
            smallest_n(items.clone().into_par_iter(), 10),
            vec![(2, 3), (2, 9), (5, 1)]
        );
        assert!(smallest_n(items.into_par_iter(), 0).is_empty());
    }

    #[test]
    fn the_result_does_not_depend_on_the_thread_count() {
        let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| smallest_n((0..100_000u64).into_par_iter().map(|i| (key(i), i)), 500))
        };
        let one = run(1);
        assert_eq!(one, run(3));
        // the same as sorting everything
        let mut all: Vec<(u64, u64)> = (0..100_000u64).map(|i| (key(i), i)).collect();
        all.sort_unstable();
        all.truncate(500);
        assert_eq!(one, all);
    }

    #[test]
    fn the_spread_selection_equals_the_heap_selection_whatever_the_count_given() {
        let key = |i: usize| {
            (i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(17)
        };
        let n_items = 50_000usize;
        let items = || (0..n_items).into_par_iter().map(|i| (key(i), i));
        for n in [1, 7, 500, 12_345, 50_000, 60_000] {
            let want = smallest_n(items(), n);
            // the right count, one far too small (the bound is raised), one too large
            for count in [n_items, 10, 10 * n_items] {
                assert_eq!(
                    smallest_n_spread(items, n, count),
                    want,
                    "n {n} count {count}"
                );
            }
        }
        // keys all in the top half: the first bounds keep nothing, the last keeps all
        let high = || {
            (0..1000usize)
                .into_par_iter()
                .map(|i| (u64::MAX - i as u64, i))
        };
        let want = smallest_n(high(), 10);
        assert_eq!(want[0], (u64::MAX - 999, 999));
        assert_eq!(smallest_n_spread(high, 10, 1000), want);
        assert!(smallest_n_spread(items, 0, n_items).is_empty());
    }

    #[test]
    fn grouped_selection_gives_each_group_its_own_heap_selection() {
        let key = |i: usize| {
            (i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(17)
        };
        // 30,000 items in groups by i mod 10: group 0 has i % 10 in 0..6 (18,000 items),
        // group 1 i % 10 in 6..9 (9,000), group 2 i % 10 == 9 (3,000), group 3 none
        let group = |i: usize| match i % 10 {
            0..=5 => 0,
            6..=8 => 1,
            _ => 2,
        };
        let items = || {
            (0..30_000usize)
                .into_par_iter()
                .map(move |i| (group(i), key(i), i))
        };
        let of = |g: usize, n: usize| {
            smallest_n(
                (0..30_000usize)
                    .into_par_iter()
                    .filter(move |&i| group(i) == g)
                    .map(move |i| (key(i), i)),
                n,
            )
        };
        // the right counts; counts far too small (bounds raised, groups done in
        // different rounds); n above a group's size; n 0; a group with no item
        let n = [700, 2_000, 5_000, 0, 4];
        for count in [[18_000, 9_000, 3_000, 0, 0], [10, 9_000, 5, 0, 1]] {
            let got = smallest_n_spread_groups(items, &n, &count);
            assert_eq!(got.len(), 5);
            assert_eq!(got[0], of(0, 700), "counts {count:?}");
            assert_eq!(got[1], of(1, 2_000), "counts {count:?}");
            // all 3,000 of group 2, ascending
            assert_eq!(got[2].len(), 3_000);
            assert_eq!(got[2], of(2, 5_000), "counts {count:?}");
            assert!(got[3].is_empty() && got[4].is_empty());
        }
    }
}
