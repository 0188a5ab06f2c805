//! Lost workers coming back: their addresses are health-checked in the background, and
//! one that answers again is re-admitted between two iterations and takes its home
//! tiles back.

use super::super::fanout::{request, rpc};
use super::super::pool::WorkerConn;
use super::Remote;
use flus_proto::v1::DropTilesRequest;

impl Remote<'_> {
    /// Starts the background health check of lost worker `w`'s address: every
    /// `probe_every`, a fresh connection with the health and protocol check; the first
    /// that succeeds is handed to [`Self::readmit`].
    pub(super) fn probe(&mut self, w: usize) {
        let Some(every) = self.probe_every else {
            return;
        };
        let conn = self.workers[w].conn.clone();
        let tx = self.rejoined_tx.clone();
        let handle = self.rt.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Ok(Ok(c)) = tokio::time::timeout(every, conn.reconnect(every)).await {
                    tracing::info!(worker = %c.addr, "lost worker answers its health check again");
                    let _ = tx.send((w, c));
                    return;
                }
            }
        });
        if let Some(old) = self.workers[w].probe.replace(handle) {
            old.abort();
        }
    }

    /// Re-admits the lost workers that answered their health check again: drops their
    /// stale tiles of this session, moves their home tiles back onto them and drops
    /// those tiles from their interim owners (the runs set their lanes on them again).
    pub(super) fn readmit(&mut self) -> flus_shared::Result<()> {
        let back: Vec<(usize, WorkerConn)> = self.rejoined_rx.try_iter().collect();
        for (w, conn) in back {
            self.workers[w].probe = None;
            if self.workers[w].alive {
                continue;
            }
            self.workers[w].conn = conn;
            let drop = self.drop_all(w);
            if self.call_one(w, "DropTiles", drop)?.is_err() {
                self.probe(w);
                continue;
            }
            self.workers[w].alive = true;
            self.traffic.workers_rejoined += 1;
            let stats = &mut self.traffic.per_worker[w];
            stats.rejoined += 1;
            stats.calls_since_rejoin = 0;
            let home: Vec<u32> = (0..self.rects.len())
                .filter(|&t| self.home[t] == w && self.owner[t] != w)
                .map(|t| t as u32)
                .collect();
            let interim: Vec<(u32, usize)> =
                home.iter().map(|&t| (t, self.owner[t as usize])).collect();
            for &t in &home {
                self.owner[t as usize] = w;
            }
            tracing::info!(
                worker = %self.workers[w].conn.addr,
                tiles = home.len(),
                "worker re-admitted; its tiles move back"
            );
            self.traffic.tiles_returned += home.len() as u64;
            self.place(home)?;
            // the interim owners drop the copies that now live elsewhere
            let owners: std::collections::BTreeSet<usize> =
                interim.iter().map(|&(_, o)| o).collect();
            for o in owners {
                let ids: Vec<u32> = interim
                    .iter()
                    .filter(|&&(t, old)| old == o && self.owner[t as usize] != o)
                    .map(|&(t, _)| t)
                    .collect();
                if ids.is_empty() || !self.workers[o].alive {
                    continue;
                }
                let req = request(
                    self.deadline,
                    DropTilesRequest {
                        run_id: self.run_id.clone(),
                        tile_ids: ids,
                    },
                );
                let client = &self.workers[o].conn.client;
                let drop = rpc(client, |mut c| async move { c.drop_tiles(req).await });
                if self.call_one(o, "DropTiles", drop)?.is_err() {
                    self.recover(&[o])?;
                }
            }
        }
        Ok(())
    }
}
