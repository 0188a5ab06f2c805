//! A real worker process answers the health check of `flus ping`.

use std::time::Duration;

use flus_e2e::{flus, start_worker};

#[test]
fn a_worker_on_port_zero_prints_its_address_and_answers_ping() {
    let w = start_worker(&[]);
    let out = flus(&["ping", &w.addr, "--json"], None, Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let j = out.json();
    let a = &j["workers"][0];
    assert_eq!(a["status"], "SERVING");
    assert_eq!(a["protocol"], 2);
    assert_eq!(a["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn ping_of_a_closed_port_fails_with_the_address() {
    // bind and drop a listener to get a port that nobody listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = flus(
        &["ping", &addr, "--timeout", "2"],
        None,
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains(&addr), "{}", out.stderr);
}
