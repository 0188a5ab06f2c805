//! run.json's `gwr`: the driver analysis ([`flus_shared::analysis::AnalysisJson`]) and
//! where its local fits ran.

use serde::{Deserialize, Serialize};

use flus_shared::analysis::AnalysisJson;

use crate::cluster::gwr_remote::GwrTraffic;

/// The GWR driver analysis of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GwrJson {
    /// The analysis's figures and files.
    #[serde(flatten)]
    pub analysis: AnalysisJson,
    /// Where the local fits ran (absent in a run folder of an earlier flus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fits_on: Option<FitsOn>,
    /// On the workers: what went over the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<GwrTraffic>,
}

/// Where the driver analysis's local fits ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitsOn {
    /// On this machine (`--gwr-local`).
    Coordinator,
    /// On the cluster's workers.
    Workers,
}
