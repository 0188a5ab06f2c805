//! Tests of the driver analysis: the seeded sample, the carbon change by hand, the
//! coarse grid of the coefficient maps, targets run at once.

use super::*;
use crate::grid::Grid;

#[test]
fn a_sample_larger_than_the_valid_cells_takes_them_all_with_a_warning() {
    // 5 valid cells of 8
    let mask = [true, false, true, true, false, true, false, true];
    assert_eq!(sample_cells(&mask, 1_000_000_000, 3), vec![0, 2, 3, 5, 7]);
    assert!(crate::notices::all().contains(
        &"gwr.sample_points = 1000000000 is more than the 5 valid cells: the GWR uses all 5"
            .to_string()
    ));
    assert_eq!(sample_cells(&mask, 2, 3).len(), 2);
}

#[test]
fn the_sample_is_seeded_sized_and_only_valid_cells() {
    let mask: Vec<bool> = (0..1000).map(|i| i % 3 != 0).collect();
    let a = sample_cells(&mask, 50, 7);
    assert_eq!(a.len(), 50);
    assert!(a.iter().all(|&i| mask[i]));
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(a, sample_cells(&mask, 50, 7));
    assert_ne!(a, sample_cells(&mask, 50, 8));
    assert_eq!(sample_cells(&mask, 5000, 7).len(), 666);
}

/// Densities 10 and 50 t/ha, cells of 900 m2 = 0.09 ha: a cell going from class 0
/// to class 1 gains (50 - 10) * 0.09 = 3.6 t, the reverse loses 3.6 t, an unchanged
/// cell 0; a class without pools (index 2, density 0) going to class 0 gains 0.9 t.
#[test]
fn carbon_change_at_sample_cells_by_hand() {
    let density = [10.0, 50.0, 0.0];
    let base = [0u8, 1, 0, 2, 1];
    let scen = [1u8, 0, 0, 0, 1];
    let y = carbon_change_at(
        &density,
        &base,
        &scen,
        &[0, 1, 2, 3],
        &crate::area::CellAreas::Uniform(900.0),
        5,
    );
    let want = [3.6, -3.6, 0.0, 0.9];
    for (g, w) in y.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{y:?}");
    }
    assert_eq!(
        carbon_change_at(
            &density,
            &base,
            &scen,
            &[4],
            &crate::area::CellAreas::Uniform(900.0),
            5
        ),
        vec![0.0]
    );
}

/// A 1000 x 10 grid is aggregated by 4 (250 wide, 3 rows); the geotransform scales
/// by 4; a coarse cell is valid when one of its cells is.
#[test]
fn coarse_grid_of_the_coefficient_maps() {
    let grid = Grid {
        width: 1000,
        height: 10,
        geotransform: [100.0, 30.0, 0.0, 5000.0, 0.0, -30.0],
        crs_wkt: String::new(),
    };
    let mut mask = vec![false; 10_000];
    mask[9 * 1000 + 999] = true; // last cell -> coarse (249, 2)
    mask[5] = true; // (5, 0) -> coarse (1, 0)
    let c = coarse_grid(&grid, &mask);
    assert_eq!(c.factor, 4);
    assert_eq!((c.grid.width, c.grid.height), (250, 3));
    assert_eq!(
        c.grid.geotransform,
        [100.0, 120.0, 0.0, 5000.0, 0.0, -120.0]
    );
    let valid: Vec<usize> = (0..c.valid.len()).filter(|&i| c.valid[i]).collect();
    assert_eq!(valid, vec![1, 2 * 250 + 249]);
    // 1003 wide: 251 coarse columns, the last of 3 cells; (1002, 9) -> coarse (250, 2),
    // (0, 8) -> (0, 2)
    let wide = Grid {
        width: 1003,
        ..grid.clone()
    };
    let mut mask = vec![false; 10_030];
    mask[9 * 1003 + 1002] = true;
    mask[8 * 1003] = true;
    let c = coarse_grid(&wide, &mask);
    assert_eq!((c.factor, c.grid.width, c.grid.height), (4, 251, 3));
    let valid: Vec<usize> = (0..c.valid.len()).filter(|&i| c.valid[i]).collect();
    assert_eq!(valid, vec![2 * 251, 2 * 251 + 250]);
    // a narrow grid is kept as it is
    let small = Grid {
        width: 120,
        ..grid.clone()
    };
    assert_eq!(coarse_grid(&small, &vec![true; 1200]).factor, 1);
}

#[test]
fn targets_run_at_once_come_back_in_target_order() {
    // 4 jobs on 4 threads; job i ends only after job i + 1 has: they end in
    // reverse order (job 3 first) and come back in index order
    let gate = (std::sync::Mutex::new(4usize), std::sync::Condvar::new());
    let out = in_parallel(4, 4, |i| {
        let (m, cv) = &gate;
        let mut g = cv.wait_while(m.lock().unwrap(), |g| *g != i + 1).unwrap();
        *g = i;
        cv.notify_all();
        i * 10
    });
    assert_eq!(out, vec![0, 10, 20, 30]);
    // more jobs than threads, and one thread: every job once, in order
    assert_eq!(in_parallel(7, 3, |i| i * i), vec![0, 1, 4, 9, 16, 25, 36]);
    assert_eq!(in_parallel(3, 1, |i| i + 1), vec![1, 2, 3]);
    assert!(in_parallel(0, 2, |i| i).is_empty());
}
