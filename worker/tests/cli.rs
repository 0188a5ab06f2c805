//! The worker binary's command line: it refuses to start without a cluster token and
//! prints its bound address first when it has one.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_worker_without_a_token_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_flus-worker"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("FLUS_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token-file") && err.contains("FLUS_TOKEN"),
        "{err}"
    );
}

#[test]
fn a_worker_with_a_token_prints_its_address_on_the_first_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flus-worker"))
        .args(["--listen", "127.0.0.1:0"])
        .env("FLUS_TOKEN", "a-test-token-of-enough-length")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("an address within 30 s");
    let addr: std::net::SocketAddr = line.trim().parse().expect("a socket address");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
}
