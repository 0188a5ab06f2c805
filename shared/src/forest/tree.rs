//! One CART classification tree of a random forest (Breiman et al. 1984; Breiman 2001):
//! binary splits `x[f] <= threshold` chosen by the largest decrease of the Gini impurity
//! among `mtry` features drawn at each node, grown until the nodes are pure (or cannot be
//! split); a leaf's value is the share of positive rows that reached it.
//!
//! Every random choice is a counter-based draw ([`crate::rng`]) keyed by (seed, forest
//! key, tree index, node or row): tree `t` is the same whichever thread or worker builds
//! it and whatever other trees are built.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::{stream, CounterRng};

/// Largest number of features a forest takes (one draw per feature and node; the draw
/// index of [`CounterRng::below`] is a byte).
pub const MAX_FEATURES: usize = 256;

/// Training rows: `x` row-major (`n * d` values), `y` the 0/1 target of each row.
#[derive(Clone, Copy, Debug)]
pub struct Samples<'a> {
    /// Feature values, row `i` at `x[i * d .. (i + 1) * d]`.
    pub x: &'a [f32],
    /// Features per row.
    pub d: usize,
    /// Target of each row.
    pub y: &'a [bool],
}

impl Samples<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Value of feature `f` in row `r`.
    #[inline]
    pub fn value(&self, r: usize, f: usize) -> f32 {
        self.x[r * self.d + f]
    }

    /// Copies row `r` into `x`; with `swap = Some((f, q))` feature `f` is read from row
    /// `q` instead (a permuted feature).
    #[inline]
    pub fn read_row(&self, r: usize, swap: Option<(usize, usize)>, x: &mut [f32]) {
        x.copy_from_slice(&self.x[r * self.d..(r + 1) * self.d]);
        if let Some((f, q)) = swap {
            x[f] = self.value(q, f);
        }
    }

    /// An error unless `x` holds `d` finite values per row and `d` is 1..=[`MAX_FEATURES`].
    pub fn check(&self) -> Result<()> {
        if self.d == 0 || self.d > MAX_FEATURES {
            return Err(Error::Data(format!(
                "random forest: {} features; expected 1 to {MAX_FEATURES}",
                self.d
            )));
        }
        if self.x.len() != self.y.len() * self.d {
            return Err(Error::Data(format!(
                "random forest: {} feature values for {} rows of {} features",
                self.x.len(),
                self.y.len(),
                self.d
            )));
        }
        if let Some(i) = self.x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "random forest: feature {} of row {} is {}; expected a finite number",
                i % self.d,
                i / self.d,
                self.x[i]
            )));
        }
        Ok(())
    }
}

/// How a tree grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSettings {
    /// Features tried at each split (1..=d). When none of them splits the node (all
    /// constant there), the remaining features are tried in the drawn order, as
    /// scikit-learn and ranger do, so a node stays a leaf only when no feature splits it.
    pub mtry: usize,
    /// Deepest level of a split (the root is depth 0); `None`: no limit.
    pub max_depth: Option<usize>,
    /// Fewest rows in a leaf (1: grown to pure leaves).
    pub min_leaf: usize,
}

/// A node of a [`Tree`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Node {
    /// Rows with `x[feature] <= threshold` go to `left`, the others to `right`.
    Split {
        /// Feature index.
        feature: u32,
        /// Threshold, midway between the two values it separates.
        threshold: f32,
        /// Index of the left child in [`Tree::nodes`].
        left: u32,
        /// Index of the right child.
        right: u32,
    },
    /// Share of positive rows among the (bootstrap) rows that reached the leaf.
    Leaf(f64),
}

/// A fitted tree: its nodes, the root first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes; children always come after their parent.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value for the features `x` (one row).
    pub fn predict(&self, x: &[f32]) -> f64 {
        let mut i = 0usize;
        loop {
            match &self.nodes[i] {
                Node::Leaf(v) => return *v,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if x[*feature as usize] <= *threshold {
                        *left as usize
                    } else {
                        *right as usize
                    };
                }
            }
        }
    }

    /// Depth of the deepest leaf (a single leaf: 0).
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.nodes.len()];
        let mut deepest = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            if let Node::Split { left, right, .. } = n {
                depth[*left as usize] = depth[i] + 1;
                depth[*right as usize] = depth[i] + 1;
                deepest = deepest.max(depth[i] + 1);
            }
        }
        deepest
    }
}

/// The best split of one node.
#[derive(Clone, Copy, Debug)]
struct Split {
    feature: usize,
    threshold: f32,
    /// Weighted Gini impurity of the two children: sum over children of n * gini.
    impurity: f64,
}

/// n * gini of a node with `pos` positives out of `n`: n - (pos^2 + neg^2) / n.
#[inline]
fn weighted_gini(pos: f64, n: f64) -> f64 {
    if n == 0.0 {
        0.0
    } else {
        let neg = n - pos;
        n - (pos * pos + neg * neg) / n
    }
}

/// The threshold between the distinct values `a < b`: their midpoint, or `a` when the
/// midpoint rounds to `b` in f32 (so that `a <= t < b` always holds).
fn midpoint(a: f32, b: f32) -> f32 {
    let m = ((a as f64 + b as f64) / 2.0) as f32;
    if m >= b || m < a {
        a
    } else {
        m
    }
}

/// The best threshold on feature `f` for `rows`, or None when no threshold leaves at
/// least `min_leaf` rows on each side. Ties keep the lowest threshold.
fn best_on_feature(
    s: &Samples,
    rows: &[usize],
    f: usize,
    min_leaf: usize,
    scratch: &mut Vec<(f32, bool)>,
) -> Option<Split> {
    scratch.clear();
    scratch.extend(rows.iter().map(|&r| (s.value(r, f), s.y[r])));
    scratch.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let n = scratch.len();
    let total_pos = scratch.iter().filter(|e| e.1).count() as f64;
    let mut best: Option<Split> = None;
    let mut left_pos = 0f64;
    for i in 0..n - 1 {
        if scratch[i].1 {
            left_pos += 1.0;
        }
        let nl = i + 1;
        if scratch[i].0 == scratch[i + 1].0 || nl < min_leaf || n - nl < min_leaf {
            continue;
        }
        let impurity = weighted_gini(left_pos, nl as f64)
            + weighted_gini(total_pos - left_pos, (n - nl) as f64);
        if best.is_none_or(|b| impurity < b.impurity) {
            best = Some(Split {
                feature: f,
                threshold: midpoint(scratch[i].0, scratch[i + 1].0),
                impurity,
            });
        }
    }
    best
}

/// The counter of tree `t`'s node or row `i`.
#[inline]
pub(crate) fn tree_counter(t: usize, i: usize) -> u64 {
    ((t as u64) << 32) | (i as u64 & 0xFFFF_FFFF)
}

/// The features in the random order node `node` of tree `t` tries them (a Fisher-Yates
/// shuffle by counter-based draws): the first `mtry` are the split's candidates.
fn feature_order(rng: &CounterRng, key: u32, t: usize, node: usize, d: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..d).collect();
    for i in 0..d.saturating_sub(1) {
        let j = i + rng.below(
            stream::FOREST_SPLIT,
            key,
            tree_counter(t, node),
            i as u8,
            (d - i) as u64,
        ) as usize;
        order.swap(i, j);
    }
    order
}

/// The best split of `rows` (a node that is not pure), or None.
fn best_split(
    s: &Samples,
    rows: &[usize],
    order: &[usize],
    settings: &TreeSettings,
    scratch: &mut Vec<(f32, bool)>,
) -> Option<Split> {
    let pos = rows.iter().filter(|&&r| s.y[r]).count() as f64;
    let parent = weighted_gini(pos, rows.len() as f64);
    let mut best: Option<Split> = None;
    for (tried, &f) in order.iter().enumerate() {
        if tried >= settings.mtry && best.is_some() {
            break;
        }
        if let Some(c) = best_on_feature(s, rows, f, settings.min_leaf, scratch) {
            // a split must lower the impurity (1e-12: rounding of equal impurities)
            if c.impurity < parent - 1e-12 && best.is_none_or(|b| c.impurity < b.impurity) {
                best = Some(c);
            }
        }
    }
    best
}

/// Grows tree `t` of forest `key` on the rows `rows` of `s` (a row may repeat: a
/// bootstrap sample). Node `i`'s features are drawn from (seed, key, t, i); nodes are
/// numbered as they are created (children after parents, depth first), so the tree is a
/// pure function of its arguments.
pub fn grow(
    s: &Samples,
    rows: Vec<usize>,
    settings: &TreeSettings,
    seed: u64,
    key: u32,
    t: usize,
) -> Tree {
    let rng = CounterRng::new(seed);
    let mut nodes = vec![Node::Leaf(0.0)];
    let mut buf = rows;
    let mut scratch = Vec::new();
    // (node index, rows buf[lo..hi], depth)
    let mut work = vec![(0usize, 0usize, buf.len(), 0usize)];
    while let Some((id, lo, hi, depth)) = work.pop() {
        let rows = &buf[lo..hi];
        let n = rows.len();
        let pos = rows.iter().filter(|&&r| s.y[r]).count();
        let leaf = if n == 0 { 0.0 } else { pos as f64 / n as f64 };
        let can_split = pos > 0
            && pos < n
            && n >= 2 * settings.min_leaf.max(1)
            && settings.max_depth.is_none_or(|m| depth < m);
        let split = if can_split {
            let order = feature_order(&rng, key, t, id, s.d);
            best_split(s, rows, &order, settings, &mut scratch)
        } else {
            None
        };
        let Some(sp) = split else {
            nodes[id] = Node::Leaf(leaf);
            continue;
        };
        // stable partition: left rows first, in their order
        let (left, right): (Vec<usize>, Vec<usize>) = buf[lo..hi]
            .iter()
            .partition(|&&r| s.value(r, sp.feature) <= sp.threshold);
        let mid = lo + left.len();
        buf[lo..mid].copy_from_slice(&left);
        buf[mid..hi].copy_from_slice(&right);
        let (l, r) = (nodes.len(), nodes.len() + 1);
        nodes.push(Node::Leaf(0.0));
        nodes.push(Node::Leaf(0.0));
        nodes[id] = Node::Split {
            feature: sp.feature as u32,
            threshold: sp.threshold,
            left: l as u32,
            right: r as u32,
        };
        work.push((r, mid, hi, depth + 1));
        work.push((l, lo, mid, depth + 1));
    }
    Tree { nodes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mtry: usize, max_depth: Option<usize>) -> TreeSettings {
        TreeSettings {
            mtry,
            max_depth,
            min_leaf: 1,
        }
    }

    /// x0 = 1..5 with y = 0 0 1 0 1. Weighted Gini (n * gini) of the root:
    /// 5 * (1 - (2/5)^2 - (3/5)^2) = 2.4. By hand, the thresholds give children
    /// 1.5: {0} + {0,1,0,1} = 0 + 4 * 0.5 = 2.0
    /// 2.5: {0,0} + {1,0,1} = 0 + 3 * (1 - 1/9 - 4/9) = 4/3 (the best)
    /// 3.5: {0,0,1} + {0,1} = 4/3 + 1 = 7/3
    /// 4.5: {0,0,1,0} + {1} = 4 * (1 - 1/16 - 9/16) = 1.5
    /// so a depth-1 tree splits at 2.5 with leaves 0 and 2/3.
    #[test]
    fn a_stump_takes_the_split_computed_by_hand() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let y = [false, false, true, false, true];
        let s = Samples { x: &x, d: 1, y: &y };
        let t = grow(&s, (0..5).collect(), &settings(1, Some(1)), 1, 0, 0);
        assert_eq!(
            t.nodes,
            vec![
                Node::Split {
                    feature: 0,
                    threshold: 2.5,
                    left: 1,
                    right: 2
                },
                Node::Leaf(0.0),
                Node::Leaf(2.0 / 3.0),
            ]
        );
        assert_eq!(t.predict(&[2.4]), 0.0);
        assert_eq!(t.predict(&[2.6]), 2.0 / 3.0);
    }

    /// Grown fully, the right node {3: 1, 4: 0, 5: 1} splits at 3.5 ({1} vs {0,1}: 0 + 1
    /// = 1; at 4.5: {1,0} + {1} = 1 too, the lower threshold is kept), then {4: 0, 5: 1}
    /// at 4.5: every leaf is pure and the tree reproduces the labels.
    #[test]
    fn a_full_tree_has_pure_leaves_at_the_hand_thresholds() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let y = [false, false, true, false, true];
        let s = Samples { x: &x, d: 1, y: &y };
        let t = grow(&s, (0..5).collect(), &settings(1, None), 1, 0, 0);
        let thresholds: Vec<f32> = t
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Split { threshold, .. } => Some(*threshold),
                Node::Leaf(_) => None,
            })
            .collect();
        assert_eq!(thresholds, vec![2.5, 3.5, 4.5]);
        for (xi, yi) in x.iter().zip(y) {
            assert_eq!(t.predict(&[*xi]), if yi { 1.0 } else { 0.0 });
        }
        assert_eq!(t.depth(), 3);
    }

    /// With both features tried, the split goes to the feature that separates the
    /// classes (x1 < 0.5 <=> y) and not to the noisy one; repeated rows count twice.
    #[test]
    fn the_separating_feature_wins_and_repeated_rows_weigh() {
        // rows: (x0, x1, y)
        let rows = [
            (0.3f32, 0.1f32, false),
            (0.9, 0.2, false),
            (0.1, 0.3, false),
            (0.5, 0.7, true),
            (0.2, 0.8, true),
            (0.8, 0.9, true),
        ];
        let x: Vec<f32> = rows.iter().flat_map(|r| [r.0, r.1]).collect();
        let y: Vec<bool> = rows.iter().map(|r| r.2).collect();
        let s = Samples { x: &x, d: 2, y: &y };
        let t = grow(&s, vec![0, 1, 2, 3, 4, 5, 5], &settings(2, None), 3, 0, 0);
        assert_eq!(
            t.nodes,
            vec![
                Node::Split {
                    feature: 1,
                    threshold: 0.5,
                    left: 1,
                    right: 2
                },
                Node::Leaf(0.0),
                Node::Leaf(1.0),
            ]
        );
    }

    #[test]
    fn constant_features_and_pure_nodes_make_leaves() {
        let x = [1.0f32, 1.0, 1.0, 1.0];
        let y = [false, true, true, true];
        let s = Samples { x: &x, d: 1, y: &y };
        let t = grow(&s, (0..4).collect(), &settings(1, None), 1, 0, 0);
        assert_eq!(t.nodes, vec![Node::Leaf(0.75)]);
        let s = Samples {
            x: &[1.0, 2.0],
            d: 1,
            y: &[true, true],
        };
        let t = grow(&s, vec![0, 1], &settings(1, None), 1, 0, 0);
        assert_eq!(t.nodes, vec![Node::Leaf(1.0)]);
    }

    #[test]
    fn midpoint_stays_between_adjacent_floats() {
        let a = 1.0f32;
        let b = f32::from_bits(a.to_bits() + 1);
        let m = midpoint(a, b);
        assert!(a <= m && m < b);
        assert_eq!(midpoint(1.0, 2.0), 1.5);
    }

    #[test]
    fn bad_samples_are_refused_with_what_was_found() {
        let e = Samples {
            x: &[1.0, f32::NAN],
            d: 1,
            y: &[true, false],
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(e.contains("feature 0 of row 1 is NaN"), "{e}");
        let e = Samples {
            x: &[1.0],
            d: 2,
            y: &[true],
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(e.contains("1 feature values for 1 rows of 2"), "{e}");
    }
}
