//! The session's suitability from the workers' tiles: the maxima they returned, and the
//! K-band raster assembled from their rows.

use std::time::Instant;

use flus_proto::v1::{SuitabilityRowsReply, SuitabilityRowsRequest};

use super::super::fanout::{request, rpc, Calls};
use super::super::wire;
use super::Remote;

impl Remote<'_> {
    /// The largest suitability per class over the free cells of the grid (valid and
    /// not restricted), from the maxima the workers returned with their tiles'
    /// suitability; None when some tile has none (no network, or not loaded yet).
    pub fn free_maxima(&self) -> Option<Vec<f32>> {
        let mut out: Option<Vec<f32>> = None;
        for m in &self.max_free {
            let m = m.as_ref()?;
            match &mut out {
                None => out = Some(m.clone()),
                Some(o) => o.iter_mut().zip(m).for_each(|(a, &b)| *a = a.max(b)),
            }
        }
        out
    }

    /// Writes the K-band suitability raster of the session to `path` (Float32, band
    /// names `class_names`) from the workers' tiles: a strip of rows at a time, each
    /// tile's rows of the strip fetched from its worker (SuitabilityRows), the values the
    /// CA steps on ([`flus_shared::ca::suitability_from_fixed`] of the u16). A worker
    /// lost meanwhile gives its tiles to the others and the strip is fetched again.
    pub fn write_suitability(
        &mut self,
        path: &std::path::Path,
        grid: &flus_shared::grid::Grid,
        class_names: &[String],
    ) -> flus_shared::Result<()> {
        use flus_shared::raster;
        let started = Instant::now();
        let k = self.k;
        if class_names.len() != k || grid.width != self.rects[0].grid_width {
            return Err(flus_shared::Error::raster(
                path,
                format!(
                    "{} class names for a session of {k} classes on a grid {} cells wide, \
                     expected {k} names and the session's grid ({} cells wide)",
                    class_names.len(),
                    grid.width,
                    self.rects[0].grid_width
                ),
            ));
        }
        // test builds: a fault test can kill a worker before the first rows are fetched
        flus_shared::hooks::hold(|| "suitability-assembly".into());
        let options = raster::WriteOptions {
            nodata: None,
            palette: Vec::new(),
            band_names: class_names.to_vec(),
        };
        let mut writer = raster::StripWriter::<f32>::create(path, grid, k, &options)?;
        let (w, h) = (grid.width, grid.height);
        let mut bands = vec![Vec::new(); k];
        for y0 in (0..h).step_by(raster::STRIP_ROWS) {
            let y1 = (y0 + raster::STRIP_ROWS).min(h);
            let replies = self.fetch_strip(y0, y1)?;
            for b in bands.iter_mut() {
                b.clear();
                b.resize((y1 - y0) * w, 0f32);
            }
            for rep in replies {
                self.session.suitability_bytes += rep.values.len() as u64;
                wire::tiles::decode_rows(&rep, &self.rects, y0, w, &mut bands)?;
            }
            for (c, band) in bands.iter().enumerate() {
                writer.write_rows(c, band)?;
            }
        }
        writer.finish()?;
        self.session.suitability_seconds += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// The SuitabilityRows replies of every tile that crosses rows `y0..y1`, each fetched
    /// from the worker that holds the tile (again after a worker was lost).
    fn fetch_strip(
        &mut self,
        y0: usize,
        y1: usize,
    ) -> flus_shared::Result<Vec<SuitabilityRowsReply>> {
        // the tiles that cross the strip, with their rows of it
        let parts: Vec<(u32, u32, u32)> = (0..self.rects.len())
            .filter_map(|t| {
                let rc = &self.rects[t];
                let a = y0.max(rc.y0);
                let b = y1.min(rc.y0 + rc.height);
                (a < b).then(|| (t as u32, (a - rc.y0) as u32, (b - a) as u32))
            })
            .collect();
        loop {
            let make = |me: &Self, wk: usize, tiles: Vec<u32>| {
                let rpcs = parts
                    .iter()
                    .filter(|p| tiles.contains(&p.0))
                    .map(|&(tile_id, row0, rows)| {
                        let req = request(
                            me.deadline,
                            SuitabilityRowsRequest {
                                run_id: me.run_id.clone(),
                                tile_id,
                                row0,
                                rows,
                            },
                        );
                        rpc(&me.workers[wk].conn.client, |mut c| async move {
                            c.suitability_rows(req).await
                        })
                    })
                    .collect();
                Calls {
                    w: wk,
                    what: "SuitabilityRows".into(),
                    rpcs,
                }
            };
            if let Some(r) = self.each_holder(|s| &mut s.load, make)? {
                return Ok(r);
            }
        }
    }
}
