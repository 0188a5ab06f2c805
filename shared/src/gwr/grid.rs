//! A uniform bucket grid over the points: disc queries that return the points in
//! ascending index order without sorting (when the points are numbered in the grid's
//! own order, see [`Grid::order`]), and a summed-area table of the cell counts that
//! bounds the k-th nearest distance in O(log) time.

/// Points per cell aimed at.
const PER_CELL: f64 = 4.0;

/// The grid geometry of a point set: origin, square cell side, cells per axis.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    x0: f64,
    y0: f64,
    cell: f64,
    nx: usize,
    ny: usize,
}

impl Geometry {
    fn of(coords: &[[f64; 2]]) -> Self {
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for c in coords {
            for a in 0..2 {
                lo[a] = lo[a].min(c[a]);
                hi[a] = hi[a].max(c[a]);
            }
        }
        if coords.is_empty() {
            lo = [0.0; 2];
            hi = [0.0; 2];
        }
        let (w, h) = (hi[0] - lo[0], hi[1] - lo[1]);
        let cells = (coords.len() as f64 / PER_CELL).max(1.0);
        let mut cell = if w > 0.0 && h > 0.0 {
            (w * h / cells).sqrt()
        } else {
            w.max(h) / cells
        };
        if !(cell > 0.0 && cell.is_finite()) {
            cell = 1.0;
        }
        let nx = ((w / cell) as usize + 1).min(4 * coords.len() + 1);
        let ny = ((h / cell) as usize + 1).min(4 * coords.len() + 1);
        // keep nx * ny within a few cells per point (very elongated extents)
        let cell = if nx.saturating_mul(ny) > 8 * coords.len() + 16 {
            (w.max(h) / cells).max(cell)
        } else {
            cell
        };
        let nx = (w / cell) as usize + 1;
        let ny = (h / cell) as usize + 1;
        Self {
            x0: lo[0],
            y0: lo[1],
            cell,
            nx,
            ny,
        }
    }

    /// Cell column (or row) of coordinate `v` on axis origin `o` with `n` cells,
    /// clamped to the grid.
    fn axis(&self, v: f64, o: f64, n: usize) -> usize {
        let t = ((v - o) / self.cell).floor();
        if t <= 0.0 {
            0
        } else {
            (t as usize).min(n - 1)
        }
    }

    fn cell_of(&self, c: [f64; 2]) -> (usize, usize) {
        (
            self.axis(c[0], self.x0, self.nx),
            self.axis(c[1], self.y0, self.ny),
        )
    }

    fn key(&self, c: [f64; 2]) -> usize {
        let (cx, cy) = self.cell_of(c);
        cy * self.nx + cx
    }
}

/// The bucket grid.
#[derive(Debug)]
pub(crate) struct Grid {
    g: Geometry,
    /// Points of cell k: pts[start[k]..start[k + 1]], ascending.
    start: Vec<usize>,
    pts: Vec<usize>,
    /// Whether pts is 0..n (the points are numbered in grid order).
    identity: bool,
    /// Summed-area table of the counts, (ny + 1) x (nx + 1).
    sat: Vec<u32>,
}

impl Grid {
    /// The indices of `coords` in the grid's order (row-major cells, then index): numbering
    /// the points this way makes every disc query come out ascending without a sort.
    pub(crate) fn order(coords: &[[f64; 2]]) -> Vec<usize> {
        let g = Geometry::of(coords);
        let mut keyed: Vec<(usize, usize)> = coords
            .iter()
            .enumerate()
            .map(|(i, c)| (g.key(*c), i))
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|(_, i)| i).collect()
    }

    /// The grid over `coords`.
    pub(crate) fn new(coords: &[[f64; 2]]) -> Self {
        let g = Geometry::of(coords);
        let cells = g.nx * g.ny;
        let mut count = vec![0usize; cells + 1];
        for c in coords {
            count[g.key(*c) + 1] += 1;
        }
        for k in 0..cells {
            count[k + 1] += count[k];
        }
        let start = count;
        let mut fill = start.clone();
        let mut pts = vec![0; coords.len()];
        for (i, c) in coords.iter().enumerate() {
            let k = g.key(*c);
            pts[fill[k]] = i;
            fill[k] += 1;
        }
        let identity = pts.iter().enumerate().all(|(t, &i)| t == i);
        let w = g.nx + 1;
        let mut sat = vec![0u32; (g.ny + 1) * w];
        for cy in 0..g.ny {
            for cx in 0..g.nx {
                let k = cy * g.nx + cx;
                let n = (start[k + 1] - start[k]) as u32;
                sat[(cy + 1) * w + cx + 1] =
                    n + sat[cy * w + cx + 1] + sat[(cy + 1) * w + cx] - sat[cy * w + cx];
            }
        }
        Self {
            g,
            start,
            pts,
            identity,
            sat,
        }
    }

    /// Points in the cells [cx0, cx1] x [cy0, cy1] (inclusive).
    fn count(&self, cx0: usize, cy0: usize, cx1: usize, cy1: usize) -> usize {
        let w = self.g.nx + 1;
        (self.sat[(cy1 + 1) * w + cx1 + 1] + self.sat[cy0 * w + cx0]
            - self.sat[cy0 * w + cx1 + 1]
            - self.sat[(cy1 + 1) * w + cx0]) as usize
    }

    /// A radius around `c` within which at least `k` points lie (k <= n): the smallest
    /// square of cells around c's cell holding k points, whose every point lies within
    /// (m + 1) cells in each axis of c (plus c's distance to the grid when outside).
    pub(crate) fn radius_holding(&self, c: [f64; 2], k: usize) -> f64 {
        let g = &self.g;
        let (cx, cy) = g.cell_of(c);
        let square = |m: usize| {
            self.count(
                cx.saturating_sub(m),
                cy.saturating_sub(m),
                (cx + m).min(g.nx - 1),
                (cy + m).min(g.ny - 1),
            )
        };
        let max_m = g.nx.max(g.ny);
        let mut hi = 1usize;
        while hi < max_m && square(hi) < k {
            hi *= 2;
        }
        let hi = hi.min(max_m);
        let mut lo = 0usize;
        if square(0) >= k {
            return self.bound(c, 0);
        }
        // square(lo) < k <= square(hi)
        let mut hi = hi;
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if square(mid) >= k {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        self.bound(c, hi)
    }

    /// Distance within which every point of the square of half-width m cells around c's
    /// cell lies.
    fn bound(&self, c: [f64; 2], m: usize) -> f64 {
        let g = &self.g;
        // distance from c to the grid's box (0 inside), then the square's reach
        let x1 = g.x0 + g.nx as f64 * g.cell;
        let y1 = g.y0 + g.ny as f64 * g.cell;
        let dx = (g.x0 - c[0]).max(c[0] - x1).max(0.0);
        let dy = (g.y0 - c[1]).max(c[1] - y1).max(0.0);
        let outside = (dx * dx + dy * dy).sqrt();
        ((m + 1) as f64 * g.cell * std::f64::consts::SQRT_2 + outside) * (1.0 + 1e-9)
    }

    /// Calls `f(j)` for every point j in the cells that meet the disc of radius `r`
    /// around `c`, in ascending j when the points are in grid order (row by row,
    /// each row a contiguous run).
    pub(crate) fn for_each_near(&self, c: [f64; 2], r: f64, mut f: impl FnMut(usize)) {
        let g = &self.g;
        let (cx0, cy0) = g.cell_of([c[0] - r, c[1] - r]);
        let (cx1, cy1) = g.cell_of([c[0] + r, c[1] + r]);
        for cy in cy0..=cy1 {
            let a = self.start[cy * g.nx + cx0];
            let b = self.start[cy * g.nx + cx1 + 1];
            if self.identity {
                (a..b).for_each(&mut f);
            } else {
                self.pts[a..b].iter().for_each(|&j| f(j));
            }
        }
    }

    /// Calls `f(a..b)` for every run of points in the cells that meet the disc of
    /// radius `r` around `c` (one run per row of cells, ascending), when the points are
    /// numbered in grid order ([`Self::ordered`]); else `f(j..j + 1)` for each point as
    /// [`Self::for_each_near`] lists them.
    pub(crate) fn for_each_run_near(
        &self,
        c: [f64; 2],
        r: f64,
        mut f: impl FnMut(std::ops::Range<usize>),
    ) {
        if !self.identity {
            return self.for_each_near(c, r, |j| f(j..j + 1));
        }
        let g = &self.g;
        let (cx0, cy0) = g.cell_of([c[0] - r, c[1] - r]);
        let (cx1, cy1) = g.cell_of([c[0] + r, c[1] + r]);
        for cy in cy0..=cy1 {
            f(self.start[cy * g.nx + cx0]..self.start[cy * g.nx + cx1 + 1]);
        }
    }

    /// Whether [`Self::for_each_near`] lists points in ascending order.
    pub(crate) fn ordered(&self) -> bool {
        self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 x 10 lattice at unit spacing: every disc query's points, filtered by
    /// distance, equal a brute-force scan, and the radius bound holds k points.
    #[test]
    fn disc_queries_and_radius_bounds_agree_with_a_scan() {
        let mut coords = Vec::new();
        for i in 0..10 {
            for j in 0..10 {
                coords.push([j as f64, i as f64 * 1.5]);
            }
        }
        let order = Grid::order(&coords);
        let coords: Vec<[f64; 2]> = order.iter().map(|&i| coords[i]).collect();
        let grid = Grid::new(&coords);
        assert!(grid.ordered());
        let d = |a: [f64; 2], b: [f64; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        for c in [[0.0, 0.0], [4.3, 7.1], [9.0, 13.5], [-3.0, 20.0]] {
            for r in [0.5, 1.0, 2.5, 6.0, 30.0] {
                let mut got = Vec::new();
                grid.for_each_near(c, r, |j| {
                    if d(c, coords[j]) <= r {
                        got.push(j)
                    }
                });
                let want: Vec<usize> = (0..coords.len())
                    .filter(|&j| d(c, coords[j]) <= r)
                    .collect();
                assert_eq!(got, want, "c {c:?} r {r}");
            }
            for k in [1, 5, 17, 60, 100] {
                let r = grid.radius_holding(c, k);
                let inside = coords.iter().filter(|&&q| d(c, q) <= r).count();
                assert!(inside >= k, "c {c:?} k {k}: {inside} within {r}");
            }
        }
    }
}
