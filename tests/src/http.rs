//! A real web server on loopback for the URL-input tests: Debian's nginx serving a
//! folder (it answers HTTP range requests, as object stores and CDNs do), with an access
//! log of every request's path, status, bytes sent and range.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ChildGuard;

/// An nginx serving `root` on `127.0.0.1:port` until dropped.
pub struct Nginx {
    /// The port it listens on.
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _child: ChildGuard,
}

/// One line of the access log.
#[derive(Clone, Debug)]
pub struct Request {
    /// Path asked for (with its query).
    pub uri: String,
    /// HTTP status.
    pub status: u16,
    /// Bytes of the body sent.
    pub bytes: u64,
    /// The Range header, "-" when there was none.
    pub range: String,
    /// The User-Agent header (GDAL's, or `GDAL_HTTP_USERAGENT`).
    pub agent: String,
}

impl Nginx {
    /// Starts nginx (`/usr/sbin/nginx`, deploy/install-deps.sh installs it) serving
    /// `root`; panics with the reason when it cannot.
    pub fn serve(root: &Path) -> Nginx {
        let dir = tempfile::tempdir().expect("nginx folder");
        let port = free_port();
        let d = dir.path();
        let log = d.join("access.log");
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\n\
             error_log {err};\nevents {{ worker_connections 64; }}\nhttp {{\n\
             log_format bytes '$request_uri $status $body_bytes_sent \"$http_range\" \"$http_user_agent\"';\n\
             access_log {log} bytes;\n\
             client_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
            pid = d.join("nginx.pid").display(),
            err = d.join("error.log").display(),
            log = log.display(),
            d = d.display(),
            root = root.display(),
        );
        std::fs::write(d.join("nginx.conf"), conf).expect("nginx.conf");
        let child = Command::new("/usr/sbin/nginx")
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-p")
            .arg(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (Debian's nginx-light; run deploy/install-deps.sh)");
        let child = ChildGuard { child };
        // ready when it accepts a connection
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nginx did not listen on port {port}: {}",
                std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            port,
            log,
            _dir: dir,
            _child: child,
        }
    }

    /// `/vsicurl/` path of `name` under the served folder.
    pub fn vsicurl(&self, name: &str) -> String {
        format!("/vsicurl/http://127.0.0.1:{}/{name}", self.port)
    }

    /// The requests served so far.
    pub fn requests(&self) -> Vec<Request> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut it = l.splitn(4, ' ');
                let (uri, status, bytes) = (it.next()?, it.next()?, it.next()?);
                let (range, agent) = it.next()?.split_once("\" \"")?;
                Some(Request {
                    uri: uri.to_string(),
                    status: status.parse().ok()?,
                    bytes: bytes.parse().ok()?,
                    range: range.trim_matches('"').to_string(),
                    agent: agent.trim_matches('"').to_string(),
                })
            })
            .collect()
    }
}

/// A port free on loopback now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
