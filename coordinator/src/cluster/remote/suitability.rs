//! The session's suitability from the workers' tiles: the maxima they returned, and the
//! K-band raster assembled from their rows beside the session's runs
//! ([`write_suitability`]).

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use flus_proto::v1::{SuitabilityRowsReply, SuitabilityRowsRequest};
use flus_shared::grid::Grid;
use flus_shared::raster;

use super::super::fanout::{join, request, rpc, Calls, InFlight};
use super::super::wire;
use super::{lock, Remote};

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
}

/// A tile's rows of a strip: (tile id, first row in the tile, rows).
type Part = (u32, u32, u32);

/// A strip's SuitabilityRows calls in flight.
struct StripFetch {
    flight: InFlight<SuitabilityRowsReply>,
    /// Per call, in order: the tiles it asks for and their epochs when it started.
    named: Vec<Vec<(u32, u64)>>,
    rt: tokio::runtime::Handle,
}

/// Writes the K-band suitability raster of `session` to `path` (Float32 on `grid`, band
/// names `class_names`) from the workers' tiles, a strip of rows at a time: each tile's
/// rows of the strip fetched from its worker (SuitabilityRows), as the values the CA
/// steps on ([`flus_shared::ca::fixed_row_into_bands`]). Runs of the session go on
/// meanwhile: the session is locked only to start a strip's calls and to account for
/// their replies, and the next strip's calls are in flight while a strip is converted
/// and written. A worker lost meanwhile gives its tiles to the others (the runs set
/// their lanes on them again) and the strip is fetched again. Stops with
/// [`flus_shared::Error::Stopped`] between strips once `stopped()` says so.
pub fn write_suitability(
    session: &Mutex<Remote<'_>>,
    path: &Path,
    grid: &Grid,
    class_names: &[String],
    stopped: &dyn Fn() -> bool,
) -> flus_shared::Result<()> {
    let started = Instant::now();
    let (k, rects) = {
        let s = lock(session);
        (s.k, s.rects.clone())
    };
    if class_names.len() != k || grid.width != rects[0].grid_width {
        return Err(flus_shared::Error::raster(
            path,
            format!(
                "{} class names for a session of {k} classes on a grid {} cells wide, \
                 expected {k} names and the session's grid ({} cells wide)",
                class_names.len(),
                grid.width,
                rects[0].grid_width
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
    let strips: Vec<(usize, usize)> = (0..h)
        .step_by(raster::STRIP_ROWS)
        .map(|y0| (y0, (y0 + raster::STRIP_ROWS).min(h)))
        .collect();
    let parts_of = |(y0, y1): (usize, usize)| -> Vec<Part> {
        rects
            .iter()
            .enumerate()
            .filter_map(|(t, rc)| {
                let a = y0.max(rc.y0);
                let b = y1.min(rc.y0 + rc.height);
                (a < b).then(|| (t as u32, (a - rc.y0) as u32, (b - a) as u32))
            })
            .collect()
    };
    let (mut bands, mut bytes) = (vec![Vec::new(); k], 0u64);
    let mut next = strips.first().map(|&s| start_strip(session, &parts_of(s)));
    for (i, &(y0, y1)) in strips.iter().enumerate() {
        if stopped() {
            return Err(flus_shared::Error::Stopped(format!(
                "{}: another part of the run failed",
                path.display()
            )));
        }
        let first = next.take();
        let replies = fetch_strip(session, &parts_of((y0, y1)), first)?;
        // the next strip's rows are fetched while this one is converted and written
        next = strips
            .get(i + 1)
            .map(|&s| start_strip(session, &parts_of(s)));
        for b in bands.iter_mut() {
            b.clear();
            b.resize((y1 - y0) * w, 0f32);
        }
        for rep in replies {
            bytes += rep.values.len() as u64;
            wire::tiles::decode_rows(&rep, &rects, y0, w, &mut bands)?;
        }
        for (c, band) in bands.iter().enumerate() {
            writer.write_rows(c, band)?;
        }
    }
    writer.finish()?;
    let mut s = lock(session);
    s.session.suitability_bytes += bytes;
    s.session.suitability_seconds += started.elapsed().as_secs_f64();
    Ok(())
}

/// The SuitabilityRows replies of `parts`, each fetched from the worker that holds its
/// tile (again after a worker was lost), from the calls `first` already started.
fn fetch_strip(
    session: &Mutex<Remote<'_>>,
    parts: &[Part],
    first: Option<StripFetch>,
) -> flus_shared::Result<Vec<SuitabilityRowsReply>> {
    let mut fetch = first.unwrap_or_else(|| start_strip(session, parts));
    loop {
        if let Some(replies) = finish_strip(session, fetch)? {
            return Ok(replies);
        }
        fetch = start_strip(session, parts);
    }
}

/// Starts the calls of `parts` on the live workers that hold their tiles (the session
/// locked only while they are built).
fn start_strip(session: &Mutex<Remote<'_>>, parts: &[Part]) -> StripFetch {
    let s = lock(session);
    let (mut calls, mut named) = (Vec::new(), Vec::new());
    for (w, tiles) in s.holders() {
        let mine: Vec<Part> = parts
            .iter()
            .copied()
            .filter(|p| tiles.contains(&p.0))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let rpcs = mine
            .iter()
            .map(|&(tile_id, row0, rows)| {
                let req = request(
                    s.deadline,
                    SuitabilityRowsRequest {
                        run_id: s.run_id.clone(),
                        tile_id,
                        row0,
                        rows,
                    },
                );
                rpc(&s.workers[w].conn.client, |mut c| async move {
                    c.suitability_rows(req).await
                })
            })
            .collect();
        calls.push(Calls {
            w,
            what: "SuitabilityRows".into(),
            rpcs,
        });
        named.push(mine.iter().map(|p| (p.0, s.epoch[p.0 as usize])).collect());
    }
    StripFetch {
        flight: s.start(calls),
        named,
        rt: s.rt.clone(),
    }
}

/// Waits for a strip's calls without the lock, then accounts for them under it: the
/// replies when every call was answered; else None, after the workers that failed were
/// dropped and their tiles moved (not a worker whose call named a tile that moved
/// meanwhile: the call failed for that), so that the strip is fetched again.
fn finish_strip(
    session: &Mutex<Remote<'_>>,
    fetch: StripFetch,
) -> flus_shared::Result<Option<Vec<SuitabilityRowsReply>>> {
    let joined = join(&fetch.rt, fetch.flight);
    let mut s = lock(session);
    let results = s.account(joined);
    s.check_refused()?;
    let (mut out, mut failed, mut all) = (Vec::new(), Vec::new(), true);
    for ((w, r), named) in results.into_iter().zip(fetch.named) {
        match r {
            Ok(replies) => out.extend(replies),
            Err(()) => {
                all = false;
                let moved = named.iter().any(|&(t, e)| s.epoch[t as usize] != e);
                if !moved {
                    failed.push(w);
                }
            }
        }
    }
    if !failed.is_empty() {
        s.recover(&failed)?;
    }
    Ok(all.then_some(out))
}
