//! The random forest: `n_trees` [`tree`](super::tree)s, each grown on its own bootstrap
//! sample (n rows drawn with replacement from the n training rows), with its out-of-bag
//! (OOB) permutation importance (Breiman 2001's mean decrease in accuracy).
//!
//! Tree `t` is [`fit_tree`]`(samples, settings, seed, key, t)`: a pure function, so trees
//! can be grown by any thread or worker in any order and put together in tree order by
//! [`Forest::from_trees`]; the forest is bit-identical for any thread or worker count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::tree::{grow, tree_counter, Samples, Tree, TreeSettings, MAX_FEATURES};
use crate::error::{Error, Result};
use crate::rng::{stream, CounterRng};

/// How a forest is grown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForestSettings {
    /// Number of trees.
    pub n_trees: usize,
    /// How each tree grows (features tried per split, depth, leaf size).
    pub tree: TreeSettings,
}

impl ForestSettings {
    /// An error naming the setting unless `n_trees >= 1` and `1 <= mtry <= d`.
    pub fn check(&self, d: usize) -> Result<()> {
        if self.n_trees == 0 || self.n_trees > u32::MAX as usize {
            return Err(Error::Data(format!(
                "random forest: n_trees = {}; expected at least 1",
                self.n_trees
            )));
        }
        if self.tree.mtry == 0 || self.tree.mtry > d || d > MAX_FEATURES {
            return Err(Error::Data(format!(
                "random forest: mtry = {} with {d} features; expected 1 to {}",
                self.tree.mtry,
                d.min(MAX_FEATURES)
            )));
        }
        if self.tree.min_leaf == 0 {
            return Err(Error::Data(
                "random forest: min_leaf = 0; expected at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// One grown tree with what its out-of-bag rows say about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FittedTree {
    /// The tree.
    pub tree: Tree,
    /// Out-of-bag rows (not drawn into the tree's bootstrap sample).
    pub oob_rows: usize,
    /// Accuracy on the out-of-bag rows (a row is predicted positive when its leaf value
    /// is above 0.5); None without out-of-bag rows.
    pub oob_accuracy: Option<f64>,
    /// Per feature: the OOB accuracy minus the OOB accuracy with that feature's values
    /// permuted among the OOB rows (0 without OOB rows).
    pub importance: Vec<f64>,
}

/// A fitted forest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// Trees in tree order.
    pub trees: Vec<Tree>,
    /// Per feature: mean over the trees with OOB rows of their permutation importance
    /// (mean decrease in accuracy; near 0 for a feature the target does not depend on,
    /// possibly slightly negative).
    pub importance: Vec<f64>,
    /// Mean OOB accuracy of the trees that have OOB rows (None: no tree has any).
    pub oob_accuracy: Option<f64>,
}

/// Accuracy of `tree` on `rows`, with feature `permuted` (if any) read from `perm`
/// (`perm[i]` is the row whose value replaces row `rows[i]`'s).
fn accuracy(tree: &Tree, s: &Samples, rows: &[usize], permuted: Option<(usize, &[usize])>) -> f64 {
    let mut x = vec![0f32; s.d];
    let mut right = 0usize;
    for (i, &r) in rows.iter().enumerate() {
        s.read_row(r, permuted.map(|(f, perm)| (f, perm[i])), &mut x);
        if (tree.predict(&x) > 0.5) == s.y[r] {
            right += 1;
        }
    }
    right as f64 / rows.len() as f64
}

/// Shuffles `items` (Fisher-Yates): the swap at position i is drawn from (seed, `stream`,
/// `key`, cell `prefix | i`, draw 0), so the order depends only on what the draws mean.
pub(super) fn keyed_shuffle(
    rng: &CounterRng,
    stream: u32,
    key: u32,
    prefix: u64,
    items: &mut [usize],
) {
    let n = items.len();
    for i in 0..n.saturating_sub(1) {
        let j = i + rng.below(stream, key, prefix | i as u64, 0, (n - i) as u64) as usize;
        items.swap(i, j);
    }
}

/// The OOB rows of tree `t` in a random order for feature `f` (draws keyed on (seed,
/// key, t, f, position)).
fn permutation(rng: &CounterRng, key: u32, t: usize, f: usize, oob: &[usize]) -> Vec<usize> {
    let mut p = oob.to_vec();
    let prefix = ((t as u64) << 40) | ((f as u64) << 32);
    keyed_shuffle(rng, stream::FOREST_PERMUTE, key, prefix, &mut p);
    p
}

/// Grows tree `t` of forest `key`: bootstrap row `i` is drawn from (seed, key, t, i),
/// the splits as in [`grow`], then the OOB accuracy and permutation importance. Call
/// [`ForestSettings::check`] and [`Samples::check`] first.
pub fn fit_tree(
    s: &Samples,
    settings: &ForestSettings,
    seed: u64,
    key: u32,
    t: usize,
) -> FittedTree {
    let rng = CounterRng::new(seed);
    let n = s.len();
    let mut in_bag = vec![false; n];
    let rows: Vec<usize> = (0..n)
        .map(|i| {
            let r = rng.below(
                stream::FOREST_BOOTSTRAP,
                key,
                tree_counter(t, i),
                0,
                n as u64,
            ) as usize;
            in_bag[r] = true;
            r
        })
        .collect();
    let tree = grow(s, rows, &settings.tree, seed, key, t);
    let oob: Vec<usize> = (0..n).filter(|&r| !in_bag[r]).collect();
    if oob.is_empty() {
        return FittedTree {
            tree,
            oob_rows: 0,
            oob_accuracy: None,
            importance: vec![0.0; s.d],
        };
    }
    let base = accuracy(&tree, s, &oob, None);
    let importance = (0..s.d)
        .map(|f| {
            let perm = permutation(&rng, key, t, f, &oob);
            base - accuracy(&tree, s, &oob, Some((f, &perm)))
        })
        .collect();
    FittedTree {
        tree,
        oob_rows: oob.len(),
        oob_accuracy: Some(base),
        importance,
    }
}

impl Forest {
    /// The forest of `trees` (tree 0 first): importance and OOB accuracy are the means
    /// over the trees with OOB rows, summed in tree order.
    pub fn from_trees(trees: Vec<FittedTree>, d: usize) -> Forest {
        let with_oob: Vec<&FittedTree> = trees.iter().filter(|t| t.oob_rows > 0).collect();
        let m = with_oob.len() as f64;
        let mut importance = vec![0.0; d];
        let mut acc = 0.0;
        for t in &with_oob {
            for (a, b) in importance.iter_mut().zip(&t.importance) {
                *a += b;
            }
            acc += t.oob_accuracy.unwrap_or(0.0);
        }
        if m > 0.0 {
            importance.iter_mut().for_each(|a| *a /= m);
        }
        Forest {
            trees: trees.into_iter().map(|t| t.tree).collect(),
            importance,
            oob_accuracy: (m > 0.0).then(|| acc / m),
        }
    }

    /// The probability of a positive row with features `x`: the mean of the trees'
    /// leaf values (summed in tree order). With pure leaves (the default growth) it is
    /// the share of trees voting positive, PLUS's development probability.
    pub fn predict(&self, x: &[f32]) -> f64 {
        let sum: f64 = self.trees.iter().map(|t| t.predict(x)).sum();
        sum / self.trees.len() as f64
    }
}

/// Fits the forest `key` on `s`: trees in parallel (rayon), collected in tree order.
pub fn fit(s: &Samples, settings: &ForestSettings, seed: u64, key: u32) -> Result<Forest> {
    s.check()?;
    settings.check(s.d)?;
    if s.is_empty() {
        return Err(Error::Data("random forest: no training row".into()));
    }
    let trees: Vec<FittedTree> = (0..settings.n_trees)
        .into_par_iter()
        .map(|t| fit_tree(s, settings, seed, key, t))
        .collect();
    Ok(Forest::from_trees(trees, s.d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::CounterRng;

    /// 600 rows of 3 features, uniform in (0, 1) from a counter-based generator (an
    /// independent stream); y = x0 + 0.3 * x1 > 0.65: x0 drives, x1 helps, x2 is noise.
    fn data() -> (Vec<f32>, Vec<bool>) {
        let rng = CounterRng::new(99);
        let n = 600;
        let mut x = Vec::with_capacity(n * 3);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let b = rng.block(stream::SYNTH_GWR, 77, i as u64, 0);
            let v: Vec<f32> = b[..3].iter().map(|&w| CounterRng::unit(w) as f32).collect();
            y.push(v[0] + 0.3 * v[1] > 0.65);
            x.extend(v);
        }
        (x, y)
    }

    fn settings(n_trees: usize, mtry: usize) -> ForestSettings {
        ForestSettings {
            n_trees,
            tree: TreeSettings {
                mtry,
                max_depth: None,
                min_leaf: 1,
            },
        }
    }

    use crate::forest::in_pool;

    #[test]
    fn the_same_trees_from_one_two_and_three_workers() {
        let (x, y) = data();
        let s = Samples { x: &x, d: 3, y: &y };
        let st = settings(12, 2);
        let whole = in_pool(1, || fit(&s, &st, 5, 3).unwrap());
        let bits = serde_json::to_vec(&whole).unwrap();
        for workers in [1usize, 2, 3] {
            // worker w grows the trees t with t % workers == w, each in its own pool of
            // `workers` threads; the coordinator puts them back in tree order
            let mut grown: Vec<(usize, FittedTree)> = (0..workers)
                .flat_map(|w| {
                    in_pool(workers, || {
                        (0..st.n_trees)
                            .filter(|t| t % workers == w)
                            .map(|t| (t, fit_tree(&s, &st, 5, 3, t)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            grown.sort_by_key(|g| g.0);
            let f = Forest::from_trees(grown.into_iter().map(|g| g.1).collect(), 3);
            assert_eq!(serde_json::to_vec(&f).unwrap(), bits, "{workers} workers");
            let threads = in_pool(workers, || fit(&s, &st, 5, 3).unwrap());
            assert_eq!(serde_json::to_vec(&threads).unwrap(), bits);
        }
        // another seed or forest key grows other trees
        assert_ne!(fit(&s, &st, 6, 3).unwrap().trees, whole.trees);
        assert_ne!(fit(&s, &st, 5, 4).unwrap().trees, whole.trees);
    }

    #[test]
    fn an_irrelevant_driver_gets_near_zero_importance() {
        let (x, y) = data();
        let s = Samples { x: &x, d: 3, y: &y };
        let f = fit(&s, &settings(30, 3), 1, 0).unwrap();
        let [i0, i1, i2] = [f.importance[0], f.importance[1], f.importance[2]];
        // By hand, for a perfect classifier: redrawing x0 flips y with probability
        // E[2 q (1 - q)], q = P(x0 > 0.65 - 0.3 x1) = 0.35 + 0.3 x1 uniform on
        // (0.35, 0.65): 2 (E q - E q^2) = 2 (0.5 - 0.2575) = 0.485. Redrawing x1 matters
        // only for x0 in (0.35, 0.65) (probability 0.3), where the threshold on x1 is
        // uniform on (0, 1): 0.3 * E[2 t (1 - t)] = 0.3 / 3 = 0.1. x2 does not enter y: 0.
        // The forest errs near the boundary, where x1 decides, so its x1 figure is lower.
        assert!(i0 > 0.40 && i0 < 0.52, "{:?}", f.importance);
        assert!(i1 > 0.03 && i1 < 0.12, "{:?}", f.importance);
        assert!(i2.abs() < 0.02, "{:?}", f.importance);
        assert!(f.oob_accuracy.unwrap() > 0.9, "{:?}", f.oob_accuracy);
        // the forest learnt the rule: far from the boundary it is certain
        assert!(f.predict(&[0.95, 0.5, 0.5]) > 0.9);
        assert!(f.predict(&[0.1, 0.5, 0.5]) < 0.1);
    }

    #[test]
    fn settings_out_of_bounds_are_refused_by_name() {
        let e = settings(0, 1).check(3).unwrap_err().to_string();
        assert!(e.contains("n_trees = 0"), "{e}");
        let e = settings(5, 4).check(3).unwrap_err().to_string();
        assert!(e.contains("mtry = 4 with 3 features"), "{e}");
    }
}
