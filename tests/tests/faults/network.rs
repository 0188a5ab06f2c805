//! A worker's network link disturbed (through a proxy) while the CA runs: cut, or
//! blackholed until the deadline.

use flus_e2e::proxy::Proxy;
use flus_e2e::Output;
use serde_json::Value;

use crate::common::{addrs, run_held_at, same_map, workers};

/// Runs over three workers, the second behind a proxy that `disturb` acts on while the
/// coordinator is held after iteration 5.
fn over_a_proxy(extra: &[&str], disturb: impl Fn(&Proxy), case: &str) -> (Output, Value) {
    let ws = workers(3);
    let proxy = Proxy::start(&ws[1].addr);
    let mut list = addrs(&ws);
    list[1] = proxy.addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = run_held_at(5, dir.path(), &list, extra, || disturb(&proxy));
    let sc = same_map(&out, case);
    assert_eq!(sc["traffic"]["workers_lost"], 1, "{case}: {}", out.stderr);
    assert_eq!(sc["traffic"]["per_worker"][1]["addr"], proxy.addr.as_str());
    assert_eq!(sc["traffic"]["per_worker"][1]["lost"], 1, "{case}");
    assert!(sc["traffic"]["tiles_moved"].as_u64().unwrap() > 0);
    (out, sc)
}

#[test]
fn a_network_cut_to_one_worker_moves_its_tiles_and_keeps_the_map() {
    // the default rejoin probe keeps knocking: the cut link never answers it
    over_a_proxy(&[], Proxy::cut, "network cut");
}

#[test]
fn a_blackholed_link_to_one_worker_times_out_and_keeps_the_map() {
    let (out, _) = over_a_proxy(&["--deadline", "4"], Proxy::blackhole, "blackholed link");
    assert!(
        out.stderr.contains("no answer within the deadline"),
        "{}",
        out.stderr
    );
}
