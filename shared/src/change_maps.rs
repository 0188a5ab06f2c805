//! Maps of the validation (docs/design.md §6): where the land use changed in the
//! observed and in the simulated map, and where the figure of merit's four components
//! lie (hits, misses, wrong hits, false alarms), as Byte categories with a colour table.

use std::path::Path;

use crate::config::Study;
use crate::error::Result;
use crate::grid::Grid;
use crate::raster::{self, PaletteEntry, WriteOptions};

/// No data (a cell not valid in all three maps).
pub const NO_DATA: u8 = 0;
/// Change map: the cell kept its class.
pub const UNCHANGED: u8 = 1;
/// Change map: first code of "changed to class i" (code = `CHANGED_TO + i`).
pub const CHANGED_TO: u8 = 2;

/// Components map: observed persistence simulated as persistence.
pub const PERSISTENCE: u8 = 1;
/// Components map: observed change simulated as the right class (B).
pub const HIT: u8 = 2;
/// Components map: observed change simulated as persistence (A).
pub const MISS: u8 = 3;
/// Components map: observed change simulated as the wrong class (C).
pub const WRONG_HIT: u8 = 4;
/// Components map: observed persistence simulated as change (D).
pub const FALSE_ALARM: u8 = 5;

/// The components map's categories: code, name, colour (hits green, misses orange,
/// wrong hits purple, false alarms magenta; ColorBrewer Dark2; persistence pale grey).
pub const COMPONENTS: [(u8, &str, [u8; 3]); 5] = [
    (
        PERSISTENCE,
        "persistence simulated as persistence",
        [0xe8, 0xe8, 0xe8],
    ),
    (HIT, "hit (change simulated right)", [0x1b, 0x9e, 0x77]),
    (
        MISS,
        "miss (change simulated as persistence)",
        [0xd9, 0x5f, 0x02],
    ),
    (
        WRONG_HIT,
        "wrong hit (change to the wrong class)",
        [0x75, 0x70, 0xb3],
    ),
    (
        FALSE_ALARM,
        "false alarm (persistence simulated as change)",
        [0xe7, 0x29, 0x8a],
    ),
];

/// Colour of unchanged cells in the change maps.
pub const UNCHANGED_RGB: [u8; 3] = [0xe8, 0xe8, 0xe8];

/// The component of one cell (class indices, values >= `k` not compared): [`NO_DATA`],
/// [`PERSISTENCE`], [`HIT`], [`MISS`], [`WRONG_HIT`] or [`FALSE_ALARM`].
pub fn component(start: u8, truth: u8, sim: u8, k: usize) -> u8 {
    let kk = k.min(256);
    if start as usize >= kk || truth as usize >= kk || sim as usize >= kk {
        return NO_DATA;
    }
    match (truth != start, sim != start) {
        (false, false) => PERSISTENCE,
        (false, true) => FALSE_ALARM,
        (true, false) => MISS,
        (true, true) if sim == truth => HIT,
        (true, true) => WRONG_HIT,
    }
}

/// The change of one cell from `from` to `to` (class indices; values >= `k` or a
/// class index too large for a code give [`NO_DATA`]): [`UNCHANGED`] or
/// `CHANGED_TO + to`.
pub fn change(from: u8, to: u8, k: usize) -> u8 {
    if from as usize >= k || to as usize >= k || to as usize + CHANGED_TO as usize > 255 {
        return NO_DATA;
    }
    if from == to {
        UNCHANGED
    } else {
        CHANGED_TO + to
    }
}

/// Writes a Byte categories raster of `values` with nodata 0 and `palette`.
fn write_categories(
    study: &Study,
    path: &Path,
    grid: &Grid,
    values: &[u8],
    palette: Vec<PaletteEntry>,
    band: &str,
) -> Result<()> {
    raster::write_geotiff(
        path,
        grid,
        &[values],
        &WriteOptions {
            nodata: Some(NO_DATA as f64),
            palette,
            band_names: vec![band.to_string()],
        },
    )?;
    crate::outputs::finish_format(study, path)
}

/// The paths of the validation maps of the period ending in `to` in `dir`:
/// observed change, simulated change, figure-of-merit components.
pub fn paths(dir: &Path, to: i32) -> [std::path::PathBuf; 3] {
    [
        dir.join(format!("validation_change_observed_{to}.tif")),
        dir.join(format!("validation_change_simulated_{to}.tif")),
        dir.join(format!("validation_components_{to}.tif")),
    ]
}

/// Writes the three validation maps ([`paths`]) of `start` -> `truth` simulated as
/// `sim` (class indices on `grid`).
pub fn write(study: &Study, dir: &Path, to: i32, grid: &Grid, maps: [&[u8]; 3]) -> Result<()> {
    let [start, truth, sim] = maps;
    let k = study.k();
    let mut change_palette = vec![PaletteEntry {
        value: UNCHANGED,
        name: "unchanged".into(),
        rgb: UNCHANGED_RGB,
    }];
    change_palette.extend(
        study
            .config
            .classes
            .iter()
            .enumerate()
            .filter(|(i, _)| i + (CHANGED_TO as usize) < 256)
            .map(|(i, c)| PaletteEntry {
                value: CHANGED_TO + i as u8,
                name: format!("changed to {}", c.name),
                rgb: c.rgb(),
            }),
    );
    let [observed, simulated, components] = paths(dir, to);
    let obs: Vec<u8> = start
        .iter()
        .zip(truth)
        .map(|(&a, &b)| change(a, b, k))
        .collect();
    write_categories(
        study,
        &observed,
        grid,
        &obs,
        change_palette.clone(),
        "observed change",
    )?;
    drop(obs);
    let simc: Vec<u8> = start
        .iter()
        .zip(sim)
        .zip(truth)
        .map(|((&a, &b), &t)| {
            if (t as usize) < k {
                change(a, b, k)
            } else {
                NO_DATA
            }
        })
        .collect();
    write_categories(
        study,
        &simulated,
        grid,
        &simc,
        change_palette,
        "simulated change",
    )?;
    drop(simc);
    let comp: Vec<u8> = start
        .iter()
        .zip(truth)
        .zip(sim)
        .map(|((&a, &t), &m)| component(a, t, m, k))
        .collect();
    let palette = COMPONENTS
        .iter()
        .map(|&(value, name, rgb)| PaletteEntry {
            value,
            name: name.into(),
            rgb,
        })
        .collect();
    write_categories(
        study,
        &components,
        grid,
        &comp,
        palette,
        "figure of merit component",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four components of Pontius's figure of merit, by hand: start 0; truth 1;
    /// simulated 1 = hit, 0 = miss, 2 = wrong hit; truth 0 simulated 2 = false alarm.
    #[test]
    fn components_by_hand() {
        assert_eq!(component(0, 1, 1, 3), HIT);
        assert_eq!(component(0, 1, 0, 3), MISS);
        assert_eq!(component(0, 1, 2, 3), WRONG_HIT);
        assert_eq!(component(0, 0, 2, 3), FALSE_ALARM);
        assert_eq!(component(0, 0, 0, 3), PERSISTENCE);
        assert_eq!(component(3, 0, 0, 3), NO_DATA);
        assert_eq!(change(0, 0, 3), UNCHANGED);
        assert_eq!(change(0, 2, 3), CHANGED_TO + 2);
        assert_eq!(change(0, 3, 3), NO_DATA);
    }
}
