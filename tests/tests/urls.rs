//! Study inputs straight from a web server: every land-use map and driver of a study
//! given as a `/vsicurl/http://...` URL of a real nginx on loopback is read with HTTP
//! range requests, and the run gives the maps and carbon of the same study read from
//! local files; a URL that answers 404 is an error naming the URL and the status.

use std::path::Path;
use std::time::Duration;

use flus_e2e::crop::bencat_window;
use flus_e2e::http::{Nginx, S3};
use flus_e2e::{flus_watch, repo_root, run_one_scenario, start_worker_env, Output, TEST_TOKEN};

/// `flus run` of the urbanized scenario of `study` (no validation, one local worker)
/// into `out`.
fn run(study: &Path, out: &Path) -> Output {
    run_one_scenario(study, "urbanized", out)
}

/// The study at `study` with each of its `n` raster paths (`path = "x.tif"`) replaced
/// by `url("x.tif")`, written to `to`.
fn with_urls(study: &Path, to: &Path, n_paths: usize, url: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(study).unwrap();
    let mut out = String::new();
    let mut n = 0;
    for line in text.lines() {
        match line
            .strip_prefix("path = \"")
            .and_then(|r| r.strip_suffix(".tif\""))
        {
            Some(stem) => {
                out.push_str(&format!("path = \"{}\"\n", url(&format!("{stem}.tif"))));
                n += 1;
            }
            None => out.push_str(&format!("{line}\n")),
        }
    }
    assert_eq!(n, n_paths, "raster paths of {}", study.display());
    std::fs::write(to, out).unwrap();
}

#[test]
fn a_study_whose_inputs_are_all_urls_gives_the_local_runs_maps_and_carbon() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let study = bencat_window(&data, 300, 500, 600);
    let server = Nginx::serve(&data);
    let url_study = study.with_file_name("study_urls.toml");
    // Ben Cat: 3 maps, 5 drivers
    with_urls(&study, &url_study, 8, |f| server.vsicurl(f));

    let local = run(&study, &d.path().join("local"));
    assert_eq!(local.code, Some(0), "{}", local.stderr);
    let remote = run(&url_study, &d.path().join("remote"));
    assert_eq!(remote.code, Some(0), "{}", remote.stderr);
    let (a, b) = (local.json(), remote.json());
    let sc = |j: &serde_json::Value, k: &str| j["scenarios"]["urbanized"][k].clone();
    assert!(sc(&a, "map_sha256").is_string());
    assert_eq!(sc(&a, "map_sha256"), sc(&b, "map_sha256"));
    assert_eq!(sc(&a, "final_gap"), sc(&b, "final_gap"));
    let csv = |dir: &str| std::fs::read_to_string(d.path().join(dir).join("carbon_storage.csv"));
    assert_eq!(csv("local").unwrap(), csv("remote").unwrap());

    // every raster came over HTTP, read in ranges: no request of a whole file
    let reqs = server.requests();
    for f in [
        "landuse_2010.tif",
        "landuse_2020.tif",
        "dem.tif",
        "dist_road.tif",
    ] {
        let hits: Vec<_> = reqs
            .iter()
            .filter(|r| r.uri == format!("/{f}") && r.status == 206)
            .collect();
        assert!(!hits.is_empty(), "{f} was not read over HTTP: {reqs:?}");
        assert!(
            hits.iter().all(|r| r.range.starts_with("bytes=")),
            "{hits:?}"
        );
    }
    assert!(
        reqs.iter().all(|r| r.status != 200 || r.bytes == 0),
        "a whole file was sent: {reqs:?}"
    );
}

#[test]
fn a_url_that_answers_404_is_an_error_naming_the_url_and_the_status() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let study = bencat_window(&data, 300, 500, 40);
    let server = Nginx::serve(&data);
    let missing = server.vsicurl("landuse_2010_missing.tif");
    let url_study = study.with_file_name("study_404.toml");
    with_urls(&study, &url_study, 8, |f| {
        if f == "landuse_2010.tif" {
            missing.clone()
        } else {
            server.vsicurl(f)
        }
    });
    let out_dir = d.path().join("out404");
    let o = run(&url_study, &out_dir);
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains(&missing), "{}", o.stderr);
    assert!(o.stderr.contains("404"), "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    // nothing that looks like a result
    assert!(!out_dir.join("landuse_urbanized_2060.tif").exists());
}

/// A copy of examples/dongguan (its rasters are on one grid: workers can read them)
/// with every raster made a cloud-optimized GeoTIFF of 128 x 128 blocks by GDAL
/// (`gdal_translate -of COG`), as land-cover products are published.
fn dongguan_cogs(dst: &Path) {
    let src = repo_root().join("examples/dongguan");
    for sub in ["", "drivers"] {
        std::fs::create_dir_all(dst.join(sub)).unwrap();
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let e = e.unwrap();
            let to = dst.join(sub).join(e.file_name());
            if !e.file_type().unwrap().is_file() {
                continue;
            }
            if e.path().extension().is_some_and(|x| x == "tif") {
                let o = std::process::Command::new("gdal_translate")
                    .args([
                        "-q",
                        "-of",
                        "COG",
                        "-co",
                        "BLOCKSIZE=128",
                        "-co",
                        "COMPRESS=DEFLATE",
                    ])
                    .arg(e.path())
                    .arg(&to)
                    .output()
                    .expect("gdal_translate (gdal-bin)");
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            } else if e.path().extension().is_some_and(|x| x != "xml") {
                std::fs::copy(e.path(), &to).unwrap();
            }
        }
    }
}

#[test]
fn with_shared_data_each_worker_reads_only_its_tiles_windows_from_the_urls() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    dongguan_cogs(&data);
    let server = Nginx::serve(&data);
    // the workers' data root holds only the study file: every layer is a URL
    let cfg = d.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let url_study = cfg.join("study.toml");
    // Dongguan: 2 maps, 8 drivers, 1 restriction layer
    with_urls(&data.join("study.toml"), &url_study, 11, |f| {
        server.vsicurl(f)
    });

    let local = run_dongguan(
        &data.join("study.toml"),
        &d.path().join("local"),
        &["--local-workers", "1"],
    );
    assert_eq!(local.code, Some(0), "{}", local.stderr);

    let cfg_s = cfg.to_str().unwrap();
    let agents = ["flus-test-worker-a", "flus-test-worker-b"];
    let workers: Vec<_> = agents
        .iter()
        .map(|a| {
            start_worker_env(
                "127.0.0.1:0",
                &["--data-root", cfg_s, "--allow-urls", "--threads", "1"],
                &[("GDAL_HTTP_USERAGENT", a)],
            )
        })
        .collect();
    let list = workers
        .iter()
        .map(|w| w.addr.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let remote = run_dongguan(
        &url_study,
        &d.path().join("remote"),
        &["--workers", &list, "--shared-data", "--data-root", cfg_s],
    );
    assert_eq!(remote.code, Some(0), "{}", remote.stderr);
    let sc = |o: &Output, k: &str| o.json()["scenarios"]["tutorial"][k].clone();
    assert!(sc(&local, "map_sha256").is_string());
    assert_eq!(sc(&local, "map_sha256"), sc(&remote, "map_sha256"));

    // each worker read part of every driver over HTTP, never the whole file
    let reqs = server.requests();
    for f in [
        "dem",
        "slope",
        "aspect",
        "dist_highway",
        "dist_railway",
        "dist_road",
        "dist_town",
        "dist_city",
    ] {
        let uri = format!("/drivers/{f}.tif");
        let size = std::fs::metadata(data.join(&uri[1..])).unwrap().len();
        for a in agents {
            let read: u64 = reqs
                .iter()
                .filter(|r| r.uri == uri && r.agent == a)
                .map(|r| r.bytes)
                .sum();
            eprintln!("{a} read {read} of the {size} bytes of {uri}");
            assert!(read > 0, "{a} read nothing of {uri}: {reqs:?}");
            assert!(
                read < size,
                "{a} read {read} bytes of {uri}, the whole file is {size}"
            );
        }
    }
}

/// `flus run` of Dongguan's tutorial scenario (no validation) into `out` with `extra`.
fn run_dongguan(study: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        study.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-validation",
        "--scenario",
        "tutorial",
        "--json",
    ];
    args.extend_from_slice(extra);
    flus_watch(
        &args,
        &[("FLUS_TOKEN", TEST_TOKEN)],
        Duration::from_secs(600),
        |_, _| {},
    )
}

#[test]
fn a_study_on_s3_runs_to_the_local_hash_with_credentials_from_the_environment_only() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    dongguan_cogs(&data);
    // a secret that must appear nowhere in what flus prints or writes
    let (key, secret) = ("flustestkey", "fLuS-sEcReT-9f3a1c7e");
    let s3 = S3::start();
    s3.upload("landuse", &data, key, secret);
    let cfg = d.path().join("cfg");
    std::fs::create_dir(&cfg).unwrap();
    let study = cfg.join("study.toml");
    with_urls(&data.join("study.toml"), &study, 11, |f| {
        format!("/vsis3/landuse/{f}")
    });

    let local = run_dongguan(
        &data.join("study.toml"),
        &d.path().join("local"),
        &["--local-workers", "1"],
    );
    assert_eq!(local.code, Some(0), "{}", local.stderr);
    let env = [
        ("AWS_S3_ENDPOINT", s3.endpoint.as_str()),
        ("AWS_HTTPS", "NO"),
        ("AWS_VIRTUAL_HOSTING", "FALSE"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("FLUS_TOKEN", TEST_TOKEN),
    ];
    let out = d.path().join("s3");
    let cfg_s = cfg.to_str().unwrap();
    // local workers inherit the environment and read their windows from S3
    let args = [
        "run",
        study.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-validation",
        "--scenario",
        "tutorial",
        "--json",
        "--local-workers",
        "2",
        "--shared-data",
        "--data-root",
        cfg_s,
    ];
    let remote = flus_watch(&args, &env, Duration::from_secs(600), |_, _| {});
    assert_eq!(remote.code, Some(0), "{}", remote.stderr);
    let sc = |o: &Output| o.json()["scenarios"]["tutorial"]["map_sha256"].clone();
    assert!(sc(&local).is_string());
    assert_eq!(sc(&local), sc(&remote));
    assert!(!remote.stderr.contains(secret) && !remote.stdout.contains(secret));
    for e in walk(&out) {
        let bytes = std::fs::read(&e).unwrap();
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{} holds the secret", e.display());
    }

    // a bucket that does not exist (moto accepts any credentials): the error names the
    // object and S3's answer, and still not the secret
    let text = std::fs::read_to_string(&study).unwrap();
    std::fs::write(
        &study,
        text.replace("/vsis3/landuse/", "/vsis3/no-such-bucket/"),
    )
    .unwrap();
    let o = flus_watch(&args, &env, Duration::from_secs(600), |_, _| {});
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(
        o.stderr.contains("/vsis3/no-such-bucket/landuse_2001.tif"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("no such object, or access refused"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains(secret), "{}", o.stderr);
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}
