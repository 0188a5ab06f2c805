//! The run folder of `flus run`: carbon rasters that equal the study's pools times the
//! cell area, a run.json whose hashes are those of the files, and a report.html that
//! `flus report` rebuilds and a headless Chromium opens offline with every image loaded
//! and no script error (and a missing image is caught).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use flus_e2e::{flus, repo_root, run_with_timeout, Output};
use flus_shared::raster;

/// The browser; fails the test with a clear message when it is not installed.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium not found on PATH: the report test needs a headless Chromium \
         (Debian package `chromium`, installed by deploy/install-deps.sh)"
    );
}

/// Opens `page` in a headless Chromium with a fresh profile and `extra` flags.
fn browse(page: &Path, extra: &[&str]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    run_with_timeout(cmd, Duration::from_secs(90))
}

/// The value of attribute `name` of `<body>` in a dumped DOM.
fn body_attr(dom: &str, name: &str) -> Option<String> {
    let start = dom.find("<body")?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let key = format!("{name}=\"");
    let i = tag.find(&key)? + key.len();
    Some(tag[i..i + tag[i..].find('"')?].to_string())
}

/// Loads the page, returning (status, errors, image count) recorded by its check script.
fn check_page(page: &Path) -> (String, String, usize, String) {
    let out = browse(page, &["--dump-dom"]);
    assert_eq!(out.code, Some(0), "chromium failed:\n{}", out.stderr);
    let status = body_attr(&out.stdout, "data-report-status").unwrap_or_else(|| {
        panic!(
            "the page's check script did not run (no data-report-status):\n{}",
            &out.stdout[..out.stdout.len().min(2000)]
        )
    });
    let errors = body_attr(&out.stdout, "data-report-errors").unwrap_or_default();
    let images = body_attr(&out.stdout, "data-report-images")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (status, errors, images, out.stderr)
}

fn sha256sum(path: &Path) -> String {
    let mut cmd = Command::new("sha256sum");
    cmd.arg(path).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = run_with_timeout(cmd, Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "sha256sum {}", path.display());
    out.stdout.split_whitespace().next().unwrap().to_string()
}

/// A copy of the Ben Cat study with 300 GWR points instead of 1000 (the test's cost).
fn small_bencat(dir: &Path) -> PathBuf {
    let src = repo_root().join("examples/bencat");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let text = std::fs::read_to_string(dir.join("study.toml")).unwrap();
    assert!(text.contains("sample_points = 1000"));
    let text = text
        .replace("output = \"../../out/bencat\"", "output = \"out\"")
        .replace("sample_points = 1000", "sample_points = 300");
    std::fs::write(dir.join("study.toml"), text).unwrap();
    dir.join("study.toml")
}

/// Carbon per cell (t) of a Ben Cat class code: the study's pools (t/ha) summed, times
/// the 25 m x 25 m cell = 0.0625 ha.
fn bencat_t_per_cell(code: u8) -> f32 {
    let t: f64 = match code {
        1 => (82.2 + 16.4 + 273.0 + 7.6) * 0.0625, // forest 379.2 t/ha -> 23.7
        2 => 0.0,                                  // water
        3 => (5.6 + 1.1 + 25.3 + 0.0) * 0.0625,    // built-up 32.0 -> 2.0
        4 => (40.5 + 26.8 + 186.3 + 5.2) * 0.0625, // cropland 258.8 -> 16.175
        _ => f32::MIN as f64,
    };
    t as f32
}

#[test]
fn a_run_folder_has_checked_carbon_rasters_hashes_and_a_report_that_opens_offline() {
    // fail at once, saying why, when the browser is missing
    chromium();
    let dir = tempfile::tempdir().unwrap();
    let study = small_bencat(dir.path());
    let out_dir = dir.path().join("out");
    let out = flus(
        &[
            "run",
            study.to_str().unwrap(),
            "--local-workers",
            "1",
            "--no-validation",
            "--scenario",
            "urbanized",
            "--json",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        None,
        Duration::from_secs(600),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // run.json: hashes of the study file and of every output file
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["completed"], true);
    assert_eq!(run["config_sha256"].as_str().unwrap(), sha256sum(&study));
    assert!(run["versions"]["gdal"].as_str().unwrap().starts_with("3."));
    let outputs = run["outputs"].as_object().unwrap();
    for name in [
        "landuse_2020.tif",
        "landuse_urbanized_2060.tif",
        "carbon_storage_2020_t.tif",
        "carbon_storage_urbanized_2060_t.tif",
        "carbon_change_urbanized_2060_t.tif",
        "carbon_storage.csv",
        "demand.csv",
        "gwr_factor_r2.csv",
    ] {
        assert!(outputs.contains_key(name), "run.json outputs lack {name}");
    }
    for (name, hash) in outputs {
        assert_eq!(
            hash.as_str().unwrap(),
            sha256sum(&out_dir.join(name)),
            "{name}"
        );
    }

    // carbon rasters: pools x cell area per cell, change = scenario - base
    let read_u8 = |f: &str| raster::read_band::<u8>(&out_dir.join(f), 1).unwrap();
    let read_f32 = |f: &str| raster::read_band::<f32>(&out_dir.join(f), 1).unwrap();
    let (base_info, base) = read_u8("landuse_2020.tif");
    let (_, scen) = read_u8("landuse_urbanized_2060.tif");
    let (c_info, c_base) = read_f32("carbon_storage_2020_t.tif");
    let (_, c_scen) = read_f32("carbon_storage_urbanized_2060_t.tif");
    let (_, change) = read_f32("carbon_change_urbanized_2060_t.tif");
    assert_eq!(c_info.data_type, "Float32");
    assert!(raster::same_crs(
        &c_info.grid.crs_wkt,
        &base_info.grid.crs_wkt
    ));
    assert_eq!(c_info.grid.geotransform, base_info.grid.geotransform);
    let (mut counted, mut sum_change) = (0usize, 0f64);
    for i in 0..base.len() {
        if base[i] == 0 {
            assert_eq!(c_base[i], f32::MIN, "cell {i}: nodata expected");
            continue;
        }
        let (b, s) = (bencat_t_per_cell(base[i]), bencat_t_per_cell(scen[i]));
        assert!(
            (c_base[i] - b).abs() < 1e-4,
            "cell {i}: {} vs {b}",
            c_base[i]
        );
        assert!(
            (c_scen[i] - s).abs() < 1e-4,
            "cell {i}: {} vs {s}",
            c_scen[i]
        );
        assert!((change[i] - (s - b)).abs() < 1e-4, "cell {i}");
        counted += 1;
        sum_change += change[i] as f64;
    }
    assert_eq!(counted as u64, run["valid_cells"].as_u64().unwrap());
    let table_change = run["tables"]["carbon"][1]["change_t"].as_f64().unwrap();
    assert!(
        (sum_change - table_change).abs() < 1e-3 * table_change.abs(),
        "{sum_change} vs carbon_storage.csv {table_change}"
    );

    // flus report rebuilds the page and its images
    std::fs::remove_file(out_dir.join("report.html")).unwrap();
    std::fs::remove_dir_all(out_dir.join("report")).unwrap();
    let rep = flus(
        &["report", out_dir.to_str().unwrap(), "--json"],
        None,
        Duration::from_secs(120),
    );
    assert_eq!(rep.code, Some(0), "{}", rep.stderr);
    let j = rep.json();
    let page = PathBuf::from(j["report"].as_str().unwrap());
    let images: Vec<PathBuf> = j["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    // base map, the scenario map, their carbon storage maps, the scenario's carbon
    // change map, and the GWR coefficient maps: 4 classes x (intercept + 5 drivers)
    assert_eq!(images.len(), 2 + 2 + 1 + 4 * 6, "{j}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"));
    for img in &images {
        let bytes = std::fs::read(img).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", img.display());
        let rel = img.strip_prefix(&out_dir).unwrap().to_str().unwrap();
        assert!(html.contains(&format!("src=\"{rel}\"")), "page lacks {rel}");
    }

    // the browser loads every image without a script error
    let (status, errors, n, stderr) = check_page(&page);
    assert_eq!((status.as_str(), errors.as_str()), ("ok", ""), "{stderr}");
    assert_eq!(n, images.len());
    assert!(!stderr.contains("Uncaught"), "{stderr}");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-output");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let s = browse(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400",
            "--hide-scrollbars",
        ],
    );
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "{}",
        shot.display()
    );

    // and a missing image is caught
    std::fs::remove_file(&images[1]).unwrap();
    let (status, errors, _, _) = check_page(&page);
    assert_eq!(status, "error");
    let missing = images[1].file_name().unwrap().to_str().unwrap();
    assert!(errors.contains(missing), "{errors}");
}
