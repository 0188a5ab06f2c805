//! `flus gwr --workers` / `--local-workers`: the local fits on the cluster.

use flus_shared::gwr::{self, GwrModel, GwrResult, GwrSettings};

use super::Args;

/// Fits `model` with its local fits on the workers of `args`.
pub(super) fn fit_on_cluster(
    args: &Args,
    model: &GwrModel,
    settings: &GwrSettings,
) -> anyhow::Result<flus_shared::Result<GwrResult>> {
    use crate::cluster::{gwr_remote, local::LocalWorkers, pool};
    let (_local, addrs, token) = match args.local_workers {
        Some(n) => {
            let lw = LocalWorkers::start(n.max(1), 1, None)?;
            let (a, t) = (lw.addrs.clone(), lw.token.clone());
            (Some(lw), a, t)
        }
        None => (
            None,
            args.workers.clone(),
            crate::cmd::common::cluster_token(args.token_file.as_deref())?,
        ),
    };
    // local workers on loopback speak plaintext
    let tls = if args.workers.is_empty() {
        pool::Tls::default()
    } else {
        args.tls.tls()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    anyhow::ensure!(
        args.deadline.is_finite() && args.deadline > 0.0,
        "--deadline {}: expected a number of seconds > 0",
        args.deadline
    );
    let deadline = std::time::Duration::from_secs_f64(args.deadline);
    let conns = rt.block_on(async {
        let mut v = Vec::new();
        for a in &addrs {
            v.push(pool::connect(a, &token, deadline, &tls).await?);
        }
        anyhow::Ok(v)
    })?;
    let data = model.data();
    let sample = gwr_remote::GwrSample {
        columns: data.names().to_vec(),
        y_columns: vec![data.y_name().to_string()],
        x: data.design().to_vec(),
        y: data.y().to_vec(),
        coords: data.coords().to_vec(),
        spherical: data.spherical(),
    };
    let cluster = gwr_remote::GwrCluster::new(
        rt.handle().clone(),
        conns,
        deadline,
        format!("gwr-{}", std::process::id()),
        &sample,
    );
    let fitter = gwr_remote::RemoteFitter::new(&cluster, model, 0, (0..data.p()).collect());
    let r = gwr::fit_with(model, &fitter, settings);
    tracing::info!(workers = addrs.len(), traffic = ?cluster.traffic(), "GWR local fits on the cluster");
    cluster.release();
    Ok(r)
}
