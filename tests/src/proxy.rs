//! A TCP proxy on loopback that a test controls: it forwards between a client (the
//! coordinator) and one worker until it is told to cut the link (close every connection
//! and every new one at once) or to blackhole it (keep connections open, forward
//! nothing, accept new ones and never answer).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const FORWARD: u8 = 0;
const CUT: u8 = 1;
const BLACKHOLE: u8 = 2;
const STOP: u8 = 3;
const POLL: Duration = Duration::from_millis(20);

/// A running proxy; its threads end when it is dropped.
pub struct Proxy {
    /// host:port the proxy listens on (give this to the coordinator).
    pub addr: String,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream`.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let m = mode.clone();
        let upstream = upstream.to_string();
        thread::spawn(move || accept_loop(listener, &upstream, m));
        Proxy { addr, mode }
    }

    /// Cuts the link: open connections are shut down, new ones closed on accept (the
    /// port stays taken, so nothing else can appear behind it).
    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
    }

    /// Blackholes the link: nothing is forwarded any more, connections stay open and
    /// new ones are accepted and never answered.
    pub fn blackhole(&self) {
        self.mode.store(BLACKHOLE, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.mode.store(STOP, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, upstream: &str, mode: Arc<AtomicU8>) {
    let mut held = Vec::new();
    loop {
        let m = mode.load(Ordering::SeqCst);
        if m == STOP {
            return;
        }
        match listener.accept() {
            Ok((client, _)) => match m {
                FORWARD => {
                    let _ = client.set_nonblocking(false);
                    let _ = client.set_nodelay(true);
                    let Ok(up) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    let _ = up.set_nodelay(true);
                    for (from, to) in [(&client, &up), (&up, &client)] {
                        let (from, to) = (from.try_clone(), to.try_clone());
                        if let (Ok(from), Ok(to)) = (from, to) {
                            let m = mode.clone();
                            thread::spawn(move || pump(from, to, m));
                        }
                    }
                }
                BLACKHOLE => held.push(client),
                _ => drop(client),
            },
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// Copies `from` to `to` while the mode is FORWARD; idles (forwarding nothing) while
/// it is BLACKHOLE; shuts both down on CUT or STOP.
fn pump(mut from: TcpStream, mut to: TcpStream, mode: Arc<AtomicU8>) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match mode.load(Ordering::SeqCst) {
            FORWARD => {}
            BLACKHOLE => {
                thread::sleep(POLL);
                continue;
            }
            _ => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}
