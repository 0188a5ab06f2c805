//! TLS between coordinator and workers (rustls): a TLS worker serves a client that
//! trusts its CA, and refuses plaintext clients, clients that trust another CA, and
//! (with `--tls-client-ca`) clients without a certificate of the client CA.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flus_e2e::{flus, start_worker};
use flus_proto::v1::health_client::HealthClient;
use flus_proto::v1::HealthRequest;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// A CA: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate for `names` signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A worker serving TLS with a certificate for localhost and 127.0.0.1 signed by a
/// fresh CA; returns the worker, the temp folder and the CA file.
fn tls_worker(extra: &[&str]) -> (flus_e2e::Worker, tempfile::TempDir, PathBuf, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("flus test CA");
    let (cert, key) = leaf(&ca, &["localhost", "127.0.0.1"]);
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let cert_file = write(dir.path(), "worker.pem", &cert);
    let key_file = write(dir.path(), "worker.key", &key);
    let mut args = vec![
        "--tls-cert".to_string(),
        cert_file.to_string_lossy().to_string(),
        "--tls-key".to_string(),
        key_file.to_string_lossy().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let w = start_worker(&args);
    (w, dir, ca_file, ca)
}

fn ping(args: &[&str]) -> flus_e2e::Output {
    flus(args, None, Duration::from_secs(60))
}

#[test]
fn a_tls_worker_serves_a_client_that_trusts_its_ca() {
    let (w, _d, ca_file, _) = tls_worker(&[]);
    let out = ping(&[
        "ping",
        &w.addr,
        "--tls-ca",
        ca_file.to_str().unwrap(),
        "--tls-domain",
        "localhost",
        "--json",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["workers"][0]["status"], "SERVING", "{j}");
    // the IP address in the certificate also verifies, without --tls-domain
    let out = ping(&["ping", &w.addr, "--tls-ca", ca_file.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn a_tls_worker_refuses_a_plaintext_client() {
    let (w, _d, _, _) = tls_worker(&[]);
    let out = ping(&["ping", &w.addr, "--timeout", "5"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("worker {}", w.addr)),
        "{}",
        out.stderr
    );
}

#[test]
fn a_tls_worker_refuses_a_client_that_trusts_another_ca() {
    let (w, d, _, _) = tls_worker(&[]);
    let other = write(d.path(), "other.pem", &ca("another CA").pem);
    let out = ping(&[
        "ping",
        &w.addr,
        "--tls-ca",
        other.to_str().unwrap(),
        "--tls-domain",
        "localhost",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("worker {}", w.addr))
            && out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
}

/// Health check over TLS with an optional client identity.
async fn health(addr: &str, ca_pem: &str, identity: Option<Identity>) -> Result<u32, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    let ch = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let r = HealthClient::new(ch)
        .check(HealthRequest {})
        .await
        .map_err(|e| format!("check: {e:?}"))?;
    Ok(r.into_inner().protocol)
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificates_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let clients = ca("flus client CA");
    let client_ca = write(dir.path(), "clients.pem", &clients.pem);
    let (w, _d, _, server_ca) = tls_worker(&["--tls-client-ca", client_ca.to_str().unwrap()]);
    // no client certificate: refused
    assert!(health(&w.addr, &server_ca.pem, None).await.is_err());
    // a certificate of another CA: refused
    let stranger = ca("stranger CA");
    let (c, k) = leaf(&stranger, &["coordinator"]);
    assert!(
        health(&w.addr, &server_ca.pem, Some(Identity::from_pem(c, k)))
            .await
            .is_err()
    );
    // a certificate of the client CA: served
    let (c, k) = leaf(&clients, &["coordinator"]);
    let protocol = health(&w.addr, &server_ca.pem, Some(Identity::from_pem(c, k)))
        .await
        .unwrap();
    assert_eq!(protocol, flus_proto::PROTOCOL_REVISION);
}
