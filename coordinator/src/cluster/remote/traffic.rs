//! What a session and its runs sent and received, and where the time went.

/// Calls and failures of one worker.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct WorkerTraffic {
    /// Its address.
    pub addr: String,
    /// Calls that it answered.
    pub calls: u64,
    /// Times it was dropped.
    pub lost: u64,
    /// Times it was re-admitted after being dropped.
    pub rejoined: u64,
    /// Calls it answered since it was last re-admitted.
    pub calls_since_rejoin: u64,
    /// Seconds it reported spending on its tiles' steps (Propose): beside the phase's
    /// wait, it shows how evenly the work was spread.
    pub step_seconds: f64,
}

/// Counters of what went over the wire.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Traffic {
    /// Tile data bytes sent by LoadTile.
    pub tile_bytes: u64,
    /// Bytes of halo changes sent with Propose.
    pub halo_bytes: u64,
    /// Bytes of histograms, exact keys and changes received.
    pub reply_bytes: u64,
    /// Tiles re-sent after a failure.
    pub tiles_moved: u64,
    /// Workers dropped.
    pub workers_lost: u64,
    /// Lost workers re-admitted.
    pub workers_rejoined: u64,
    /// Tiles moved back to re-admitted workers.
    pub tiles_returned: u64,
    /// Per worker, in the order given.
    pub per_worker: Vec<WorkerTraffic>,
    /// Wall seconds spent waiting for each phase's calls (from the first request to the
    /// last reply, failovers included): the rest of a run is the coordinator's own work.
    pub seconds: PhaseSeconds,
}

/// What a session (the tiles of one network) cost, over all its runs (run.json's
/// `sessions`).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SessionTraffic {
    /// Tiles of the session.
    pub tiles: u64,
    /// Tile data bytes sent by LoadTile over the session: the first load, plus the
    /// tiles re-sent after failures and rejoins.
    pub tile_bytes: u64,
    /// Tile data bytes of the first load alone (each tile once).
    pub first_load_bytes: u64,
    /// Wall seconds of the first load (LoadTile and Suitability of every tile).
    pub load_seconds: f64,
    /// Bytes of ResetClasses requests (changes of resumed runs' maps).
    pub reset_bytes: u64,
    /// Suitability bytes fetched back to assemble the suitability raster.
    pub suitability_bytes: u64,
    /// Wall seconds of the suitability raster's assembly.
    pub suitability_seconds: f64,
    /// CA runs of the session.
    pub runs: u64,
    /// Workers dropped during the session (in its runs or between them).
    pub workers_lost: u64,
}

/// Wall seconds per phase of the remote CA.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PhaseSeconds {
    /// Tile loading and Suitability (first load, failover and rejoin).
    pub load: f64,
    /// Propose (step of the tiles).
    pub propose: f64,
    /// ExactKeys requests of the bucket walk.
    pub exact: f64,
    /// Commit.
    pub commit: f64,
    /// CarbonSums.
    pub carbon: f64,
    /// The whole CA run, from the first tile loaded to the carbon sums: what it takes
    /// beyond the phases above is the coordinator's own work.
    pub total: f64,
}
