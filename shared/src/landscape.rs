//! The landscape figures PLUS is judged by (docs/design.md §6): per class, the number of
//! patches and the mean patch size of the new land of a change (cells of class k after
//! that were not k before), for the simulated and the observed change of a validation.
//!
//! Patches are 8-connected (a cell joins the patch of any of its eight neighbours of the
//! same new class, FRAGSTATS's default rule); cells invalid in either map are no new land.
//! One scan in row order with a union-find over provisional labels: memory is two rows
//! plus the new cells' labels, not the grid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ca::INVALID;

/// The new land of one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewLand {
    /// Cells that became the class.
    pub cells: u64,
    /// Their 8-connected patches.
    pub patches: u64,
    /// Mean patch size in cells (None without patches).
    pub mean_size: Option<f64>,
    /// Largest patch in cells (0 without patches).
    pub largest: u64,
}

const NONE: u32 = u32::MAX;

/// Union-find over provisional labels, with each label's class.
struct Labels {
    parent: Vec<u32>,
    class: Vec<u8>,
}

impl Labels {
    fn find(&mut self, mut a: u32) -> u32 {
        while self.parent[a as usize] != a {
            let up = self.parent[self.parent[a as usize] as usize];
            self.parent[a as usize] = up;
            a = up;
        }
        a
    }

    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (ra, rb) = (self.find(a), self.find(b));
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent[hi as usize] = lo;
        lo
    }
}

/// Patches of the new land per class 0..k of the change `before` -> `after` (row-major
/// class maps of `width` columns, [`INVALID`] for no data).
pub fn new_land_patches(before: &[u8], after: &[u8], width: usize, k: usize) -> Vec<NewLand> {
    let n = before.len().min(after.len());
    let mut labels = Labels {
        parent: Vec::new(),
        class: Vec::new(),
    };
    let mut cells = vec![0u64; k];
    let mut prev = vec![NONE; width];
    let mut cur = vec![NONE; width];
    let mut cell_label: Vec<u32> = Vec::new();
    for y in 0..n.div_ceil(width.max(1)) {
        for x in 0..width {
            let i = y * width + x;
            cur[x] = NONE;
            if i >= n {
                continue;
            }
            let (b, a) = (before[i], after[i]);
            if a == INVALID || b == INVALID || a == b || a as usize >= k {
                continue;
            }
            cells[a as usize] += 1;
            let mut label = NONE;
            let up = |dx: isize| -> u32 {
                let xx = x as isize + dx;
                if y == 0 || xx < 0 || xx >= width as isize {
                    NONE
                } else {
                    prev[xx as usize]
                }
            };
            let left = if x > 0 { cur[x - 1] } else { NONE };
            for l in [left, up(-1), up(0), up(1)] {
                if l == NONE || labels.class[l as usize] != a {
                    continue;
                }
                label = if label == NONE {
                    labels.find(l)
                } else {
                    labels.union(label, l)
                };
            }
            if label == NONE {
                label = labels.parent.len() as u32;
                labels.parent.push(label);
                labels.class.push(a);
            }
            cur[x] = label;
            cell_label.push(label);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    // patch sizes by root
    let mut size = vec![0u64; labels.parent.len()];
    for &l in &cell_label {
        let r = labels.find(l);
        size[r as usize] += 1;
    }
    let mut out: Vec<NewLand> = cells
        .iter()
        .map(|&c| NewLand {
            cells: c,
            patches: 0,
            mean_size: None,
            largest: 0,
        })
        .collect();
    for (l, &s) in size.iter().enumerate() {
        if s > 0 {
            let o = &mut out[labels.class[l] as usize];
            o.patches += 1;
            o.largest = o.largest.max(s);
        }
    }
    for o in &mut out {
        if o.patches > 0 {
            o.mean_size = Some(o.cells as f64 / o.patches as f64);
        }
    }
    out
}

/// The validation's `patches` (`flus validate --json`, run.json): per class, the new
/// land's patches of the observed change (`start` -> `truth`) and of the simulated one
/// (`start` -> `simulated`), 8-connected, sizes in cells.
pub fn validation_json(
    names: &[String],
    start: &[u8],
    truth: &[u8],
    simulated: &[u8],
    width: usize,
) -> PatchesJson {
    let k = names.len();
    let observed = new_land_patches(start, truth, width, k);
    let sim = new_land_patches(start, simulated, width, k);
    let by_class = names
        .iter()
        .zip(observed.into_iter().zip(sim))
        .map(|(n, (observed, simulated))| {
            (
                n.clone(),
                ClassPatches {
                    observed,
                    simulated,
                },
            )
        })
        .collect();
    PatchesJson {
        connectivity: 8,
        size_unit: "cells".into(),
        by_class,
    }
}

/// The validation's patches of new land (`flus validate --json` and run.json
/// `validation.patches`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchesJson {
    /// The patches' connectivity: 8 (a cell joins any of its eight neighbours).
    pub connectivity: u32,
    /// The unit of the sizes: `cells`.
    pub size_unit: String,
    /// Per class name, its new land observed and simulated.
    pub by_class: BTreeMap<String, ClassPatches>,
}

/// One class's new land over the validation period, observed and simulated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassPatches {
    /// The observed change's (start map -> later map).
    pub observed: NewLand,
    /// The simulated change's (start map -> simulated map).
    pub simulated: NewLand,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_of_new_land_by_hand() {
        // before: all class 0 but an invalid cell (X) and old class-1 cells (o);
        // after: new class-1 cells (1), new class-2 cells (2).
        //
        //   after        before
        //   1 1 . . 2    0 0 0 0 0
        //   . . 1 . 2    0 0 0 0 0
        //   1 . . . .    0 0 0 X 0
        //   1 . 1 1 1    0 0 0 o 0
        //   . . . 2 .    0 0 0 0 0
        //
        // Class 1, 8-connected: {(0,0),(1,0),(2,1)} joined diagonally = 1 patch of 3;
        // {(0,2),(0,3)} = 1 patch of 2; (2,3) and (4,3) are new, (3,3) was already 1, so
        // they are two patches of 1 (not touching: x = 2 and x = 4). Total 4 patches,
        // 7 cells, mean 1.75, largest 3. Class 2: {(4,0),(4,1)} and (3,4), which touches
        // (2,3)/(4,3) of class 1 only: 2 patches, 3 cells, mean 1.5.
        let (w, h) = (5usize, 5usize);
        let mut before = vec![0u8; w * h];
        before[2 * w + 3] = INVALID;
        before[3 * w + 3] = 1;
        let mut after = before.clone();
        for (x, y) in [
            (0, 0),
            (1, 0),
            (2, 1),
            (0, 2),
            (0, 3),
            (2, 3),
            (3, 3),
            (4, 3),
        ] {
            after[y * w + x] = 1;
        }
        for (x, y) in [(4, 0), (4, 1), (3, 4)] {
            after[y * w + x] = 2;
        }
        let p = new_land_patches(&before, &after, w, 3);
        assert_eq!(
            p[0],
            NewLand {
                cells: 0,
                patches: 0,
                mean_size: None,
                largest: 0
            }
        );
        assert_eq!(
            p[1],
            NewLand {
                cells: 7,
                patches: 4,
                mean_size: Some(1.75),
                largest: 3
            }
        );
        assert_eq!(
            p[2],
            NewLand {
                cells: 3,
                patches: 2,
                mean_size: Some(1.5),
                largest: 2
            }
        );
        let _ = h;
    }

    #[test]
    fn a_u_shape_whose_arms_meet_late_is_one_patch() {
        // new class 1 (before all 0):
        //   1 . . . 1
        //   1 . . . 1
        //   1 1 1 1 1      -> the two arms get different labels, merged on row 2: 1 patch of 9
        //   . . . . .
        //   1 . 1 . .      -> two single cells two apart: 2 patches
        let w = 5;
        let before = vec![0u8; 25];
        let mut after = before.clone();
        for (x, y) in [
            (0, 0),
            (4, 0),
            (0, 1),
            (4, 1),
            (0, 2),
            (1, 2),
            (2, 2),
            (3, 2),
            (4, 2),
            (0, 4),
            (2, 4),
        ] {
            after[y * w + x] = 1;
        }
        let p = new_land_patches(&before, &after, w, 2);
        assert_eq!((p[1].cells, p[1].patches, p[1].largest), (11, 3, 9));
        assert_eq!(p[1].mean_size, Some(11.0 / 3.0));
        // a diagonal staircase is one 8-connected patch (it would be 4 with 4-connectivity)
        let mut after = before.clone();
        for d in 0..4 {
            after[d * w + d] = 1;
        }
        let p = new_land_patches(&before, &after, w, 2);
        assert_eq!((p[1].cells, p[1].patches), (4, 1));
    }
}
