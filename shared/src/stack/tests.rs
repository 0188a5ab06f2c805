//! Tests of the stack module: the land-use code table, and drivers spilled to scratch
//! files read back as the values held in memory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::landuse::CodeTable;
use super::*;
use crate::config::Study;
use crate::layers::Layers;

fn bencat() -> Study {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/bencat/study.toml");
    Study::load(&p).unwrap()
}

#[test]
fn a_code_table_gives_the_class_of_each_code_and_none_for_codes_of_no_class() {
    // codes 10, 12, -3 -> classes 0, 1, 2 (a table over -3..=12)
    let near: BTreeMap<i64, u8> = [(10, 0), (12, 1), (-3, 2)].into();
    let t = CodeTable::new(&near);
    assert_eq!(t.table.len(), 16);
    assert_eq!(
        (t.get(10), t.get(12), t.get(-3)),
        (Some(0), Some(1), Some(2))
    );
    for code in [11, -4, 13, 0, i64::MIN, i64::MAX] {
        assert_eq!(t.get(code), None, "code {code}");
    }
    // codes 70,000 apart: no table, the map answers the same
    let far: BTreeMap<i64, u8> = [(1, 0), (70_001, 1)].into();
    let t = CodeTable::new(&far);
    assert!(t.table.is_empty());
    assert_eq!(
        (t.get(1), t.get(70_001), t.get(2)),
        (Some(0), Some(1), None)
    );
}

#[test]
fn spilled_drivers_read_back_the_values_held_in_memory_and_their_folder_goes_with_the_stack() {
    let study = bencat();
    let mem = load(&study).unwrap();
    let spilled = load_spilled(&study).unwrap();
    assert_eq!(spilled.mask, mem.mask);
    assert_eq!(spilled.maps, mem.maps);
    let n = mem.grid.cells();
    let dir = match &spilled.drivers[0].values {
        DriverValues::File(f) => f.path.parent().unwrap().to_path_buf(),
        DriverValues::Memory(_) => panic!("load_spilled kept a driver in memory"),
    };
    assert!(dir.is_dir());
    for (j, d) in mem.drivers.iter().enumerate() {
        let want = d.values.in_memory().unwrap();
        assert_eq!(want.len(), n);
        assert!(spilled.drivers[j].values.in_memory().is_none());
        // the whole layer through runs that do not start on a run boundary
        let mut got = vec![0f32; n];
        let cut = n / 3 + 7;
        spilled.drivers.read(j, 0, &mut got[..cut]).unwrap();
        spilled.drivers.read(j, cut, &mut got[cut..]).unwrap();
        assert!(
            got.iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "driver {}",
            d.name
        );
        let e = spilled.drivers.read(j, n - 1, &mut [0f32; 2]).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("layer {j}: cells {}..{}", n - 1, n + 1)),
            "{e}"
        );
    }
    drop(spilled);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
