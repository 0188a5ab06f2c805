//! Which tiles' halo rings hold a changed cell: the changes each tile learns from the
//! coordinator with the next Propose (a tile applies its own core's changes when it
//! commits them).

use flus_shared::ca::TileRect;

/// The tiles of a run, looked up by position.
pub struct HaloIndex {
    rects: Vec<TileRect>,
    r: usize,
    /// First column of each column of tiles, ascending.
    xs: Vec<usize>,
    /// First row of each row of tiles, ascending.
    ys: Vec<usize>,
    /// The tile at (row of tiles, column of tiles), row-major; `None` where the tiles
    /// are not a regular grid.
    at: Option<Vec<u32>>,
}

impl HaloIndex {
    /// The index of `rects` with halo width `r`.
    pub fn new(rects: &[TileRect], r: usize) -> Self {
        let mut xs: Vec<usize> = rects.iter().map(|t| t.x0).collect();
        let mut ys: Vec<usize> = rects.iter().map(|t| t.y0).collect();
        xs.sort_unstable();
        xs.dedup();
        ys.sort_unstable();
        ys.dedup();
        let mut at = vec![None; xs.len() * ys.len()];
        for (i, t) in rects.iter().enumerate() {
            let (row, col) = (
                ys.partition_point(|&y| y < t.y0),
                xs.partition_point(|&x| x < t.x0),
            );
            at[row * xs.len() + col] = Some(i as u32);
        }
        // every slot holds one tile, and the tiles start at column and row 0
        let regular = xs.first() == Some(&0)
            && ys.first() == Some(&0)
            && rects.len() == at.len()
            && at.iter().all(Option::is_some);
        Self {
            rects: rects.to_vec(),
            r,
            xs,
            ys,
            at: regular.then(|| at.into_iter().flatten().collect()),
        }
    }

    /// Whether `cell` lies in tile `t`'s halo ring (its window minus its core).
    pub fn contains(&self, t: usize, cell: u64) -> bool {
        let rc = &self.rects[t];
        let (x, y) = (
            (cell as usize % rc.grid_width) as i64,
            (cell as usize / rc.grid_width) as i64,
        );
        let r = self.r as i64;
        let (x0, y0) = (rc.x0 as i64, rc.y0 as i64);
        let (x1, y1) = (x0 + rc.width as i64, y0 + rc.height as i64);
        let in_window = x >= x0 - r && x < x1 + r && y >= y0 - r && y < y1 + r;
        let in_core = x >= x0 && x < x1 && y >= y0 && y < y1;
        in_window && !in_core
    }

    /// For each tile, the positions in `changes` of the cells in its halo ring,
    /// ascending. Only the tiles within `r` of a cell are looked at (all of them when
    /// the tiles are not a regular grid).
    pub fn per_tile(&self, changes: &[(u64, u8)]) -> Vec<Vec<u32>> {
        let mut lists = vec![Vec::new(); self.rects.len()];
        let Some(at) = &self.at else {
            for (i, &(cell, _)) in changes.iter().enumerate() {
                for (t, list) in lists.iter_mut().enumerate() {
                    if self.contains(t, cell) {
                        list.push(i as u32);
                    }
                }
            }
            return lists;
        };
        let Some(first) = self.rects.first() else {
            return lists;
        };
        let w = first.grid_width;
        // the column (row) of tiles that holds column x (row y)
        let col = |x: usize| self.xs.partition_point(|&x0| x0 <= x) - 1;
        let row = |y: usize| self.ys.partition_point(|&y0| y0 <= y) - 1;
        for (i, &(cell, _)) in changes.iter().enumerate() {
            let (x, y) = (cell as usize % w, cell as usize / w);
            for ty in row(y.saturating_sub(self.r))..=row(y + self.r) {
                for tx in col(x.saturating_sub(self.r))..=col(x + self.r) {
                    let t = at[ty * self.xs.len() + tx] as usize;
                    if self.contains(t, cell) {
                        lists[t].push(i as u32);
                    }
                }
            }
        }
        lists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` x `cols` tiles of 10 x 8 cells.
    fn grid(rows: usize, cols: usize) -> Vec<TileRect> {
        flus_shared::ca::Tiling { rows, cols }
            .rects(cols * 10, rows * 8)
            .unwrap()
    }

    #[test]
    fn each_change_goes_to_the_tiles_whose_halo_ring_holds_it_and_nowhere_else() {
        for (rows, cols, r) in [(3, 4, 1), (2, 2, 2), (1, 5, 1), (4, 1, 3)] {
            let rects = grid(rows, cols);
            let (w, h) = (cols * 10, rows * 8);
            let index = HaloIndex::new(&rects, r);
            assert!(index.at.is_some());
            let changes: Vec<(u64, u8)> = (0..(w * h) as u64).map(|c| (c, 0)).collect();
            let lists = index.per_tile(&changes);
            for (t, rc) in rects.iter().enumerate() {
                // by hand: cells within r of the core, outside it, on the grid
                let want: Vec<u32> = (0..w * h)
                    .filter(|&c| {
                        let (x, y) = ((c % w) as i64, (c / w) as i64);
                        let (x0, y0, r) = (rc.x0 as i64, rc.y0 as i64, r as i64);
                        let window =
                            x >= x0 - r && x < x0 + 10 + r && y >= y0 - r && y < y0 + 8 + r;
                        let core = x >= x0 && x < x0 + 10 && y >= y0 && y < y0 + 8;
                        window && !core
                    })
                    .map(|c| c as u32)
                    .collect();
                assert_eq!(lists[t], want, "{rows}x{cols} tiles, r = {r}, tile {t}");
            }
        }
    }

    #[test]
    fn tiles_that_are_not_a_grid_are_searched_one_by_one() {
        // two tiles side by side over 20 x 8 cells, and a third over the same first
        // columns: no regular grid
        let mut rects = grid(1, 2);
        rects.push(TileRect {
            x0: 0,
            y0: 0,
            width: 5,
            height: 8,
            grid_width: 20,
        });
        let index = HaloIndex::new(&rects, 1);
        assert!(index.at.is_none());
        // cell (10, 3): in the ring of tile 0 (columns -1 and 10), in the core of tile 1;
        // cell (5, 3): in the core of tile 0, in the ring of tile 2 (it ends at column 4)
        let lists = index.per_tile(&[(3 * 20 + 10, 1), (3 * 20 + 5, 2)]);
        assert_eq!(lists, vec![vec![0], vec![], vec![1]]);
    }
}
