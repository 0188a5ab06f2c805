//! Drawing the training sample and its held-out part.
//!
//! Every valid cell gets a priority key from `CounterRng(seed)` on stream `ANN_SAMPLE`
//! (iteration 0, counter = cell index); the sample is the cells with the smallest keys
//! (ties by cell index), per class (`uniform`) or over all valid cells (`proportional`).
//! Within the sample, each class's cells with the smallest second key (iteration 1) are
//! held out. The result depends only on (classes, settings, seed), not on the order in
//! which cells are visited or on the thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::{stream, CounterRng};
use crate::select::{smallest_n_spread, smallest_n_spread_groups};

/// Class index of an invalid cell in the class layer given to the ANN.
pub const INVALID_CLASS: u8 = 255;

/// How the training cells are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// The same number of cells for every class (sample size / K each); an error when a
    /// class has fewer cells. Gives every class a fair share of the suitability, which
    /// the CA's gate needs for rare classes (docs/design.md §4).
    #[default]
    Uniform,
    /// Cells drawn at random over all valid cells: the sample follows the class shares.
    Proportional,
}

/// The drawn sample: cell indices (ascending) for training and for the held-out check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Training cells, ascending.
    pub train: Vec<usize>,
    /// Held-out cells, ascending.
    pub holdout: Vec<usize>,
    /// Training cells per class.
    pub train_per_class: Vec<usize>,
    /// Held-out cells per class.
    pub holdout_per_class: Vec<usize>,
    /// Valid cells (class index below K).
    pub valid_cells: usize,
}

/// The sampling key of `cell`: the first two words of its Philox block on the ANN
/// sample stream (`iteration` 0 chooses the sample, 1 splits off the holdout).
fn key(rng: &CounterRng, iteration: u32, cell: usize) -> u64 {
    let b = rng.block(stream::ANN_SAMPLE, iteration, cell as u64, 0);
    ((b[0] as u64) << 32) | b[1] as u64
}

/// Draws the training sample from `classes` (class index per cell, [`INVALID_CLASS`] =
/// invalid), `per_mille` of the valid cells in all, and holds out the share `holdout`
/// of each class's sampled cells. `class_names` (K of them) name classes in errors.
pub fn draw_sample(
    classes: &[u8],
    class_names: &[String],
    sampling: Sampling,
    per_mille: f64,
    holdout: f64,
    seed: u64,
) -> Result<Sample> {
    let k = class_names.len();
    if k < 2 || k > INVALID_CLASS as usize {
        return Err(Error::Data(format!(
            "ANN: {k} class(es); expected between 2 and {}",
            INVALID_CLASS
        )));
    }
    let counts = class_counts(classes, k)?;
    let rng = CounterRng::new(seed);
    let valid_cells: usize = counts.iter().sum();
    let size = Size {
        per_mille,
        valid_cells,
        total: (per_mille / 1000.0 * valid_cells as f64).round() as usize,
    };
    let chosen = match sampling {
        Sampling::Uniform => choose_uniform(classes, class_names, &counts, &size, &rng)?,
        Sampling::Proportional => choose_proportional(classes, &size, &rng)?,
    };
    Ok(split_holdout(
        classes,
        k,
        chosen,
        holdout,
        &rng,
        valid_cells,
    ))
}

/// The cells of each of the `k` classes in `classes`, counted a block at a time over
/// the threads; an error naming the first cell of a class index that is neither below
/// `k` nor [`INVALID_CLASS`].
fn class_counts(classes: &[u8], k: usize) -> Result<Vec<usize>> {
    // cells per index value
    let all = crate::counts::block_counts(classes.len(), 256, |r, n| {
        for &c in &classes[r] {
            n[c as usize] += 1;
        }
    });
    if all[k..INVALID_CLASS as usize].iter().any(|&n| n > 0) {
        let cell = classes
            .iter()
            .position(|&c| c != INVALID_CLASS && c as usize >= k)
            .unwrap_or_default();
        return Err(Error::Data(format!(
            "ANN: class index {} at cell {cell}; expected 0..{} or {INVALID_CLASS} (invalid)",
            classes[cell],
            k - 1
        )));
    }
    Ok(all[..k].iter().map(|&n| n as usize).collect())
}

/// The size of the sample: `per_mille` of `valid_cells` valid cells is `total` cells.
struct Size {
    /// The share of the valid cells drawn, per mille.
    per_mille: f64,
    /// The valid cells (class index below K).
    valid_cells: usize,
    /// The cells to draw in all.
    total: usize,
}

/// `uniform` sampling: the same number of cells (the sample size / K) of every class,
/// those with the smallest keys; an error when that is no cell or when a class (of
/// `counts` cells, named by `class_names`) has fewer cells. Returns (key, cell) pairs.
fn choose_uniform(
    classes: &[u8],
    class_names: &[String],
    counts: &[usize],
    size: &Size,
    rng: &CounterRng,
) -> Result<Vec<(u64, usize)>> {
    let k = class_names.len();
    let Size {
        per_mille,
        valid_cells,
        total,
    } = *size;
    let per_class = total / k;
    if per_class == 0 {
        return Err(Error::Data(format!(
            "ANN sampling: {per_mille} per mille of {valid_cells} valid cells is {total} \
             cells, less than one per class for {k} classes; raise `per_mille`"
        )));
    }
    for (c, &n) in counts.iter().enumerate() {
        if n < per_class {
            return Err(Error::Data(format!(
                "ANN uniform sampling: class `{}` has {n} valid cells, {per_class} are \
                 needed ({per_mille} per mille of {valid_cells} valid cells / {k} \
                 classes); lower `per_mille` or use proportional sampling",
                class_names[c]
            )));
        }
    }
    // every class's cells in one visit: each cell's key drawn once
    let groups = smallest_n_spread_groups(
        || {
            classes
                .par_iter()
                .enumerate()
                .filter(|(_, &c)| c != INVALID_CLASS)
                .map(|(cell, &c)| (c as usize, key(rng, 0, cell), cell))
        },
        &vec![per_class; k],
        counts,
    );
    Ok(groups.into_iter().flatten().collect())
}

/// `proportional` sampling: the valid cells with the `total` smallest (key, cell), an
/// error when that is no cell. Returns (key, cell) pairs.
fn choose_proportional(classes: &[u8], size: &Size, rng: &CounterRng) -> Result<Vec<(u64, usize)>> {
    let Size {
        per_mille,
        valid_cells,
        total,
    } = *size;
    if total == 0 {
        return Err(Error::Data(format!(
            "ANN sampling: {per_mille} per mille of {valid_cells} valid cells is no cell; \
             raise `per_mille`"
        )));
    }
    // the valid cells with the n smallest (key, cell)
    Ok(smallest_n_spread(
        || {
            classes
                .par_iter()
                .enumerate()
                .filter(|(_, &c)| c != INVALID_CLASS)
                .map(|(cell, _)| (key(rng, 0, cell), cell))
        },
        total,
        valid_cells,
    ))
}

/// Splits the `chosen` cells class by class: the share `holdout` of each class's cells,
/// those with the smallest second key (iteration 1), is held out, the rest trained.
fn split_holdout(
    classes: &[u8],
    k: usize,
    chosen: Vec<(u64, usize)>,
    holdout: f64,
    rng: &CounterRng,
    valid_cells: usize,
) -> Sample {
    let mut by_class: Vec<Vec<(u64, usize)>> = vec![Vec::new(); k];
    for (_, cell) in chosen {
        by_class[classes[cell] as usize].push((key(rng, 1, cell), cell));
    }
    let mut train = Vec::new();
    let mut held = Vec::new();
    let mut train_per_class = vec![0; k];
    let mut holdout_per_class = vec![0; k];
    for (c, mut v) in by_class.into_iter().enumerate() {
        v.sort_unstable();
        let n_hold = (holdout * v.len() as f64).round() as usize;
        holdout_per_class[c] = n_hold;
        train_per_class[c] = v.len() - n_hold;
        held.extend(v[..n_hold].iter().map(|e| e.1));
        train.extend(v[n_hold..].iter().map(|e| e.1));
    }
    train.sort_unstable();
    held.sort_unstable();
    Sample {
        train,
        holdout: held,
        train_per_class,
        holdout_per_class,
        valid_cells,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("c{i}")).collect()
    }

    /// 10,000 cells: class 0 on 6,000, class 1 on 3,000, class 2 on 900, 100 invalid.
    fn layer() -> Vec<u8> {
        (0..10_000)
            .map(|i| match i % 100 {
                0..=59 => 0,
                60..=89 => 1,
                90..=98 => 2,
                _ => INVALID_CLASS,
            })
            .collect()
    }

    #[test]
    fn a_class_index_beyond_the_classes_is_refused_with_its_first_cell() {
        // three classes: index 3 first at cell 70,005 (and again at 90,000)
        let mut classes = vec![1u8; 100_000];
        classes[70_005] = 3;
        classes[90_000] = 7;
        classes[10] = INVALID_CLASS;
        let e = draw_sample(&classes, &names(3), Sampling::Uniform, 60.0, 0.2, 7)
            .unwrap_err()
            .to_string();
        assert!(e.contains("class index 3 at cell 70005"), "{e}");
    }

    #[test]
    fn uniform_sampling_takes_equal_counts_per_class() {
        let classes = layer();
        // 9,900 valid cells * 60 / 1000 = 594 cells, 198 per class; 20 % of 198 = 39.6
        // -> 40 held out, 158 trained.
        let s = draw_sample(&classes, &names(3), Sampling::Uniform, 60.0, 0.2, 7).unwrap();
        assert_eq!(s.valid_cells, 9_900);
        assert_eq!(s.train_per_class, vec![158, 158, 158]);
        assert_eq!(s.holdout_per_class, vec![40, 40, 40]);
        assert_eq!(s.train.len() + s.holdout.len(), 594);
        let mut per = [0usize; 3];
        for &c in s.train.iter().chain(&s.holdout) {
            per[classes[c] as usize] += 1;
        }
        assert_eq!(per, [198, 198, 198]);
        // Disjoint and ascending.
        assert!(s.train.windows(2).all(|w| w[0] < w[1]));
        assert!(s.holdout.iter().all(|c| s.train.binary_search(c).is_err()));
    }

    #[test]
    fn uniform_sampling_names_a_class_that_is_too_small() {
        let classes = layer();
        // 9,900 * 300 / 1000 = 2,970 cells, 990 per class; class c2 has 900.
        let e = draw_sample(&classes, &names(3), Sampling::Uniform, 300.0, 0.2, 7)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`c2`") && e.contains("has 900 valid") && e.contains("990"),
            "{e}"
        );
    }

    #[test]
    fn proportional_sampling_follows_class_shares() {
        let classes = layer();
        // 9,900 * 200 / 1000 = 1,980 cells. Shares 6000/9900, 3000/9900, 900/9900:
        // expected 1200, 600, 180. Sampling without replacement: sd <= sqrt(n p (1-p)),
        // at most 21.7 for class 0; allow 4 sd = 87.
        let s = draw_sample(&classes, &names(3), Sampling::Proportional, 200.0, 0.0, 11).unwrap();
        assert_eq!(s.train.len(), 1_980);
        assert!(s.holdout.is_empty());
        let expected = [1200.0, 600.0, 180.0];
        for (c, &e) in expected.iter().enumerate() {
            let got = s.train_per_class[c] as f64;
            let p: f64 = e / 1980.0;
            let sd = (1980.0 * p * (1.0 - p)).sqrt();
            assert!((got - e).abs() < 4.0 * sd, "class {c}: {got} vs {e}");
        }
    }

    /// The rule written out by hand on a 12-cell layer: per class, the cells with the
    /// smallest keys (seed 5, stream ANN_SAMPLE, iteration 0, counter = the global
    /// cell), then within them the smallest second keys (iteration 1) held out. A
    /// tiling-free rule: nothing but the global cell index enters a key.
    #[test]
    fn the_sample_is_the_cells_with_the_smallest_keys_of_the_rule() {
        let classes: Vec<u8> = vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1, INVALID_CLASS, 0];
        let rng = CounterRng::new(5);
        let key_of = |it: u32, cell: usize| {
            let b = rng.block(stream::ANN_SAMPLE, it, cell as u64, 0);
            ((b[0] as u64) << 32) | b[1] as u64
        };
        // 11 valid cells * 546 / 1000 = 6.006 -> 6 cells, 3 per class; 1/3 of 3 held out
        let s = draw_sample(&classes, &names(2), Sampling::Uniform, 546.0, 1.0 / 3.0, 5).unwrap();
        let mut train = Vec::new();
        let mut held = Vec::new();
        for class in [0u8, 1] {
            let mut cells: Vec<usize> = (0..12).filter(|&c| classes[c] == class).collect();
            cells.sort_by_key(|&c| (key_of(0, c), c));
            let mut chosen: Vec<usize> = cells[..3].to_vec();
            chosen.sort_by_key(|&c| (key_of(1, c), c));
            held.push(chosen[0]);
            train.extend_from_slice(&chosen[1..]);
        }
        train.sort_unstable();
        held.sort_unstable();
        assert_eq!(s.train, train);
        assert_eq!(s.holdout, held);
    }

    #[test]
    fn sample_depends_on_the_seed_only() {
        let classes = layer();
        let a = draw_sample(&classes, &names(3), Sampling::Uniform, 60.0, 0.2, 7).unwrap();
        let b = draw_sample(&classes, &names(3), Sampling::Uniform, 60.0, 0.2, 7).unwrap();
        let c = draw_sample(&classes, &names(3), Sampling::Uniform, 60.0, 0.2, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.train, c.train);
    }
}
