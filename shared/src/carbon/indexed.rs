//! The per-cell carbon rasters of maps of class indices (what the CA simulates and
//! `flus run` writes): a row's value for each class comes from a table made once per
//! row (once per raster on a projected grid), so a cell costs one lookup instead of a
//! code conversion and a classification. The values are those of [`super::cells`] on
//! the classes' codes, to the bit: the tables hold the same expressions.

use super::cells::{Map, StorageUnit, CARBON_NODATA};
use super::pools::PoolsTable;
use super::totals::M2_PER_HA;
use crate::area::CellAreas;

/// The pools table seen through the class indices of a map: index `v` is the class
/// whose land-use code is `codes[v]`; an index with no code, or whose code the table
/// lacks, is not counted (nodata in every raster, as [`super::CarbonLayers::classify`]
/// leaves such cells out).
#[derive(Clone, Debug)]
pub struct IndexedPools {
    /// Row of the pools table of each class index (`None`: not counted).
    entry: [Option<usize>; 256],
    /// Total density (t/ha) of each row of the pools table.
    density: Vec<f64>,
}

/// A block of rows of a grid: its first row, its width and the grid's cell areas.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    /// Areas of the grid's cells.
    pub areas: &'a CellAreas,
    /// Row of the grid where the block starts.
    pub first_row: usize,
    /// Cells per row.
    pub width: usize,
}

impl IndexedPools {
    /// `pools` for a map whose class index `v` stands for land-use code `codes[v]`.
    pub fn new(pools: &PoolsTable, codes: &[i64]) -> Self {
        let index = pools.index();
        let mut entry = [None; 256];
        for (v, &code) in codes.iter().enumerate().take(256) {
            entry[v] = index.get(code);
        }
        IndexedPools {
            entry,
            density: pools.densities(),
        }
    }

    /// Storage of `which` map per cell in `unit`: the base map `base`, or `map` (same
    /// length). A cell is counted when its base class and, if `map` is given, its map
    /// class are both counted; others hold [`CARBON_NODATA`].
    pub fn storage(
        &self,
        base: &[u8],
        map: Option<&[u8]>,
        which: Map,
        unit: StorageUnit,
        rows: Rows<'_>,
    ) -> Vec<f32> {
        let chosen = match (which, map) {
            (Map::Baseline, _) => base,
            (Map::Alternate, Some(m)) => m,
            (Map::Alternate, None) => return vec![CARBON_NODATA; base.len()],
        };
        let n = base.len().min(map.map_or(usize::MAX, <[u8]>::len));
        let width = rows.width.max(1);
        // a cell is counted when its base class and its map class (if any) are
        let counted = |v: u8| self.entry[v as usize].is_some();
        let mut table = [CARBON_NODATA; 256];
        let mut table_area = f64::NAN;
        let mut out = vec![CARBON_NODATA; n];
        for (r, (o, first)) in out.chunks_mut(width).zip((0..n).step_by(width)).enumerate() {
            let row_area = rows.areas.row(rows.first_row + r);
            if row_area.to_bits() != table_area.to_bits() {
                table_area = row_area;
                let ha = row_area / M2_PER_HA;
                for (t, e) in table.iter_mut().zip(&self.entry) {
                    *t = match (e, unit) {
                        (Some(k), StorageUnit::TonnesPerCell) => (self.density[*k] * ha) as f32,
                        (Some(k), StorageUnit::TonnesPerHa) => self.density[*k] as f32,
                        (None, _) => CARBON_NODATA,
                    };
                }
            }
            let cells = first..first + o.len();
            let (b, c) = (&base[cells.clone()], &chosen[cells.clone()]);
            match map {
                Some(m) => {
                    for (o, ((&b, &m), &c)) in o.iter_mut().zip(b.iter().zip(&m[cells]).zip(c)) {
                        if counted(b) && counted(m) {
                            *o = table[c as usize];
                        }
                    }
                }
                None => {
                    for (o, &c) in o.iter_mut().zip(c) {
                        *o = table[c as usize];
                    }
                }
            }
        }
        out
    }

    /// Change `map` - `base` in t per cell times `multiplier`, for cells counted in both
    /// maps; [`CARBON_NODATA`] elsewhere.
    pub fn change(&self, base: &[u8], map: &[u8], rows: Rows<'_>, multiplier: f64) -> Vec<f32> {
        let n = base.len().min(map.len());
        let width = rows.width.max(1);
        let classes = self
            .entry
            .iter()
            .rposition(|e| e.is_some())
            .map_or(0, |v| v + 1);
        let mut table = vec![CARBON_NODATA; classes * classes];
        let mut table_area = f64::NAN;
        let mut out = vec![CARBON_NODATA; n];
        for (r, (o, (b, m))) in out
            .chunks_mut(width)
            .zip(base[..n].chunks(width).zip(map[..n].chunks(width)))
            .enumerate()
        {
            let row_area = rows.areas.row(rows.first_row + r);
            if row_area.to_bits() != table_area.to_bits() {
                table_area = row_area;
                let ha = row_area / M2_PER_HA;
                for (x, ex) in self.entry[..classes].iter().enumerate() {
                    for (y, ey) in self.entry[..classes].iter().enumerate() {
                        table[x * classes + y] = match (ex, ey) {
                            (Some(kb), Some(ka)) => {
                                ((self.density[*ka] * ha - self.density[*kb] * ha) * multiplier)
                                    as f32
                            }
                            _ => CARBON_NODATA,
                        };
                    }
                }
            }
            for (o, (&b, &m)) in o.iter_mut().zip(b.iter().zip(m)) {
                let (b, m) = (b as usize, m as usize);
                if b < classes && m < classes {
                    *o = table[b * classes + m];
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carbon::cells::{change_cells, storage_cells};
    use crate::carbon::counts::{CarbonLayers, CodeLayer};
    use crate::carbon::pools::{ClassPools, Pools};

    /// Codes 10, 20, 30 with densities 100.3, 42.0 and 7.25 t/ha.
    fn pools() -> PoolsTable {
        let row = |code, above, soil| ClassPools {
            code,
            name: String::new(),
            pools: Pools {
                above,
                below: 0.0,
                soil,
                dead: 0.0,
            },
        };
        PoolsTable::new(vec![
            row(30, 2.25, 5.0),
            row(10, 80.3, 20.0),
            row(20, 12.0, 30.0),
        ])
        .unwrap()
    }

    /// Class indices 0..4 stand for codes 10, 20, 30 and 40 (40 is not in the table);
    /// 255 has no code (nodata).
    const CODES: [i64; 4] = [10, 20, 30, 40];

    fn layer<'a>(name: &'a str, values: &'a [f64]) -> CodeLayer<'a> {
        CodeLayer {
            name,
            values,
            nodata: None,
        }
    }

    fn as_codes(map: &[u8]) -> Vec<f64> {
        map.iter()
            .map(|&v| CODES.get(v as usize).map_or(f64::NAN, |&c| c as f64))
            .collect()
    }

    /// 3 rows of 5 cells whose areas differ by row (a lon/lat grid), the block starting
    /// at row 2 of the grid.
    fn setting() -> (Vec<u8>, Vec<u8>, CellAreas) {
        let base = vec![0, 1, 2, 3, 255, 2, 2, 0, 1, 1, 0, 0, 0, 2, 1];
        let map = vec![1, 1, 0, 0, 0, 255, 2, 1, 3, 0, 2, 2, 0, 1, 1];
        let areas = CellAreas::PerRow(vec![9.0e5, 8.9e5, 812.5, 777.0, 690.25]);
        (base, map, areas)
    }

    /// The rows of [`setting`]: 5 cells wide from row 2 of the grid.
    fn block(areas: &CellAreas) -> Rows<'_> {
        Rows {
            areas,
            first_row: 2,
            width: 5,
        }
    }

    #[test]
    fn storage_by_row_tables_is_the_per_cell_storage_to_the_bit() {
        let (base, map, areas) = setting();
        let rows = block(&areas);
        let ip = IndexedPools::new(&pools(), &CODES);
        let (bc, mc) = (as_codes(&base), as_codes(&map));
        for with_map in [false, true] {
            let layers = CarbonLayers {
                baseline: layer("base", &bc),
                alternate: with_map.then(|| layer("map", &mc)),
                zones: None,
            };
            for which in [Map::Baseline, Map::Alternate] {
                for unit in [StorageUnit::TonnesPerCell, StorageUnit::TonnesPerHa] {
                    let want =
                        storage_cells(&pools(), &layers, which, unit, areas.window(2, 5)).unwrap();
                    let got = ip.storage(&base, with_map.then_some(&map[..]), which, unit, rows);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{which:?} {unit:?} map {with_map}");
                }
            }
        }
        // by hand: cell 0 (row 2, 812.5 m2) is code 10 in the base: 100.3 t/ha * 0.08125 ha;
        // cell 2 has code 30 in the base but 10 in the map; cell 3 has code 40 (no pools)
        // in the base and cell 8 in the map: not counted where the map is given
        let got = ip.storage(
            &base,
            Some(&map),
            Map::Baseline,
            StorageUnit::TonnesPerCell,
            rows,
        );
        assert_eq!(got[0], (100.3f64 * 0.08125) as f32);
        assert_eq!(got[2], (7.25f64 * 0.08125) as f32);
        assert_eq!(got[3], CARBON_NODATA);
        assert_eq!(got[4], CARBON_NODATA);
        assert_eq!(got[8], CARBON_NODATA);
        assert_eq!(got[10], (100.3f64 * 0.069025) as f32);
    }

    #[test]
    fn change_by_row_tables_is_the_per_cell_change_to_the_bit() {
        let (base, map, areas) = setting();
        let rows = block(&areas);
        let ip = IndexedPools::new(&pools(), &CODES);
        let (bc, mc) = (as_codes(&base), as_codes(&map));
        let layers = CarbonLayers {
            baseline: layer("base", &bc),
            alternate: Some(layer("map", &mc)),
            zones: None,
        };
        for multiplier in [1.0, 0.37] {
            let want = change_cells(&pools(), &layers, areas.window(2, 5), multiplier).unwrap();
            let got = ip.change(&base, &map, rows, multiplier);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "multiplier {multiplier}");
        }
        // by hand: cell 1 stays code 20 (0); cell 2 goes from 30 to 10 on 812.5 m2
        let got = ip.change(&base, &map, rows, 1.0);
        assert_eq!(got[1], 0.0);
        let ha = 812.5 / 1.0e4;
        assert_eq!(got[2], (100.3f64 * ha - 7.25 * ha) as f32);
        assert_eq!(got[4], CARBON_NODATA);
        assert_eq!(got[5], CARBON_NODATA);
        assert_eq!(got[8], CARBON_NODATA);
    }
}
