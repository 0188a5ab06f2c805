//! Where the tiles of a session live: each on its home worker, moved to the survivors
//! when its worker is lost (and back when it rejoins, see `rejoin`).

use std::collections::BTreeSet;
use std::time::Instant;

use flus_shared::ca::TileRect;

use super::Remote;

/// The home worker of every tile among `n` workers: tiles in row `r` and column `c` of
/// the tiling go to worker `(r + c) mod n`, a diagonal striping that gives each worker
/// tiles from every part of the grid (with `i mod n` and two tile columns, each of two
/// workers held one half of the map, and busy and quiet halves made one worker wait for
/// the other). Same count per worker within one when the tiling has n or more columns
/// or rows.
pub fn home_workers(rects: &[TileRect], n: usize) -> Vec<usize> {
    let n = n.max(1);
    let rows: BTreeSet<usize> = rects.iter().map(|r| r.y0).collect();
    let cols: BTreeSet<usize> = rects.iter().map(|r| r.x0).collect();
    let index = |set: &BTreeSet<usize>, v: usize| set.range(..v).count();
    rects
        .iter()
        .map(|r| (index(&rows, r.y0) + index(&cols, r.x0)) % n)
        .collect()
}

impl Remote<'_> {
    /// Loads `tiles` onto their owners. Workers that fail meanwhile are dropped, and
    /// their tiles join the ones to load.
    pub(super) fn place(&mut self, mut tiles: Vec<u32>) -> flus_shared::Result<()> {
        let started = Instant::now();
        let res = loop {
            match self.load_tiles(&tiles) {
                Err(e) => break Err(e),
                Ok(failed) if failed.is_empty() => break Ok(()),
                Ok(failed) => {
                    for &w in &failed {
                        for t in self.tiles_of(w) {
                            if !tiles.contains(&t) {
                                self.traffic.tiles_moved += 1;
                                tiles.push(t);
                            }
                        }
                    }
                    if let Err(e) = self.lose_all(&failed) {
                        break Err(e);
                    }
                }
            }
        };
        self.traffic.seconds.load += started.elapsed().as_secs_f64();
        res
    }

    /// [`Self::lose`] for each of `failed`.
    pub(super) fn lose_all(&mut self, failed: &[usize]) -> flus_shared::Result<()> {
        for &w in failed {
            self.lose(w)?;
        }
        Ok(())
    }

    /// Marks worker `w` dead and gives its tiles to the others (round-robin over the
    /// survivors in index order).
    pub(super) fn lose(&mut self, w: usize) -> flus_shared::Result<()> {
        if self.workers[w].alive {
            tracing::warn!(worker = %self.workers[w].conn.addr, "worker lost; moving its tiles");
            self.workers[w].alive = false;
            self.traffic.workers_lost += 1;
            self.traffic.per_worker[w].lost += 1;
            self.session.workers_lost += 1;
            self.probe(w);
        }
        let alive = self.alive();
        if alive.is_empty() {
            let iteration = self.current.as_ref().map(|c| c.1);
            return Err(flus_shared::Error::Data(self.refusals.explain(format!(
                "all workers lost ({} of {}){}: the run stops; resume it with `flus run --resume` once workers are back",
                self.workers.len(),
                self.workers.len(),
                iteration.map(|t| format!(" at iteration {t}")).unwrap_or_default(),
            ))));
        }
        let mut i = 0;
        for t in 0..self.rects.len() {
            if !self.workers[self.owner[t]].alive {
                self.owner[t] = alive[i % alive.len()];
                i += 1;
            }
        }
        Ok(())
    }
    /// Drops the workers `failed` and re-sends their tiles to the survivors; the runs
    /// set their lanes on the moved tiles again and step them again.
    pub(super) fn recover(&mut self, failed: &[usize]) -> flus_shared::Result<()> {
        let mut moved: Vec<u32> = failed.iter().flat_map(|&w| self.tiles_of(w)).collect();
        moved.sort_unstable();
        moved.dedup();
        self.lose_all(failed)?;
        // test builds: a fault test can stop another worker before the tiles are re-sent
        if let Some((label, t)) = &self.current {
            flus_shared::hooks::hold(|| format!("{label}-tiles-moved-{t}"));
        }
        self.traffic.tiles_moved += moved.len() as u64;
        let started = Instant::now();
        let n = moved.len();
        // a survivor that fails while receiving them gives up its own tiles too
        self.place(moved)?;
        tracing::info!(
            tiles = n,
            secs = started.elapsed().as_secs_f64(),
            "tiles re-sent"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` x `cols` tiles of 10 x 10 cells.
    fn rects(rows: usize, cols: usize) -> Vec<TileRect> {
        flus_shared::ca::Tiling { rows, cols }
            .rects(cols * 10, rows * 10)
            .unwrap()
    }

    #[test]
    fn two_workers_on_a_four_by_two_tiling_get_a_checkerboard() {
        // row-major tiles of 4 rows x 2 columns: (r + c) mod 2
        assert_eq!(
            home_workers(&rects(4, 2), 2),
            vec![0, 1, 1, 0, 0, 1, 1, 0],
            "each worker holds one tile of every row and both columns"
        );
    }

    #[test]
    fn home_tiles_are_spread_evenly_and_one_worker_holds_all() {
        // 3 workers, 4 x 3 tiling: (r + c) mod 3 takes each value 4 times.
        let h = home_workers(&rects(4, 3), 3);
        for w in 0..3 {
            assert_eq!(h.iter().filter(|&&x| x == w).count(), 4);
        }
        assert!(home_workers(&rects(2, 4), 1).iter().all(|&w| w == 0));
        // a single tile column: rows alternate
        assert_eq!(home_workers(&rects(4, 1), 2), vec![0, 1, 0, 1]);
    }
}
