//! Neighbour search with a bucket grid ([`super::grid`]): the k-th nearest distance and
//! the points with a non-zero kernel weight, never an n x n distance matrix; an R*-tree
//! (rstar) gives the closest pair for the fixed-bandwidth search interval.
//!
//! Every distance is recomputed here as sqrt(dx^2 + dy^2) from the coordinates, and the
//! neighbours of a point are listed in ascending index order, so a local fit is a pure
//! function of (point, bandwidth) whichever search path found its neighbours.

use rstar::primitives::GeomWithData;
use rstar::RTree;

use super::grid::Grid;
use super::kernel::{Kernel, Weighting, ADAPTIVE_EPS};
use crate::area::great_circle_km;

type Entry = GeomWithData<[f64; 2], usize>;

/// Adaptive neighbourhoods of more than n / SCAN_SHARE points scan every point.
const SCAN_SHARE: usize = 4;

/// A spatial index over the points.
#[derive(Debug)]
pub struct SpatialIndex {
    tree: RTree<Entry>,
    grid: Grid,
    coords: Vec<[f64; 2]>,
    /// Great-circle km between (lon, lat) degrees: every query scans all points.
    spherical: bool,
}

/// Reusable per-thread buffers of a neighbour query.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Indices of the points with a non-zero weight, ascending.
    pub idx: Vec<usize>,
    /// Their weights.
    pub w: Vec<f64>,
    dist: Vec<f64>,
    /// Squared distances to every point (index order), adaptive brute-force path.
    d2: Vec<f64>,
    /// Subsample of squared distances (bracketing the k-th one).
    sub: Vec<f64>,
    /// Squared radius (widened) whose points `idx` holds after a radius search.
    covered2: f64,
}

/// What earlier adaptive queries around one location found: (k, the k-th smallest
/// squared distance) pairs. A later query for k' <= k needs only the points within that
/// distance (the k'-th nearest cannot lie farther), a tighter candidate set than the
/// grid's count bound; the bandwidth search asks every point again at each probe, and
/// its probes converge, so the recorded distances soon bracket the next ones closely.
/// The selection among the candidates is exact, so neighbours, distances and weights
/// are the same bits with or without a memo (test
/// `memo_gives_the_same_neighbours_and_weights_bit_for_bit`).
#[derive(Debug, Default)]
pub(crate) struct KthMemo {
    known: std::sync::Mutex<Vec<(usize, f64)>>,
}

impl KthMemo {
    /// The smallest recorded squared distance of a k'' >= k (None if none).
    fn bound(&self, k: usize) -> Option<f64> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .iter()
            .filter(|&&(kk, _)| kk >= k)
            .map(|&(_, d2)| d2)
            .min_by(|a, b| a.total_cmp(b))
    }

    /// Records the k-th smallest squared distance.
    fn record(&self, k: usize, d2: f64) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if !known.iter().any(|&(kk, _)| kk == k) {
            known.push((k, d2));
        }
    }
}

/// Every SUBSAMPLE-th point (by index) estimates where the k-th distance lies.
const SUBSAMPLE: usize = 64;

/// Below this many points the k-th distance is selected directly.
const DIRECT_SELECT: usize = 4096;

/// The `k`-th smallest (1-based) of `d2`, exactly. A subsample of every
/// [`SUBSAMPLE`]-th value brackets it; one pass counts the values below the bracket and
/// keeps those inside, and the k-th is selected among those few (a full selection only
/// when the bracket misses, so the result never depends on the subsample).
fn kth_smallest(d2: &[f64], k: usize, buf: &mut Vec<f64>, sub: &mut Vec<f64>) -> f64 {
    let n = d2.len();
    let select = |buf: &mut Vec<f64>, r: usize| -> f64 {
        *buf.select_nth_unstable_by(r, |a, b| a.total_cmp(b)).1
    };
    if n < DIRECT_SELECT {
        buf.clear();
        buf.extend_from_slice(d2);
        return select(buf, k - 1);
    }
    sub.clear();
    sub.extend(d2.iter().step_by(SUBSAMPLE).copied());
    sub.sort_unstable_by(|a, b| a.total_cmp(b));
    let m = sub.len();
    let pos = (k - 1) as f64 / SUBSAMPLE as f64;
    let spread = 4.0 * pos.max(1.0).sqrt() + 4.0;
    let lo = pos - spread;
    let hi = pos + spread;
    let lo = if lo < 0.0 {
        f64::NEG_INFINITY
    } else {
        sub[lo as usize]
    };
    let hi = if hi as usize >= m {
        f64::INFINITY
    } else {
        sub[hi as usize]
    };
    buf.clear();
    let mut below = 0usize;
    for &v in d2 {
        if v < lo {
            below += 1;
        } else if v <= hi {
            buf.push(v);
        }
    }
    if below < k && k <= below + buf.len() {
        select(buf, k - 1 - below)
    } else {
        buf.clear();
        buf.extend_from_slice(d2);
        select(buf, k - 1)
    }
}

/// Appends to `idx` and `d2s` the points j of `run` (ascending) whose squared distance
/// to `c` is at most `r2`, and that distance: every point is written and the count moves
/// on only for those kept, so there is no branch on the distance (the points near the
/// disc's edge pass or fail in no predictable pattern).
#[inline]
fn keep_within(
    coords: &[[f64; 2]],
    c: [f64; 2],
    run: std::ops::Range<usize>,
    r2: f64,
    idx: &mut Vec<usize>,
    d2s: &mut Vec<f64>,
) {
    let start = idx.len();
    let len = run.len();
    idx.resize(start + len, 0);
    d2s.resize(start + len, 0.0);
    let (ib, db) = (&mut idx[start..], &mut d2s[start..]);
    let mut kept = 0;
    for (j, q) in run.clone().zip(&coords[run]) {
        let d2 = distance2(c, *q);
        ib[kept] = j;
        db[kept] = d2;
        kept += (d2 <= r2) as usize;
    }
    idx.truncate(start + kept);
    d2s.truncate(start + kept);
}

/// Candidates beyond the k-th below which [`kth_among_largest`] replaces a selection.
const FEW_ABOVE: usize = 16;

/// The `k`-th smallest (1-based, total order) of `v` when it is among the few largest
/// (`v.len() - k < FEW_ABOVE`): one pass keeps the r = len - k + 1 largest values
/// sorted, and the k-th smallest is the r-th largest. A selection would copy the values
/// and partition them several times; once the bandwidth search's probes converge, the
/// memo's bound leaves only a few candidates beyond the k-th.
fn kth_among_largest(v: &[f64], k: usize) -> f64 {
    let r = v.len() + 1 - k;
    debug_assert!((1..=FEW_ABOVE).contains(&r));
    // top[..r]: the r largest seen so far, descending (NEG_INFINITY until filled: every
    // squared distance is larger)
    let mut top = [f64::NEG_INFINITY; FEW_ABOVE];
    for &x in v {
        if x.total_cmp(&top[r - 1]).is_gt() {
            let mut at = r - 1;
            while at > 0 && x.total_cmp(&top[at - 1]).is_gt() {
                top[at] = top[at - 1];
                at -= 1;
            }
            top[at] = x;
        }
    }
    top[r - 1]
}

#[inline]
fn distance2(a: [f64; 2], b: [f64; 2]) -> f64 {
    let dx = a[0] - b[0];
    let dy = a[1] - b[1];
    dx * dx + dy * dy
}

#[inline]
fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    distance2(a, b).sqrt()
}

impl SpatialIndex {
    /// Bulk-loads the index (planar distances).
    pub fn new(coords: &[[f64; 2]]) -> Self {
        Self::with_metric(coords, false)
    }

    /// Bulk-loads the index; with `spherical` the coordinates are (longitude, latitude)
    /// in degrees and distances great-circle kilometres ([`great_circle_km`]), found by
    /// scanning every point (O(n) per query: the planar grid and tree do not apply).
    pub fn with_metric(coords: &[[f64; 2]], spherical: bool) -> Self {
        let entries = coords
            .iter()
            .enumerate()
            .map(|(i, c)| GeomWithData::new(*c, i))
            .collect();
        Self {
            tree: RTree::bulk_load(entries),
            grid: Grid::new(coords),
            coords: coords.to_vec(),
            spherical,
        }
    }

    /// Squared distance between `a` and `b` in the index's metric.
    #[inline]
    fn metric2(&self, a: [f64; 2], b: [f64; 2]) -> f64 {
        if self.spherical {
            let d = great_circle_km(a, b);
            d * d
        } else {
            distance2(a, b)
        }
    }

    /// Distance between `a` and `b` in the index's metric.
    #[inline]
    fn metric(&self, a: [f64; 2], b: [f64; 2]) -> f64 {
        if self.spherical {
            great_circle_km(a, b)
        } else {
            distance(a, b)
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.coords.len()
    }

    /// Whether the index holds no point.
    pub fn is_empty(&self) -> bool {
        self.coords.is_empty()
    }

    /// Distance from point `i` to its `k`-th nearest point (1-based, the point itself
    /// first at distance 0). `k` in 1..=n.
    pub fn kth_distance(&self, i: usize, k: usize, scratch_dist: &mut Vec<f64>) -> f64 {
        self.kth_distance_at(self.coords[i], k, scratch_dist)
    }

    /// Distance from location `c` to its `k`-th nearest point (1-based; a point at `c`
    /// counts, at distance 0). `k` in 1..=n.
    pub fn kth_distance_at(&self, c: [f64; 2], k: usize, scratch_dist: &mut Vec<f64>) -> f64 {
        let n = self.coords.len();
        // sqrt is monotone: the k-th distance is the root of the k-th squared one
        if self.spherical || k.saturating_mul(SCAN_SHARE) > n {
            let d2: Vec<f64> = self.coords.iter().map(|q| self.metric2(c, *q)).collect();
            let mut sub = Vec::new();
            kth_smallest(&d2, k, scratch_dist, &mut sub).sqrt()
        } else {
            let mut s = Scratch::default();
            self.kth_near(c, k, &mut s, None).sqrt()
        }
    }

    /// The `k`-th smallest squared distance from `c` (k <= n) through the grid: every
    /// point within a radius that holds at least k points (from the grid's cell counts)
    /// is listed, and the k-th is selected among them (every point outside lies
    /// farther). Leaves those points in `s.idx` (ascending when the points are in grid
    /// order), their squared distances in `s.d2` and the squared radius in `s.covered2`.
    fn kth_near(&self, c: [f64; 2], k: usize, s: &mut Scratch, radius: Option<f64>) -> f64 {
        let r = radius.unwrap_or_else(|| self.grid.radius_holding(c, k));
        let r2 = r * r;
        s.idx.clear();
        s.d2.clear();
        let coords = &self.coords;
        let (idx, d2s) = (&mut s.idx, &mut s.d2);
        self.grid
            .for_each_run_near(c, r, |run| keep_within(coords, c, run, r2, idx, d2s));
        s.covered2 = r2;
        s.dist.clear();
        if s.d2.len() < k {
            // never expected (the grid's bound holds k points): select over every point,
            // and leave no candidates for reuse
            s.idx.clear();
            s.d2.clear();
            s.dist.extend(self.coords.iter().map(|q| distance2(c, *q)));
        } else if s.d2.len() - k < FEW_ABOVE {
            // a tight memo bound: the k-th is among the few largest candidates
            return kth_among_largest(&s.d2, k);
        } else {
            s.dist.extend_from_slice(&s.d2);
        }
        *s.dist
            .select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b))
            .1
    }

    /// The smallest distance between two distinct points (0 with duplicates) and the
    /// largest distance between any two points (the diameter, over the convex hull).
    pub fn distance_range(&self) -> (f64, f64) {
        if self.spherical {
            return self.distance_range_scan();
        }
        let mut min = f64::INFINITY;
        for (i, c) in self.coords.iter().enumerate() {
            if let Some((item, _)) = self
                .tree
                .nearest_neighbor_iter_with_distance_2(c)
                .find(|(e, _)| e.data != i)
            {
                min = min.min(distance(*c, self.coords[item.data]));
            }
        }
        let hull = convex_hull(&self.coords);
        let mut max: f64 = 0.0;
        for a in 0..hull.len() {
            for b in (a + 1)..hull.len() {
                max = max.max(distance(hull[a], hull[b]));
            }
        }
        (min, max)
    }

    /// Fills `s.idx` (ascending) and `s.w` with the points of non-zero weight around
    /// point `i` at `bandwidth` (neighbour count if adaptive, else distance). Returns the
    /// kernel scale h (0 if every neighbour of an adaptive bandwidth sits on the point).
    #[cfg(test)]
    pub(crate) fn weights(
        &self,
        i: usize,
        weighting: &Weighting,
        bandwidth: f64,
        s: &mut Scratch,
    ) -> f64 {
        self.weights_at(self.coords[i], weighting, bandwidth, s, None)
    }

    /// As [`Self::weights`] around any location `c` (mgwr's prediction kernel: the
    /// adaptive scale is the distance from `c` to its k-th nearest data point); at a data
    /// point's own location it gives exactly that point's weights. `memo` (adaptive
    /// bandwidths) holds what earlier queries around `c` found and takes this one's k-th
    /// distance; it changes no result, only how many candidates are examined.
    pub(crate) fn weights_at(
        &self,
        c: [f64; 2],
        weighting: &Weighting,
        bandwidth: f64,
        s: &mut Scratch,
        memo: Option<&KthMemo>,
    ) -> f64 {
        let n = self.coords.len();
        let kernel = weighting.kernel;
        let support = kernel.support(weighting.min_weight);
        let bisquare = support == 1.0;
        s.idx.clear();
        s.w.clear();
        s.d2.clear();
        let h = if weighting.adaptive {
            let k = (bandwidth as usize).clamp(1, n);
            if self.spherical || k.saturating_mul(SCAN_SHARE) > n || support.is_infinite() {
                return self.adaptive_scan(c, k, weighting, s, memo);
            }
            self.adaptive_h(c, k, s, memo)
        } else {
            bandwidth
        };
        let scale = Scale {
            kernel,
            h,
            radius: h * support,
            bisquare,
        };
        if h == 0.0 {
            self.coincident(c, s);
            return h;
        }
        if scale.radius.is_infinite() || self.spherical {
            self.scan(c, &scale, s);
            return h;
        }
        self.candidates(c, scale.radius, s);
        if bisquare {
            bisquare_keep(h, s);
            return h;
        }
        scale.keep_candidates(s);
        h
    }

    /// The kernel scale of an adaptive bandwidth of `k` neighbours around `c`: the k-th
    /// nearest distance (widened by [`ADAPTIVE_EPS`]), found among the points within the
    /// distance of a k'' >= k recorded in `memo` (times the kernel's scale factor,
    /// widened), which hold the k-th nearest and every point of a kernel of support 1
    /// (bisquare); wider kernels query the grid again in [`Self::candidates`]. Records
    /// this k-th distance in `memo`; `s` keeps the candidates examined.
    fn adaptive_h(&self, c: [f64; 2], k: usize, s: &mut Scratch, memo: Option<&KthMemo>) -> f64 {
        let radius = memo
            .and_then(|m| m.bound(k))
            .map(|d2| d2.sqrt() * ADAPTIVE_EPS * (1.0 + 1e-9));
        let d2 = self.kth_near(c, k, s, radius);
        if let Some(m) = memo {
            m.record(k, d2);
        }
        d2.sqrt() * ADAPTIVE_EPS
    }

    /// Degenerate adaptive bandwidth (h = 0): only the points at distance 0 from `c`
    /// (0/0 = NaN in mgwr), with weight 1 so the caller reports a singular local fit.
    fn coincident(&self, c: [f64; 2], s: &mut Scratch) {
        s.idx.clear();
        for (j, q) in self.coords.iter().enumerate() {
            if self.metric(c, *q) == 0.0 {
                s.idx.push(j);
                s.w.push(1.0);
            }
        }
    }

    /// Every point kept by `scale` around `c`, with its weight, by one pass over all
    /// points (kernels of infinite support, spherical distances).
    fn scan(&self, c: [f64; 2], scale: &Scale, s: &mut Scratch) {
        s.idx.clear();
        for (j, q) in self.coords.iter().enumerate() {
            let d = self.metric(c, *q);
            if scale.keep(d) {
                s.idx.push(j);
                s.w.push(scale.kernel.weight(d / scale.h));
            }
        }
    }

    /// Fills `s.idx` (ascending) and `s.d2` with every point whose squared distance to
    /// `c` is within `radius`² (times 1 + 1e-12). The k-th distance search may already
    /// hold all of them (all points with d² <= `s.covered2`): then they are kept as
    /// they are; else the grid is queried.
    fn candidates(&self, c: [f64; 2], radius: f64, s: &mut Scratch) {
        let r2 = radius * radius * (1.0 + 1e-12);
        if s.d2.is_empty() || s.covered2 < r2 {
            s.idx.clear();
            s.d2.clear();
            let coords = &self.coords;
            let (idx, d2s) = (&mut s.idx, &mut s.d2);
            self.grid.for_each_near(c, radius * (1.0 + 1e-9), |j| {
                let d2 = distance2(c, coords[j]);
                if d2 <= r2 {
                    idx.push(j);
                    d2s.push(d2);
                }
            });
        }
        if !self.grid.ordered() {
            let mut pairs: Vec<(usize, f64)> =
                s.idx.iter().copied().zip(s.d2.iter().copied()).collect();
            pairs.sort_unstable_by_key(|p| p.0);
            s.idx.clear();
            s.d2.clear();
            for (j, d2) in pairs {
                s.idx.push(j);
                s.d2.push(d2);
            }
        }
    }
}

/// A kernel at one location: its scale `h`, the distance `radius` beyond which weights
/// are dropped, and whether it is the bisquare (support 1: kept strictly inside `h`).
struct Scale {
    kernel: Kernel,
    h: f64,
    radius: f64,
    bisquare: bool,
}

impl Scale {
    /// Whether a point at distance `d` has a weight.
    fn keep(&self, d: f64) -> bool {
        if self.bisquare {
            d < self.h
        } else {
            d <= self.radius
        }
    }

    /// Keeps the candidates of `s` (`idx`, their squared distances `d2`, from
    /// [`SpatialIndex::candidates`]) that [`Self::keep`] keeps, with their weights in `w`.
    fn keep_candidates(&self, s: &mut Scratch) {
        let r2 = self.radius * self.radius * (1.0 + 1e-12);
        let mut kept = 0;
        for t in 0..s.idx.len() {
            // beyond r2 the root is certainly outside the kernel: skip the sqrt
            if s.d2[t] > r2 {
                continue;
            }
            let d = s.d2[t].sqrt();
            if self.keep(d) {
                s.idx[kept] = s.idx[t];
                s.w.push(self.kernel.weight(d / self.h));
                kept += 1;
            }
        }
        s.idx.truncate(kept);
    }
}

/// Keeps the candidates of `s` (`idx`, their squared distances `d2`) closer than `h`,
/// with their bisquare weights in `w`: the same points and bits as testing `d < h` and
/// taking [`Kernel::weight`]`(d / h)` one candidate at a time (every candidate beyond
/// `h` fails the test whatever its weight), but the roots, quotients and weights of all
/// candidates are computed in vector registers first (AVX2 where the CPU has it; IEEE
/// square roots and quotients are exact-rounded in every width), then the kept ones are
/// moved down without a branch.
fn bisquare_keep(h: f64, s: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected on this CPU just above.
        unsafe { bisquare_keep_avx2(h, s) };
        return;
    }
    bisquare_keep_body(h, s);
}

/// [`bisquare_keep_body`] with AVX2 enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn bisquare_keep_avx2(h: f64, s: &mut Scratch) {
    bisquare_keep_body(h, s);
}

/// See [`bisquare_keep`].
#[inline(always)]
fn bisquare_keep_body(h: f64, s: &mut Scratch) {
    let n = s.idx.len();
    s.dist.clear();
    s.dist.extend(s.d2.iter().map(|&d2| d2.sqrt()));
    s.sub.clear();
    s.sub
        .extend(s.dist.iter().map(|&d| Kernel::Bisquare.weight(d / h)));
    s.w.clear();
    s.w.resize(n, 0.0);
    let mut kept = 0;
    for t in 0..n {
        s.idx[kept] = s.idx[t];
        s.w[kept] = s.sub[t];
        kept += (s.dist[t] < h) as usize;
    }
    s.idx.truncate(kept);
    s.w.truncate(kept);
}

impl SpatialIndex {
    /// Adaptive weights around `c` when the neighbourhood is a large share of the
    /// points: the squared distances to every point are computed once, the k-th is
    /// selected from them, and the kernel is evaluated (with the square root taken) only
    /// where the weight can be non-zero. The same neighbours, distances and weights as
    /// the tree path, in ascending index order.
    fn adaptive_scan(
        &self,
        c: [f64; 2],
        k: usize,
        weighting: &Weighting,
        s: &mut Scratch,
        memo: Option<&KthMemo>,
    ) -> f64 {
        s.d2.clear();
        let d2: Vec<f64> = self.coords.iter().map(|q| self.metric2(c, *q)).collect();
        s.d2.extend(d2);
        let kth = kth_smallest(&s.d2, k, &mut s.dist, &mut s.sub);
        if let (Some(m), false) = (memo, self.spherical) {
            m.record(k, kth);
        }
        let h = kth.sqrt() * ADAPTIVE_EPS;
        s.idx.clear();
        s.w.clear();
        if h == 0.0 {
            for (j, &d2) in s.d2.iter().enumerate() {
                if d2 == 0.0 {
                    s.idx.push(j);
                    s.w.push(1.0);
                }
            }
            return h;
        }
        let kernel = weighting.kernel;
        let support = kernel.support(weighting.min_weight);
        let bisquare = support == 1.0;
        let radius = h * support;
        // beyond this squared distance the root is certainly above the radius
        let bound = if radius.is_infinite() {
            f64::INFINITY
        } else {
            radius * radius * (1.0 + 1e-12)
        };
        for (j, &d2) in s.d2.iter().enumerate() {
            if d2 <= bound {
                let d = d2.sqrt();
                let keep = if bisquare { d < h } else { d <= radius };
                if keep {
                    s.idx.push(j);
                    s.w.push(kernel.weight(d / h));
                }
            }
        }
        h
    }
}

impl SpatialIndex {
    /// [`Self::distance_range`] by comparing every pair (the spherical metric).
    fn distance_range_scan(&self) -> (f64, f64) {
        let (mut min, mut max) = (f64::INFINITY, 0f64);
        for (i, a) in self.coords.iter().enumerate() {
            for b in &self.coords[i + 1..] {
                let d = self.metric(*a, *b);
                min = min.min(d);
                max = max.max(d);
            }
        }
        (min, max)
    }
}

/// Andrew's monotone chain convex hull (vertices only).
fn convex_hull(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let mut pts = points.to_vec();
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let cross = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f64; 2]> = Vec::with_capacity(2 * pts.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f64; 2]>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gwr::Kernel;
    use crate::rng::CounterRng;

    /// Points on a line at x = 0, 1, 3, 6, 10: from point 0 the 3rd nearest (self first)
    /// is at 3; the diameter is 10 and the closest pair is 1 apart.
    #[test]
    fn kth_distance_counts_the_point_itself_and_range_is_exact() {
        let coords: Vec<[f64; 2]> = [0.0, 1.0, 3.0, 6.0, 10.0]
            .iter()
            .map(|&x| [x, 0.0])
            .collect();
        let idx = SpatialIndex::new(&coords);
        let mut buf = Vec::new();
        assert_eq!(idx.kth_distance(0, 1, &mut buf), 0.0);
        assert_eq!(idx.kth_distance(0, 3, &mut buf), 3.0);
        assert_eq!(idx.kth_distance(4, 2, &mut buf), 4.0);
        assert_eq!(idx.distance_range(), (1.0, 10.0));
    }

    /// Adaptive bisquare with k = 3 from point 0: h = 3 * 1.0000001, so points at 0, 1
    /// and 3 get weights 1, (1 - 1/h^2)^2 and a tiny positive weight.
    #[test]
    fn adaptive_bisquare_keeps_the_k_nearest_with_mgwr_weights() {
        let coords: Vec<[f64; 2]> = [0.0, 1.0, 3.0, 6.0, 10.0]
            .iter()
            .map(|&x| [x, 0.0])
            .collect();
        let idx = SpatialIndex::new(&coords);
        let mut s = Scratch::default();
        let w = Weighting {
            kernel: Kernel::Bisquare,
            adaptive: true,
            min_weight: 0.0,
        };
        let h = idx.weights(0, &w, 3.0, &mut s);
        assert_eq!(h, 3.0 * ADAPTIVE_EPS);
        assert_eq!(s.idx, vec![0, 1, 2]);
        assert_eq!(s.w[0], 1.0);
        let z = 1.0 / h;
        assert_eq!(s.w[1], (1.0 - z * z) * (1.0 - z * z));
        assert!(s.w[2] > 0.0 && s.w[2] < 1e-12);
    }

    /// The bracketed selection equals a full sort's k-th value for every k, on values
    /// in an order unrelated to their size (with ties).
    #[test]
    fn kth_smallest_equals_the_sorted_kth_for_every_k() {
        let n = 10_000;
        let d2: Vec<f64> = (0..n).map(|i| ((i * 7919) % 4999) as f64 * 0.5).collect();
        let mut sorted = d2.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let (mut buf, mut sub) = (Vec::new(), Vec::new());
        for k in (1..=n).step_by(37).chain([1, 2, n - 1, n]) {
            assert_eq!(
                kth_smallest(&d2, k, &mut buf, &mut sub),
                sorted[k - 1],
                "k = {k}"
            );
        }
    }

    /// 3,000 points clustered in two blobs (uneven density) from Philox (`seed`,
    /// `stream`), numbered in grid order as GwrModel does.
    fn clustered_points(seed: u64, stream: u32) -> Vec<[f64; 2]> {
        let rng = crate::rng::CounterRng::new(seed);
        let raw: Vec<[f64; 2]> = (0..3000u64)
            .map(|i| {
                let b = rng.block(stream, 0, i, 0);
                let (u, v) = (CounterRng::unit(b[0]), CounterRng::unit(b[1]));
                if i % 3 == 0 {
                    [u * 1000.0, v * 1000.0]
                } else {
                    [400.0 + u * 50.0, 700.0 + v * 20.0]
                }
            })
            .collect();
        let order = super::super::grid::Grid::order(&raw);
        order.iter().map(|&i| raw[i]).collect()
    }

    /// Grid path against brute force: 3,000 points clustered in two blobs (uneven
    /// density, Philox), numbered in grid order as GwrModel does; for adaptive k up to
    /// n / 4 and fixed distances, the neighbours are every point with d < h (bisquare,
    /// h = d_k * 1.0000001 with d_k the k-th smallest distance by a full sort), ascending,
    /// with bisquare weights; also at a location off the data.
    #[test]
    fn grid_neighbours_equal_a_brute_force_scan() {
        let coords = clustered_points(7, 99);
        let idx = SpatialIndex::new(&coords);
        let mut s = Scratch::default();
        for c in [coords[0], coords[1234], coords[2999], [-50.0, 1200.0]] {
            let mut d: Vec<f64> = coords.iter().map(|q| distance(c, *q)).collect();
            d.sort_by(|a, b| a.total_cmp(b));
            for (adaptive, bw) in [
                (true, 1.0),
                (true, 7.0),
                (true, 60.0),
                (true, 333.0),
                (true, 750.0),
                (false, 15.0),
                (false, 120.0),
            ] {
                let w = Weighting {
                    kernel: Kernel::Bisquare,
                    adaptive,
                    min_weight: 0.0,
                };
                let h = if adaptive {
                    d[bw as usize - 1] * ADAPTIVE_EPS
                } else {
                    bw
                };
                if h == 0.0 {
                    continue;
                }
                assert_eq!(idx.weights_at(c, &w, bw, &mut s, None), h, "{c:?} {bw}");
                let want: Vec<usize> = (0..coords.len())
                    .filter(|&j| distance(c, coords[j]) < h)
                    .collect();
                assert_eq!(s.idx, want, "{c:?} adaptive {adaptive} {bw}");
                for (&j, &wt) in s.idx.iter().zip(&s.w) {
                    assert_eq!(wt, Kernel::Bisquare.weight(distance(c, coords[j]) / h));
                }
            }
        }
    }

    /// The k-th smallest among the few largest equals a full sort's k-th, for every k
    /// with fewer than FEW_ABOVE values above it, on values with ties and in an order
    /// unrelated to their size.
    #[test]
    fn kth_among_largest_equals_the_sorted_kth() {
        for n in [1usize, 2, 5, 16, 17, 400] {
            let v: Vec<f64> = (0..n).map(|i| ((i * 7919) % 97) as f64 * 0.25).collect();
            let mut sorted = v.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            for k in (n.saturating_sub(FEW_ABOVE - 1)).max(1)..=n {
                assert_eq!(kth_among_largest(&v, k), sorted[k - 1], "n {n} k {k}");
            }
        }
    }

    /// The vectorised bisquare filter keeps the same candidates with the same weights
    /// (bits) as testing and weighing them one at a time (`d = sqrt(d2)`, kept if
    /// `d < h`, weight `(1 - (d / h)^2)^2` written out): 1,000 Philox candidates around
    /// the kernel's edge, some exactly at h, in both instruction sets where AVX2 exists.
    #[test]
    fn bisquare_filter_equals_the_one_at_a_time_filter_bit_for_bit() {
        let rng = CounterRng::new(5);
        let h = 7.25;
        let d2: Vec<f64> = (0..1000u64)
            .map(|t| {
                let u = CounterRng::unit(rng.block(97, 0, t, 0)[0]);
                if t % 50 == 0 {
                    h * h
                } else {
                    u * 1.3 * h * h
                }
            })
            .collect();
        let idx: Vec<usize> = (0..1000).map(|t| 3 * t + 1).collect();
        let (mut want_idx, mut want_w) = (Vec::new(), Vec::new());
        for (&j, &v) in idx.iter().zip(&d2) {
            let d = v.sqrt();
            if d < h {
                let z = d / h;
                let t = 1.0 - z * z;
                want_idx.push(j);
                want_w.push(t * t);
            }
        }
        assert!(want_idx.len() > 600 && want_idx.len() < 1000);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut s = Scratch::default();
        let fill = |s: &mut Scratch| {
            s.idx.clone_from(&idx);
            s.d2.clone_from(&d2);
        };
        fill(&mut s);
        bisquare_keep_body(h, &mut s);
        assert_eq!(s.idx, want_idx);
        assert_eq!(bits(&s.w), bits(&want_w));
        fill(&mut s);
        bisquare_keep(h, &mut s);
        assert_eq!(s.idx, want_idx);
        assert_eq!(bits(&s.w), bits(&want_w));
    }

    /// A memo changes no result: around four locations (clustered Philox points, as in
    /// the brute-force test above), a golden-section-like sequence of adaptive
    /// bandwidths (the scan path first, then the grid path, repeats and k = 1) gives the
    /// same h, neighbours and weights (bits) with the location's memo as without, for
    /// bisquare and for a Gaussian cut at weight 0.01 (support > 1).
    #[test]
    fn memo_gives_the_same_neighbours_and_weights_bit_for_bit() {
        let coords = clustered_points(8, 98);
        let idx = SpatialIndex::new(&coords);
        let (mut plain, mut memoised) = (Scratch::default(), Scratch::default());
        for (kernel, min_weight) in [(Kernel::Bisquare, 0.0), (Kernel::Gaussian, 0.01)] {
            let w = Weighting {
                kernel,
                adaptive: true,
                min_weight,
            };
            for c in [coords[0], coords[1234], coords[2999], [-50.0, 1200.0]] {
                let memo = KthMemo::default();
                for bw in [
                    1947.0, 1203.0, 743.0, 460.0, 743.0, 284.0, 460.0, 351.0, 350.0, 352.0, 1.0,
                    7.0, 750.0,
                ] {
                    let h = idx.weights_at(c, &w, bw, &mut plain, None);
                    let hm = idx.weights_at(c, &w, bw, &mut memoised, Some(&memo));
                    assert_eq!(hm.to_bits(), h.to_bits(), "{c:?} {bw}");
                    assert_eq!(memoised.idx, plain.idx, "{c:?} {bw}");
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&memoised.w), bits(&plain.w), "{c:?} {bw}");
                    assert!(!plain.idx.is_empty());
                }
                assert!(
                    memo.bound(1).is_some(),
                    "the grid path recorded its distances"
                );
            }
        }
    }
}
