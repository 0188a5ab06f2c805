//! A worker lost while the suitability raster is assembled beside the scenario's run.

use std::path::Path;

use flus_e2e::hold::{held_at, Holds};

use crate::common::{addrs, after_iteration, run, same_map, workers};

#[test]
fn a_worker_killed_during_the_suitability_assembly_gives_its_tiles_to_the_other_and_keeps_the_map()
{
    let mut ws = workers(2);
    let list = addrs(&ws);
    let dir = tempfile::tempdir().unwrap();
    // the raster is assembled beside the scenario's run: the run is held after its first
    // iteration and the assembly before its first rows, the worker is killed, the
    // assembly finds it gone (the only part calling the workers) and re-sends its tiles,
    // and only then does the run go on, on the moved tiles
    let (point, iteration) = ("suitability-assembly", after_iteration(1));
    let holds = Holds::new();
    holds.arm(point);
    holds.arm(&iteration);
    let (mut at_point, mut at_iteration, mut killed, mut resent) = (false, false, false, false);
    let out = run(
        dir.path(),
        &list,
        &["--rejoin-probe", "0"],
        &holds,
        |line, _| {
            at_point |= held_at(line, point);
            at_iteration |= held_at(line, &iteration);
            if at_point && at_iteration && !killed {
                ws[1].guard.kill_and_reap();
                killed = true;
                holds.release(point);
            }
            if killed && !resent && line.contains("tiles re-sent") {
                resent = true;
                holds.release(&iteration);
            }
        },
    );
    assert!(
        killed && resent,
        "held at both points, then tiles re-sent:\n{}",
        out.stderr
    );
    same_map(&out, "worker killed during the suitability assembly");
    let j = out.json();
    let s = &j["sessions"]["scenarios"];
    assert_eq!(s["workers_lost"], 1, "{s}");
    // its tiles went to the survivor: sent twice in the session
    assert!(
        s["tile_bytes"].as_u64().unwrap() > s["first_load_bytes"].as_u64().unwrap(),
        "{s}"
    );
    // the raster holds the single-process inference's values in the tiles' fixed point
    // (round(s * 65535) / 65535), every band and cell
    let name = "suitability_2020.tif";
    let reference = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("faults-bencat-window")
        .join("reference")
        .join(name);
    let (ours, theirs) = (bands(&dir.path().join(name)), bands(&reference));
    assert_eq!(ours.len(), theirs.len(), "bands");
    for (b, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(ours.len(), theirs.len());
        for (i, (&a, &s)) in ours.iter().zip(theirs).enumerate() {
            let want = ((s as f64 * 65535.0).round() * (1.0 / 65535.0)) as f32;
            assert_eq!(a, want, "band {}, cell {i}: {a} vs {s}", b + 1);
        }
    }
}

/// Every band of the raster at `path`.
fn bands(path: &Path) -> Vec<Vec<f32>> {
    let ds = gdal::Dataset::open(path).unwrap();
    (1..=ds.raster_count())
        .map(|b| {
            let band = ds.rasterband(b).unwrap();
            band.read_as::<f32>((0, 0), band.size(), band.size(), None)
                .unwrap()
                .data()
                .to_vec()
        })
        .collect()
}
