//! Integer cell counts per (zone, class): the only thing carbon totals are computed from,
//! so that totals do not depend on tiling or on the order cells are visited. Counts of
//! parts of a grid (tiles, halves, workers' answers) merge by addition.

use std::collections::BTreeMap;

use super::pools::{ClassIndex, PoolsTable};
use crate::area::CellAreas;
use crate::error::{Error, Result};

/// Zone code used for every cell when no zones are given.
pub const NO_ZONE: i64 = 0;

/// One layer of integer codes (land use or zones) as read from a raster: values as f64,
/// with its nodata value; `name` (usually the file) is used in error messages.
#[derive(Clone, Copy, Debug)]
pub struct CodeLayer<'a> {
    /// The file or layer name, for messages.
    pub name: &'a str,
    /// Cell values, row-major.
    pub values: &'a [f64],
    /// Declared nodata value (NaN cells are always nodata).
    pub nodata: Option<f64>,
}

impl CodeLayer<'_> {
    /// The integer code of cell `i`: `Ok(None)` for nodata, an error for a fractional value.
    #[inline]
    pub fn code(&self, i: usize) -> Result<Option<i64>> {
        let v = self.values[i];
        if v.is_nan() || self.nodata == Some(v) {
            return Ok(None);
        }
        if v.fract() != 0.0 || v.abs() > 9.0e15 {
            return Err(Error::Data(format!(
                "{}: cell {i} holds {v}, expected an integer code",
                self.name
            )));
        }
        Ok(Some(v as i64))
    }
}

/// What to do with land-use codes that the pools table does not have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnMissing {
    /// Fail, naming the codes (InVEST's behaviour).
    #[default]
    Error,
    /// Leave those cells out of every total and raster, and report them.
    Exclude,
}

/// What a cell contributes, given all its layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellClass {
    /// Counted: zone code, baseline class row, alternate class row (when there is one).
    Valid {
        /// Zone code ([`NO_ZONE`] without zones).
        zone: i64,
        /// Row of the baseline code in the pools table.
        baseline: usize,
        /// Row of the alternate code in the pools table.
        alternate: Option<usize>,
    },
    /// Nodata in the baseline or alternate land-use map.
    Nodata,
    /// Land use present, but the zone layer has nodata (outside every zone).
    OutsideZones,
    /// A land-use code is not in the pools table (baseline code, alternate code).
    Unknown(Option<i64>, Option<i64>),
}

/// The layers of one carbon computation over the same cells (a whole grid or one tile).
#[derive(Clone, Copy, Debug)]
pub struct CarbonLayers<'a> {
    /// Baseline land use.
    pub baseline: CodeLayer<'a>,
    /// Alternate (future / scenario) land use.
    pub alternate: Option<CodeLayer<'a>>,
    /// Zone codes.
    pub zones: Option<CodeLayer<'a>>,
}

impl CarbonLayers<'_> {
    /// Number of cells; errors when the layers differ in length.
    pub fn len(&self) -> Result<usize> {
        let n = self.baseline.values.len();
        for l in [self.alternate, self.zones].into_iter().flatten() {
            if l.values.len() != n {
                return Err(Error::Data(format!(
                    "{} has {} cells, {} has {n}: the layers must cover the same cells",
                    l.name,
                    l.values.len(),
                    self.baseline.name
                )));
            }
        }
        Ok(n)
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.baseline.values.is_empty()
    }

    /// Classifies cell `i`. A cell counts only when every layer has data there and both
    /// land-use codes are in the pools table; the same rule drives counts and rasters.
    #[inline]
    pub fn classify(&self, index: &ClassIndex, i: usize) -> Result<CellClass> {
        let b = self.baseline.code(i)?;
        let a = match &self.alternate {
            Some(l) => Some(l.code(i)?),
            None => None,
        };
        let (Some(b), true) = (b, a.map(|x| x.is_some()).unwrap_or(true)) else {
            return Ok(CellClass::Nodata);
        };
        let a = a.flatten();
        let zone = match &self.zones {
            Some(z) => match z.code(i)? {
                Some(z) => z,
                None => return Ok(CellClass::OutsideZones),
            },
            None => NO_ZONE,
        };
        let bi = index.get(b);
        let ai = a.map(|a| index.get(a));
        match (bi, ai) {
            (Some(bi), None) => Ok(CellClass::Valid {
                zone,
                baseline: bi,
                alternate: None,
            }),
            (Some(bi), Some(Some(ai))) => Ok(CellClass::Valid {
                zone,
                baseline: bi,
                alternate: Some(ai),
            }),
            (bi, ai) => Ok(CellClass::Unknown(
                if bi.is_none() { Some(b) } else { None },
                match (a, ai) {
                    (Some(a), Some(None)) => Some(a),
                    _ => None,
                },
            )),
        }
    }
}

/// Areas (m2) per zone (key) and class (value index) of the baseline and alternate maps,
/// for grids whose cell area varies by row (geographic grids): per row, integer counts
/// times the row's area, added in row order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AreaSums {
    /// Baseline: zone code -> m2 per class.
    pub baseline: BTreeMap<i64, Vec<f64>>,
    /// Alternate: zone code -> m2 per class.
    pub alternate: Option<BTreeMap<i64, Vec<f64>>>,
}

/// Cell counts per (zone, class) of the baseline and (optionally) the alternate map,
/// plus the cells left out and why. Classes are the pools table's codes in ascending
/// order; zones are kept in ascending code order.
#[derive(Clone, Debug, PartialEq)]
pub struct CarbonCounts {
    /// Class codes, in the order of the per-class count vectors.
    pub classes: Vec<i64>,
    /// Baseline: zone code -> cells per class.
    pub baseline: BTreeMap<i64, Vec<u64>>,
    /// Alternate: zone code -> cells per class (`None` without an alternate map).
    pub alternate: Option<BTreeMap<i64, Vec<u64>>>,
    /// Cells with nodata in a land-use map.
    pub nodata_cells: u64,
    /// Cells with land use but outside every zone (zone nodata).
    pub outside_zones_cells: u64,
    /// Cells left out because a land-use code is not in the pools table.
    pub unknown_cells: u64,
    /// Unknown code -> number of map cells holding it (a cell unknown in both maps
    /// counts once per map).
    pub unknown_codes: BTreeMap<i64, u64>,
    /// Areas per (zone, class) when the cell area varies by row (see
    /// [`CarbonCounts::count_on_grid`]); `None` when every cell has the same area.
    pub areas: Option<AreaSums>,
}

impl CarbonCounts {
    /// Empty counts for the classes of `pools`, with or without an alternate map.
    pub fn new(pools: &PoolsTable, with_alternate: bool) -> Self {
        CarbonCounts {
            classes: pools.codes(),
            baseline: BTreeMap::new(),
            alternate: with_alternate.then(BTreeMap::new),
            nodata_cells: 0,
            outside_zones_cells: 0,
            unknown_cells: 0,
            unknown_codes: BTreeMap::new(),
            areas: None,
        }
    }

    /// Counts the cells of `layers` (a whole grid or one tile) into `self`.
    pub fn add(&mut self, pools: &PoolsTable, layers: &CarbonLayers<'_>) -> Result<()> {
        if pools.codes() != self.classes {
            return Err(Error::Data(
                "carbon counts and pools table have different classes".into(),
            ));
        }
        if layers.alternate.is_some() != self.alternate.is_some() {
            return Err(Error::Data(
                "carbon counts and layers disagree on whether there is an alternate map".into(),
            ));
        }
        let n = layers.len()?;
        let index = pools.index();
        let k = self.classes.len();
        for i in 0..n {
            match layers.classify(&index, i)? {
                CellClass::Valid {
                    zone,
                    baseline,
                    alternate,
                } => {
                    self.baseline.entry(zone).or_insert_with(|| vec![0; k])[baseline] += 1;
                    if let (Some(alt), Some(a)) = (self.alternate.as_mut(), alternate) {
                        alt.entry(zone).or_insert_with(|| vec![0; k])[a] += 1;
                    }
                }
                CellClass::Nodata => self.nodata_cells += 1,
                CellClass::OutsideZones => self.outside_zones_cells += 1,
                CellClass::Unknown(b, a) => {
                    self.unknown_cells += 1;
                    for c in [b, a].into_iter().flatten() {
                        *self.unknown_codes.entry(c).or_insert(0) += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts of a whole set of layers.
    pub fn count(pools: &PoolsTable, layers: &CarbonLayers<'_>) -> Result<Self> {
        let mut c = CarbonCounts::new(pools, layers.alternate.is_some());
        c.add(pools, layers)?;
        Ok(c)
    }

    /// Counts of a whole grid `width` cells wide with cell areas `areas`: with per-row
    /// areas (a geographic grid) the areas per (zone, class) are summed too, row by row.
    pub fn count_on_grid(
        pools: &PoolsTable,
        layers: &CarbonLayers<'_>,
        width: usize,
        areas: &CellAreas,
    ) -> Result<Self> {
        let mut c = Self::count(pools, layers)?;
        if areas.is_geographic() {
            c.areas = Some(area_sums(pools, layers, width, areas)?);
        }
        Ok(c)
    }

    /// Adds `other` (counts of other cells) into `self`. Addition of integers: the result
    /// does not depend on how the grid was cut or in which order parts are merged.
    pub fn merge(&mut self, other: &CarbonCounts) -> Result<()> {
        if other.classes != self.classes {
            return Err(Error::Data(format!(
                "cannot merge carbon counts of classes {:?} into counts of classes {:?}",
                other.classes, self.classes
            )));
        }
        if other.alternate.is_some() != self.alternate.is_some() {
            return Err(Error::Data(
                "cannot merge carbon counts with and without an alternate map".into(),
            ));
        }
        let k = self.classes.len();
        fn add_map(into: &mut BTreeMap<i64, Vec<u64>>, from: &BTreeMap<i64, Vec<u64>>, k: usize) {
            for (z, v) in from {
                let dst = into.entry(*z).or_insert_with(|| vec![0; k]);
                for (d, s) in dst.iter_mut().zip(v) {
                    *d += s;
                }
            }
        }
        add_map(&mut self.baseline, &other.baseline, k);
        match (self.areas.as_mut(), other.areas.as_ref()) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                add_areas(&mut a.baseline, &b.baseline, k);
                if let (Some(x), Some(y)) = (a.alternate.as_mut(), b.alternate.as_ref()) {
                    add_areas(x, y, k);
                }
            }
            _ => {
                return Err(Error::Data(
                    "cannot merge carbon counts with and without per-row cell areas".into(),
                ))
            }
        }
        if let (Some(a), Some(b)) = (self.alternate.as_mut(), other.alternate.as_ref()) {
            add_map(a, b, k);
        }
        self.nodata_cells += other.nodata_cells;
        self.outside_zones_cells += other.outside_zones_cells;
        self.unknown_cells += other.unknown_cells;
        for (c, n) in &other.unknown_codes {
            *self.unknown_codes.entry(*c).or_insert(0) += n;
        }
        Ok(())
    }

    /// With [`OnMissing::Error`], fails when some land-use code is not in the pools
    /// table, naming every such code and its cell count.
    pub fn check_missing(&self, on_missing: OnMissing, pools_name: &str) -> Result<()> {
        if on_missing == OnMissing::Error && !self.unknown_codes.is_empty() {
            let list: Vec<String> = self
                .unknown_codes
                .iter()
                .map(|(c, n)| format!("{c} ({n} cells)"))
                .collect();
            return Err(Error::Data(format!(
                "land-use codes missing from the carbon pools table {pools_name}: {}; add rows for them or pass --on-missing exclude",
                list.join(", ")
            )));
        }
        Ok(())
    }

    /// Cells counted (valid in every layer, codes known); the same for both maps.
    pub fn counted_cells(&self) -> u64 {
        self.baseline.values().flatten().sum()
    }

    /// Cells left out for any reason.
    pub fn excluded_cells(&self) -> u64 {
        self.nodata_cells + self.outside_zones_cells + self.unknown_cells
    }

    /// Zone codes present, ascending.
    pub fn zones(&self) -> Vec<i64> {
        self.baseline.keys().copied().collect()
    }

    /// Cells per class over all zones, for the baseline (`alternate = false`) or the
    /// alternate map.
    pub fn class_cells(&self, alternate: bool) -> Option<Vec<u64>> {
        let m = if alternate {
            self.alternate.as_ref()?
        } else {
            &self.baseline
        };
        let mut out = vec![0u64; self.classes.len()];
        for v in m.values() {
            for (o, c) in out.iter_mut().zip(v) {
                *o += c;
            }
        }
        Some(out)
    }
}

fn add_areas(into: &mut BTreeMap<i64, Vec<f64>>, from: &BTreeMap<i64, Vec<f64>>, k: usize) {
    for (z, v) in from {
        let dst = into.entry(*z).or_insert_with(|| vec![0.0; k]);
        for (d, s) in dst.iter_mut().zip(v) {
            *d += s;
        }
    }
}

/// Areas per (zone, class) of the counted cells of `layers` (a whole grid `width` wide):
/// per row, integer counts times the row's area, added in row order.
fn area_sums(
    pools: &PoolsTable,
    layers: &CarbonLayers<'_>,
    width: usize,
    areas: &CellAreas,
) -> Result<AreaSums> {
    let n = layers.len()?;
    let index = pools.index();
    let k = pools.codes().len();
    let width = width.max(1);
    let mut sums = AreaSums {
        baseline: BTreeMap::new(),
        alternate: layers.alternate.is_some().then(BTreeMap::new),
    };
    let mut row_base: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    let mut row_alt: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    let flush = |from: &mut BTreeMap<i64, Vec<u64>>, into: &mut BTreeMap<i64, Vec<f64>>, a: f64| {
        for (z, v) in from.iter_mut() {
            let dst = into.entry(*z).or_insert_with(|| vec![0.0; k]);
            for (d, c) in dst.iter_mut().zip(v.iter_mut()) {
                *d += *c as f64 * a;
                *c = 0;
            }
        }
    };
    for r in 0..n.div_ceil(width) {
        for i in r * width..((r + 1) * width).min(n) {
            if let CellClass::Valid {
                zone,
                baseline,
                alternate,
            } = layers.classify(&index, i)?
            {
                row_base.entry(zone).or_insert_with(|| vec![0; k])[baseline] += 1;
                if let Some(a) = alternate {
                    row_alt.entry(zone).or_insert_with(|| vec![0; k])[a] += 1;
                }
            }
        }
        let a = areas.row(r);
        flush(&mut row_base, &mut sums.baseline, a);
        if let Some(alt) = sums.alternate.as_mut() {
            flush(&mut row_alt, alt, a);
        }
    }
    Ok(sums)
}
