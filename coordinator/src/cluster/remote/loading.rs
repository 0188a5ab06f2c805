//! Loading tiles onto their workers: the LoadTile (or LoadTileFiles) stream of each tile
//! and, with a network, the tile's Suitability right after it, round by round.

use std::collections::BTreeSet;

use flus_proto::v1::{SuitabilityRequest, TileLoaded};

use super::super::fanout::{map_reply, request, rpc, Calls, InFlight, Rpc};
use super::super::wire;
use super::Remote;

/// The reply of a tile loading call: the tile's suitability maxima (from its
/// Suitability call; None from LoadTile).
type TileMax = Option<Vec<f32>>;

/// A round of tile loading in flight: the calls, and each call's tile and data bytes.
type LoadRound = (InFlight<TileMax>, Vec<(u32, u64)>);

impl Remote<'_> {
    /// The LoadTile (or LoadTileFiles) RPC of tile `t` to worker `w`, and its data
    /// bytes.
    fn load_rpc(&self, w: usize, t: u32) -> flus_shared::Result<(Rpc<TileLoaded>, u64)> {
        let place = wire::tiles::TilePlace {
            id: t,
            rect: self.rects[t as usize],
            halo: self.r,
            grid_height: self.height,
            classes: self.k,
        };
        let msgs =
            wire::tiles::tile_chunks(&self.run_id, &place, &self.layers, self.files.is_some())?;
        let bytes = wire::tiles::data_bytes(&msgs);
        let client = &self.workers[w].conn.client;
        let call = match &self.files {
            None => {
                let req = request(self.deadline, tokio_stream::iter(msgs));
                rpc(client, |mut c| async move { c.load_tile(req).await })
            }
            Some(files) => {
                let v = wire::tiles::with_files(msgs, files);
                let req = request(self.deadline, tokio_stream::iter(v));
                rpc(client, |mut c| async move { c.load_tile_files(req).await })
            }
        };
        Ok((call, bytes))
    }

    /// Loads `tiles` on their owners (and computes their suitability when a network is
    /// set), every worker at once: round i sends each worker its i-th tile, followed by
    /// the Suitability of that tile alone (the worker then drops the tile's drivers, so
    /// a worker never holds the drivers of all its tiles at once), and the messages of
    /// round i + 1 are built while round i is on the wire. Returns the workers that
    /// failed (none when every tile is loaded).
    pub(super) fn load_tiles(&mut self, tiles: &[u32]) -> flus_shared::Result<Vec<usize>> {
        let per: Vec<(usize, Vec<u32>)> = self
            .alive()
            .into_iter()
            .map(|w| {
                let mine: Vec<u32> = tiles
                    .iter()
                    .copied()
                    .filter(|&t| self.owner[t as usize] == w)
                    .collect();
                (w, mine)
            })
            .filter(|(_, mine)| !mine.is_empty())
            .collect();
        let rounds = per.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        let mut failed = BTreeSet::new();
        let mut flight: Option<LoadRound> = None;
        for i in 0..=rounds {
            let next = if i < rounds && failed.is_empty() {
                Some(self.start_round(&per, i)?)
            } else {
                None
            };
            if let Some(round) = flight.take() {
                self.land_round(round, &mut failed)?;
            }
            flight = next;
        }
        Ok(failed.into_iter().collect())
    }

    /// Starts round `i` of a load: each worker of `per` its i-th tile (and that tile's
    /// Suitability when a network is set).
    fn start_round(
        &mut self,
        per: &[(usize, Vec<u32>)],
        i: usize,
    ) -> flus_shared::Result<LoadRound> {
        let (mut calls, mut bytes) = (Vec::new(), Vec::new());
        for (w, mine) in per {
            let Some(&t) = mine.get(i) else { continue };
            // every run's lane on the tile is set again before its next call
            self.epoch[t as usize] += 1;
            let (call, b) = self.load_rpc(*w, t)?;
            let mut what = if self.files.is_some() {
                format!("LoadTileFiles {t}")
            } else {
                format!("LoadTile {t}")
            };
            let mut rpcs = vec![map_reply(call, |_| None)];
            if let Some(net) = &self.network {
                what.push_str(" + Suitability");
                let req = request(
                    self.deadline,
                    SuitabilityRequest {
                        run_id: self.run_id.clone(),
                        tile_ids: vec![t],
                        network: net.clone(),
                    },
                );
                let client = &self.workers[*w].conn.client;
                rpcs.push(map_reply(
                    rpc(client, |mut c| async move { c.suitability(req).await }),
                    |r| r.tiles.into_iter().next().map(|t| t.max),
                ));
            }
            calls.push(Calls { w: *w, what, rpcs });
            bytes.push((t, b));
        }
        Ok((self.start(calls), bytes))
    }

    /// Waits for a round of a load: counts the bytes of the tiles that landed, keeps
    /// their suitability maxima, and adds the workers that failed to `failed`.
    fn land_round(
        &mut self,
        (calls, bytes): LoadRound,
        failed: &mut BTreeSet<usize>,
    ) -> flus_shared::Result<()> {
        let replies = self.wait(calls);
        self.check_refused()?;
        for ((w, r), (t, b)) in replies.into_iter().zip(bytes) {
            match r {
                Ok(replies) => {
                    self.traffic.tile_bytes += b;
                    self.session.tile_bytes += b;
                    if let Some(max) = replies.into_iter().flatten().next() {
                        self.max_free[t as usize] = Some(max);
                    }
                }
                Err(()) => {
                    failed.insert(w);
                }
            }
        }
        Ok(())
    }
}
