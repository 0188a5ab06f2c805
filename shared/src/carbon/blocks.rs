//! Carbon of a block of cells in one pass: every cell is classified once, counted, and
//! written to each requested per-cell raster, so a map of any
//! size is processed a strip of rows at a time (see `flus carbon`) with the counts of
//! the strips merged by addition. The rasters hold exactly the values of
//! [`super::storage_cells`] and [`super::change_cells`] (same arithmetic), and the counts
//! are those of
//! [`CarbonCounts::count`] over the whole map.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::cells::{Map, StorageUnit, CARBON_NODATA};
use super::counts::{CarbonCounts, CarbonLayers, CellClass};
use super::pools::{ClassIndex, PoolsTable};
use super::totals::M2_PER_HA;
use crate::area::CellAreas;
use crate::error::{Error, Result};

/// A per-cell raster of a carbon run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellRaster {
    /// Storage of a map in a unit ([`super::storage_cells`]).
    Storage(Map, StorageUnit),
    /// Alternate - baseline, t per cell ([`super::change_cells`] with multiplier 1).
    Change,
    /// The change times the valuation constant ([`super::change_cells`] with it).
    Npv,
}

/// The per-cell rasters of a run for one pools table: each counted cell's value from
/// its class rows and its area.
#[derive(Clone, Debug)]
pub struct CellKernel {
    index: ClassIndex,
    dens: Vec<f64>,
    rasters: Vec<CellRaster>,
    npv: f64,
    pools: PoolsTable,
}

/// Cells per task when a block is split over threads.
const TASK_CELLS: usize = 1 << 16;

impl CellKernel {
    /// The kernel of `rasters` for `pools`; `npv_constant` is the valuation constant,
    /// needed only for [`CellRaster::Npv`].
    pub fn new(
        pools: &PoolsTable,
        rasters: &[CellRaster],
        npv_constant: Option<f64>,
    ) -> Result<Self> {
        if rasters.contains(&CellRaster::Npv) && npv_constant.is_none() {
            return Err(Error::Data(
                "the NPV raster needs the valuation constant".into(),
            ));
        }
        Ok(Self {
            index: pools.index(),
            dens: pools.densities(),
            rasters: rasters.to_vec(),
            npv: npv_constant.unwrap_or(0.0),
            pools: pools.clone(),
        })
    }

    /// The pools table of the kernel.
    pub fn pools(&self) -> &PoolsTable {
        &self.pools
    }

    /// Number of rasters written per block.
    pub fn rasters(&self) -> usize {
        self.rasters.len()
    }

    /// Value of raster `r` at a counted cell of area `area_m2` (the arithmetic of
    /// [`super::storage_cells`] and [`super::change_cells`]).
    #[inline]
    fn value(&self, r: CellRaster, b: usize, a: Option<usize>, area_m2: f64) -> f32 {
        let d = &self.dens;
        let ha = area_m2 / M2_PER_HA;
        let change = |m: f64| a.map(|a| ((d[a] * ha - d[b] * ha) * m) as f32);
        match r {
            CellRaster::Storage(map, unit) => {
                let k = match map {
                    Map::Baseline => Some(b),
                    Map::Alternate => a,
                };
                k.map(|k| match unit {
                    StorageUnit::TonnesPerCell => (d[k] * ha) as f32,
                    StorageUnit::TonnesPerHa => d[k] as f32,
                })
            }
            CellRaster::Change => change(1.0),
            CellRaster::Npv => change(self.npv),
        }
        .unwrap_or(CARBON_NODATA)
    }

    /// Classifies and counts the cells of `layers`, a block of a grid `width` cells wide
    /// starting at cell `first` (errors name the grid's cell), and writes each requested
    /// raster's value of every cell into `outs` (one slice of `layers.len()` values per
    /// raster, in the order of `rasters` given to [`Self::new`]), with the cell areas of
    /// `areas`. Returns the block's counts.
    pub fn block(
        &self,
        layers: &CarbonLayers<'_>,
        first: usize,
        width: usize,
        areas: &CellAreas,
        outs: &mut [&mut [f32]],
    ) -> Result<CarbonCounts> {
        let n = layers.len()?;
        if outs.len() != self.rasters.len() || outs.iter().any(|o| o.len() != n) {
            return Err(Error::Data(format!(
                "carbon block of {n} cells given {} output slices, expected {} of {n} values",
                outs.len(),
                self.rasters.len()
            )));
        }
        let mut tally = Tally::new(self.dens.len());
        for i in 0..n {
            let c = layers.classify_at(&self.index, i, first)?;
            if let CellClass::Valid {
                baseline,
                alternate,
                ..
            } = c
            {
                let area = areas.cell(first + i, width);
                for (&r, o) in self.rasters.iter().zip(outs.iter_mut()) {
                    o[i] = self.value(r, baseline, alternate, area);
                }
            } else {
                for o in outs.iter_mut() {
                    o[i] = CARBON_NODATA;
                }
            }
            tally.add(c);
        }
        let mut counts = CarbonCounts::new(&self.pools, layers.alternate.is_some());
        tally.into_counts(&mut counts);
        Ok(counts)
    }

    /// [`Self::block`] split over the threads of the current rayon pool (parts of
    /// [`TASK_CELLS`] cells, their counts merged by addition: the same counts and values
    /// on any number of threads; an error is the one of the lowest cell). `outs` holds
    /// one vector per raster, resized to the block.
    pub fn block_par(
        &self,
        layers: &CarbonLayers<'_>,
        first: usize,
        width: usize,
        areas: &CellAreas,
        outs: &mut [Vec<f32>],
    ) -> Result<CarbonCounts> {
        let n = layers.len()?;
        for o in outs.iter_mut() {
            o.resize(n, CARBON_NODATA);
        }
        let parts = n.div_ceil(TASK_CELLS);
        // per part, one slice of each raster
        let mut slices: Vec<Vec<&mut [f32]>> = (0..parts).map(|_| Vec::new()).collect();
        for o in outs.iter_mut() {
            for (p, s) in o.chunks_mut(TASK_CELLS).enumerate() {
                slices[p].push(s);
            }
        }
        let results: Vec<Result<CarbonCounts>> = slices
            .into_par_iter()
            .enumerate()
            .map(|(p, mut outs)| {
                let start = p * TASK_CELLS;
                let part = layers.part(start..(start + TASK_CELLS).min(n));
                self.block(&part, first + start, width, areas, &mut outs)
            })
            .collect();
        let mut counts = CarbonCounts::new(&self.pools, layers.alternate.is_some());
        for r in results {
            counts.merge(&r?)?;
        }
        Ok(counts)
    }
}

/// Counts of one block as it is visited: the zone of the previous cell is tried first,
/// so a block within one zone costs one increment per map and cell.
pub(crate) struct Tally {
    k: usize,
    /// (zone, baseline cells per class, alternate cells per class).
    zones: Vec<(i64, Vec<u64>, Vec<u64>)>,
    last: usize,
    nodata: u64,
    outside: u64,
    unknown: u64,
    unknown_codes: BTreeMap<i64, u64>,
}

impl Tally {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            zones: Vec::new(),
            last: 0,
            nodata: 0,
            outside: 0,
            unknown: 0,
            unknown_codes: BTreeMap::new(),
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, c: CellClass) {
        match c {
            CellClass::Valid {
                zone,
                baseline,
                alternate,
            } => {
                let z = match self.zones.get(self.last) {
                    Some(e) if e.0 == zone => self.last,
                    _ => self.zone_slot(zone),
                };
                let e = &mut self.zones[z];
                e.1[baseline] += 1;
                if let Some(a) = alternate {
                    e.2[a] += 1;
                }
            }
            CellClass::Nodata => self.nodata += 1,
            CellClass::OutsideZones => self.outside += 1,
            CellClass::Unknown(b, a) => {
                self.unknown += 1;
                for c in [b, a].into_iter().flatten() {
                    *self.unknown_codes.entry(c).or_insert(0) += 1;
                }
            }
        }
    }

    fn zone_slot(&mut self, zone: i64) -> usize {
        let z = match self.zones.iter().position(|e| e.0 == zone) {
            Some(z) => z,
            None => {
                self.zones.push((zone, vec![0; self.k], vec![0; self.k]));
                self.zones.len() - 1
            }
        };
        self.last = z;
        z
    }

    /// Adds the tally into `counts` (made for the same classes).
    pub(crate) fn into_counts(self, counts: &mut CarbonCounts) {
        let k = self.k;
        for (zone, b, a) in self.zones {
            let dst = counts.baseline.entry(zone).or_insert_with(|| vec![0; k]);
            for (d, s) in dst.iter_mut().zip(&b) {
                *d += s;
            }
            if let Some(alt) = counts.alternate.as_mut() {
                let dst = alt.entry(zone).or_insert_with(|| vec![0; k]);
                for (d, s) in dst.iter_mut().zip(&a) {
                    *d += s;
                }
            }
        }
        counts.nodata_cells += self.nodata;
        counts.outside_zones_cells += self.outside;
        counts.unknown_cells += self.unknown;
        for (c, n) in self.unknown_codes {
            *counts.unknown_codes.entry(c).or_insert(0) += n;
        }
    }
}
