//! `flus ping URL...`: asks workers for their health and version.

use serde::Serialize;

/// Arguments of `flus ping`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Worker addresses (host:port or http://host:port).
    #[arg(required = true)]
    pub workers: Vec<String>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// TLS towards the workers.
    #[command(flatten)]
    pub tls: crate::cluster::pool::TlsArgs,
}

#[derive(Serialize)]
struct Answer {
    worker: String,
    status: String,
    version: String,
    protocol: u32,
    threads: u32,
}

/// Runs `flus ping`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = std::time::Duration::from_secs_f64(args.timeout);
    let tls = args.tls.tls();
    let answers = rt.block_on(async {
        let mut out = Vec::new();
        for w in &args.workers {
            let (_, r) = crate::cluster::pool::check_health(w, timeout, &tls).await?;
            out.push(Answer {
                worker: w.clone(),
                status: r.status,
                version: r.version,
                protocol: r.protocol,
                threads: r.threads,
            });
        }
        anyhow::Ok(out)
    })?;
    if args.json {
        crate::output::print_json(&serde_json::json!({ "workers": answers }))?;
    } else {
        for a in &answers {
            println!(
                "{}: {} (flus-worker {}, protocol {}, {} threads)",
                a.worker, a.status, a.version, a.protocol, a.threads
            );
        }
    }
    Ok(())
}
