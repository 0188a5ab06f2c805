//! `flus demand` on the shipped Ben Cat study, checked against an independent
//! computation of the Markov projection written here.

use std::time::Duration;

use flus_e2e::flus;

fn matmul(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let k = a.len();
    (0..k)
        .map(|i| {
            (0..k)
                .map(|j| (0..k).map(|m| a[i][m] * b[m][j]).sum())
                .collect()
        })
        .collect()
}

#[test]
fn ben_cat_demand_sums_to_the_valid_cells_and_follows_v2020_p4() {
    let dir = tempfile::tempdir().unwrap();
    let out = flus(
        &[
            "demand",
            "examples/bencat/study.toml",
            "--json",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        None,
        Duration::from_secs(300),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let j = out.json();
    let valid = j["valid_cells"].as_u64().unwrap();
    let counts: Vec<Vec<u64>> = serde_json::from_value(j["transition_counts"].clone()).unwrap();
    let total: u64 = counts.iter().flatten().sum();
    assert_eq!(total, valid, "transition counts cover every valid cell");
    // 2020 counts = column sums
    let k = counts.len();
    let v2020: Vec<f64> = (0..k)
        .map(|c| counts.iter().map(|r| r[c]).sum::<u64>() as f64 / valid as f64)
        .collect();
    let classes: Vec<String> = serde_json::from_value(j["classes"].clone()).unwrap();
    assert_eq!(classes, ["forest", "water", "built-up", "cropland"]);

    // The urbanized scenario, rebuilt independently from the study's text: forbidden
    // conversions (matrix 0) removed, forest/cropland -> built-up x 1.5, rows renormalised.
    let allowed = [[1, 0, 1, 1], [1, 1, 1, 1], [0, 0, 1, 0], [0, 0, 1, 1]];
    let mut p: Vec<Vec<f64>> = counts
        .iter()
        .map(|r| {
            let s: u64 = r.iter().sum();
            r.iter().map(|&x| x as f64 / s as f64).collect()
        })
        .collect();
    for i in 0..k {
        for jj in 0..k {
            if i != jj && allowed[i][jj] == 0 {
                p[i][jj] = 0.0;
            }
        }
    }
    p[0][2] *= 1.5;
    p[3][2] *= 1.5;
    for row in p.iter_mut() {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= s);
    }
    // P^4 by squaring twice (the library steps four times instead)
    let p2 = matmul(&p, &p);
    let p4 = matmul(&p2, &p2);
    let shares: Vec<f64> = (0..k)
        .map(|c| (0..k).map(|i| v2020[i] * p4[i][c]).sum())
        .collect();
    let got: Vec<f64> =
        serde_json::from_value(j["scenarios"]["urbanized"]["shares"].clone()).unwrap();
    for c in 0..k {
        assert!(
            (got[c] - shares[c]).abs() < 1e-12,
            "class {c}: {} vs {}",
            got[c],
            shares[c]
        );
    }
    for (name, sc) in j["scenarios"].as_object().unwrap() {
        let d: u64 = classes
            .iter()
            .map(|c| sc["demand"][c].as_u64().unwrap())
            .sum();
        assert_eq!(d, valid, "scenario {name}: demand sums to the valid cells");
    }
    for (c, name) in classes.iter().enumerate() {
        let d = j["scenarios"]["urbanized"]["demand"][name]
            .as_u64()
            .unwrap() as f64;
        assert!((d - shares[c] * valid as f64).abs() <= 1.0, "{name}: {d}");
    }
    // the agricultural matrix forbids every conversion into built-up: it stays
    let built_2020 = (0..k).map(|i| counts[i][2]).sum::<u64>();
    assert_eq!(
        j["scenarios"]["agricultural"]["demand"]["built-up"]
            .as_u64()
            .unwrap(),
        built_2020
    );
    for f in [
        "transition_counts.csv",
        "transition_probabilities.csv",
        "demand.csv",
    ] {
        assert!(dir.path().join(f).exists(), "{f} written");
    }
    let csv = std::fs::read_to_string(dir.path().join("demand.csv")).unwrap();
    assert!(
        csv.starts_with("class,cells_2010,cells_2020,urbanized_2060"),
        "{csv}"
    );
}

#[test]
fn dongguan_persistence_baseline_matches_the_published_figures() {
    let out = flus(
        &[
            "compare",
            "--start",
            "examples/dongguan/landuse_2001.tif",
            "--truth",
            "examples/dongguan/landuse_2006.tif",
            "--sim",
            "examples/dongguan/landuse_2001.tif",
            "--json",
        ],
        None,
        Duration::from_secs(120),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let j = out.json();
    for m in [&j, &j["persistence"]] {
        assert_eq!(format!("{:.4}", m["oa"].as_f64().unwrap()), "0.6008");
        assert_eq!(format!("{:.4}", m["kappa"].as_f64().unwrap()), "0.4997");
        assert_eq!(m["hits"], 0);
        for key in [
            "kloc",
            "khisto",
            "fom",
            "producer_accuracy",
            "user_accuracy",
            "misses",
            "wrong_hits",
            "false_alarms",
        ] {
            assert!(m.get(key).is_some(), "key {key}");
        }
    }
}
