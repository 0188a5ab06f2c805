//! Selecting the `n` smallest items of a parallel stream without collecting the
//! stream: the sampling of the ANN and of the GWR keep O(n) memory instead of one
//! (key, cell) pair per valid cell.

use std::collections::BinaryHeap;

use rayon::prelude::*;

/// Adds `e` to `heap` (a max-heap of the `n` smallest items seen) when it is among them.
fn push_bounded<T: Ord>(heap: &mut BinaryHeap<T>, e: T, n: usize) {
    if heap.len() < n {
        heap.push(e);
    } else if heap.peek().is_some_and(|top| e < *top) {
        heap.pop();
        heap.push(e);
    }
}

/// The `n` smallest items of `items` (all of them when there are fewer), ascending.
///
/// The items must be totally ordered with no two equal (e.g. (key, cell) pairs): the
/// result is then the same set whatever the thread count or the order of the visit.
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
}
