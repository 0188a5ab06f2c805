//! Seed ensembles (`flus run --ensemble N`, docs/design.md §5 "Seed ensembles"): the seed of every
//! member, the per-cell frequencies over the members' maps, and the summary of a
//! quantity (carbon storage, a validation metric) over the members.
//!
//! Everything here is a pure function of the members' results taken in member order,
//! so it does not depend on which worker ran which member or in which order they ended.

use std::path::Path;

use crate::error::{Error, Result};
use crate::files;
use crate::rng::{stream, CounterRng};

/// The value of the frequency rasters outside the study area.
pub const FREQUENCY_NODATA: f32 = -1.0;

/// The seed of ensemble member `member` of a study whose seed is `seed`.
///
/// Member 0 runs with the study's own seed, so an ensemble's first member is the run
/// without `--ensemble`; member m > 0 takes the two first words of the Philox block
/// (study seed, stream `ENSEMBLE_MEMBER`, iteration 0, counter m), so members' seeds
/// are fixed by the study seed and their index alone.
pub fn member_seed(seed: u64, member: u32) -> u64 {
    if member == 0 {
        return seed;
    }
    let b = CounterRng::new(seed).block(stream::ENSEMBLE_MEMBER, 0, member as u64, 0);
    ((b[0] as u64) << 32) | b[1] as u64
}

/// Per-cell shares over the members of one (scenario, year), for a run of cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Frequencies {
    /// Share of members in which the cell's class differs from the start map's.
    pub change: Vec<f32>,
    /// `class[c][j]`: share of members giving the run's `j`-th cell class `c`.
    pub class: Vec<Vec<f32>>,
}

/// The largest ensemble whose class counts fit the accumulator's bytes.
pub const MAX_MEMBERS: usize = u8::MAX as usize;

/// Counts per (cell, class) over the members' maps of one (scenario, year): K bytes per
/// cell, whatever the number of members (at most [`MAX_MEMBERS`]), so members can be
/// added as they end and their maps dropped.
#[derive(Clone, Debug)]
pub struct FrequencyCounts {
    k: usize,
    members: usize,
    counts: Vec<u8>,
}

impl FrequencyCounts {
    /// An empty accumulator for maps of `cells` cells and `k` classes.
    pub fn new(k: usize, cells: usize) -> Self {
        Self {
            k,
            members: 0,
            counts: vec![0; k * cells],
        }
    }

    /// Members added so far.
    pub fn members(&self) -> usize {
        self.members
    }

    /// Adds a member's map (class indices; values >= K outside the study area).
    pub fn add(&mut self, map: &[u8]) -> Result<()> {
        let cells = self.counts.len() / self.k.max(1);
        if map.len() != cells {
            return Err(Error::Data(format!(
                "ensemble member {} has {} cells; expected {cells} like the start map",
                self.members,
                map.len()
            )));
        }
        if self.members == MAX_MEMBERS {
            return Err(Error::Data(format!(
                "an ensemble has at most {MAX_MEMBERS} members; member {} is one too many",
                self.members
            )));
        }
        let k = self.k;
        for (counts, &c) in self.counts.chunks_exact_mut(k).zip(map) {
            if (c as usize) < k {
                counts[c as usize] += 1;
            }
        }
        self.members += 1;
        Ok(())
    }

    /// The frequencies of the cells `first..first + start.len()`, whose start-map classes
    /// are `start`; cells outside the study area in `start` get [`FREQUENCY_NODATA`]. A
    /// cell of the study area that a member left outside it (the CA never does) is an
    /// error.
    pub fn block(&self, first: usize, start: &[u8]) -> Result<Frequencies> {
        let (k, n) = (self.k, self.members as u32);
        if n == 0 {
            return Err(Error::Data(
                "an ensemble needs at least one member map; found none".into(),
            ));
        }
        let mut change = vec![FREQUENCY_NODATA; start.len()];
        let mut class = vec![vec![FREQUENCY_NODATA; start.len()]; k];
        let rows = self.counts[first * k..(first + start.len()) * k].chunks_exact(k);
        for (j, (counts, &s)) in rows.zip(start).enumerate() {
            if s as usize >= k {
                continue;
            }
            let total: u32 = counts.iter().map(|&c| c as u32).sum();
            if total != n {
                return Err(Error::Data(format!(
                    "cell {} is in the study area (class {s}) but only {total} of {n} \
                     ensemble members give it a class",
                    first + j
                )));
            }
            change[j] = (n - counts[s as usize] as u32) as f32 / n as f32;
            for (f, &c) in class.iter_mut().zip(counts) {
                f[j] = c as f32 / n as f32;
            }
        }
        Ok(Frequencies { change, class })
    }
}

/// Writes the frequency rasters of one (scenario, year) from `counts` and the start
/// map `start` (class indices over `grid`): `change_path`, one Float32 band (the share
/// of members in which the cell changed class), and `class_path`, one Float32 band per
/// class named after it (the share of members giving that class); outside the study
/// area [`FREQUENCY_NODATA`]. Written a strip of rows at a time, never a whole float
/// layer, each under a temporary name renamed at the end.
pub fn write_frequencies(
    change_path: &Path,
    class_path: &Path,
    grid: &crate::grid::Grid,
    counts: &FrequencyCounts,
    start: &[u8],
    class_names: &[String],
) -> Result<()> {
    use crate::raster::{StripWriter, WriteOptions, STRIP_ROWS};
    let cells = grid.cells();
    if start.len() != cells
        || class_names.len() != counts.k
        || counts.counts.len() != cells * counts.k
    {
        return Err(Error::Data(format!(
            "frequency rasters of {} cells and {} classes from a start map of {} cells and \
             counts of {} classes: expected the grid's {cells} cells",
            counts.counts.len() / counts.k.max(1),
            counts.k,
            start.len(),
            class_names.len()
        )));
    }
    let options = |names: Vec<String>| WriteOptions {
        nodata: Some(FREQUENCY_NODATA as f64),
        palette: Vec::new(),
        band_names: names,
    };
    let mut change = StripWriter::<f32>::create(
        change_path,
        grid,
        1,
        &options(vec!["share of members that changed class".into()]),
    )?;
    let mut class =
        StripWriter::<f32>::create(class_path, grid, counts.k, &options(class_names.to_vec()))?;
    let strip = (STRIP_ROWS * grid.width).max(1);
    for first in (0..cells).step_by(strip) {
        let end = (first + strip).min(cells);
        let f = counts.block(first, &start[first..end])?;
        change.write_rows(0, &f.change)?;
        for (b, band) in f.class.iter().enumerate() {
            class.write_rows(b, band)?;
        }
    }
    change.finish()?;
    class.finish()
}

/// A quantity's summary over the members.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Members summarised.
    pub members: usize,
    /// Mean (the values added in member order, divided by their number).
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator; 0 for one member).
    pub sd: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// 2.5th percentile.
    pub p2_5: f64,
    /// 97.5th percentile.
    pub p97_5: f64,
}

/// The summary of `values` (one per member, in member order); percentiles interpolate
/// linearly between order statistics (Hyndman and Fan's definition 7, numpy's and R's
/// default): the p-quantile of x(1) <= ... <= x(n) is x(j) + f (x(j+1) - x(j)) with
/// j + f = 1 + (n - 1) p.
pub fn summarize(values: &[f64]) -> Result<Summary> {
    if values.is_empty() {
        return Err(Error::Data(
            "a summary over ensemble members needs at least one value; found none".into(),
        ));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::Data(format!(
            "an ensemble member's value is {v}; expected a finite number"
        )));
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Ok(Summary {
        members: n,
        mean,
        sd,
        min: sorted[0],
        max: sorted[n - 1],
        p2_5: quantile(&sorted, 0.025),
        p97_5: quantile(&sorted, 0.975),
    })
}

/// The `p`-quantile of sorted values (definition 7).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let j = h.floor() as usize;
    let f = h - j as f64;
    match sorted.get(j + 1) {
        Some(&next) if f > 0.0 => sorted[j] + f * (next - sorted[j]),
        _ => sorted[j],
    }
}

/// One row of `carbon_ensemble.csv`: a map's carbon storage and its change against the
/// base map over the members.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CarbonRow {
    /// The map's label (`<scenario>_<year>`).
    pub map: String,
    /// Storage (t) over the members.
    pub storage: Summary,
    /// Change of storage against the base map (t) over the members.
    pub change: Summary,
}

/// The columns of `carbon_ensemble.csv`.
pub const CARBON_COLUMNS: [&str; 9] = [
    "map",
    "members",
    "mean_t",
    "sd_t",
    "p2_5_t",
    "p97_5_t",
    "mean_change_t",
    "p2_5_change_t",
    "p97_5_change_t",
];

/// Writes `carbon_ensemble.csv` (t to 3 decimals, as `carbon_storage.csv`).
pub fn write_carbon(path: &Path, rows: &[CarbonRow]) -> Result<()> {
    let header: Vec<String> = CARBON_COLUMNS.iter().map(|s| s.to_string()).collect();
    let t = |v: f64| format!("{v:.3}");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.map.clone(),
                r.storage.members.to_string(),
                t(r.storage.mean),
                t(r.storage.sd),
                t(r.storage.p2_5),
                t(r.storage.p97_5),
                t(r.change.mean),
                t(r.change.p2_5),
                t(r.change.p97_5),
            ]
        })
        .collect();
    files::write_csv(path, &header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_zero_keeps_the_study_seed_and_the_others_differ_from_it_and_each_other() {
        assert_eq!(member_seed(42, 0), 42);
        let seeds: Vec<u64> = (0..50).map(|m| member_seed(42, m)).collect();
        let mut unique = seeds.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 50);
        // a member's seed depends on the study seed
        assert_ne!(member_seed(42, 3), member_seed(43, 3));
        // and only on (seed, member): the same value computed twice
        assert_eq!(member_seed(7, 9), member_seed(7, 9));
    }

    fn counts_of(start: &[u8], members: &[&[u8]], k: usize) -> Result<FrequencyCounts> {
        let mut f = FrequencyCounts::new(k, start.len());
        for m in members {
            f.add(m)?;
        }
        Ok(f)
    }

    #[test]
    fn frequencies_count_members_per_cell_by_hand() {
        // 3 classes, 4 cells (the last outside the study area), 4 members
        let start = [0u8, 1, 2, 255];
        let m = [
            [0u8, 1, 0, 255],
            [1u8, 1, 0, 255],
            [0u8, 2, 2, 255],
            [0u8, 1, 1, 255],
        ];
        let members: Vec<&[u8]> = m.iter().map(|x| x.as_slice()).collect();
        let counts = counts_of(&start, &members, 3).unwrap();
        assert_eq!(counts.members(), 4);
        let f = counts.block(0, &start).unwrap();
        // cell 0: class 0 in 3 members, 1 in one -> changed in 1 of 4
        // cell 1: class 1 in 3, 2 in one -> changed in 1 of 4
        // cell 2: class 0 twice, 2 once, 1 once -> changed in 3 of 4
        assert_eq!(f.change, vec![0.25, 0.25, 0.75, FREQUENCY_NODATA]);
        assert_eq!(f.class[0], vec![0.75, 0.0, 0.5, FREQUENCY_NODATA]);
        assert_eq!(f.class[1], vec![0.25, 0.75, 0.25, FREQUENCY_NODATA]);
        assert_eq!(f.class[2], vec![0.0, 0.25, 0.25, FREQUENCY_NODATA]);
        // the class shares of a cell add up to one
        for i in 0..3 {
            let s: f32 = (0..3).map(|c| f.class[c][i]).sum();
            assert_eq!(s, 1.0);
        }
        // a block of cells 1..3 gives the same values as the whole map
        let b = counts.block(1, &start[1..3]).unwrap();
        assert_eq!(b.change, vec![0.25, 0.75]);
        assert_eq!(b.class[0], vec![0.0, 0.5]);
    }

    #[test]
    fn a_member_map_of_another_size_or_with_a_hole_is_an_error() {
        let start = [0u8, 1];
        let short = [0u8];
        let e = counts_of(&start, &[&short], 2).unwrap_err().to_string();
        assert!(e.contains("member 0 has 1 cells; expected 2"), "{e}");
        let hole = [0u8, 255];
        let counts = counts_of(&start, &[&start, &hole], 2).unwrap();
        let e = counts.block(0, &start).unwrap_err().to_string();
        assert!(e.contains("cell 1 is in the study area"), "{e}");
        assert!(FrequencyCounts::new(2, 2).block(0, &start).is_err());
    }

    #[test]
    fn more_members_than_the_counts_hold_is_an_error() {
        let map = [0u8];
        let mut f = FrequencyCounts::new(1, 1);
        for _ in 0..MAX_MEMBERS {
            f.add(&map).unwrap();
        }
        let e = f.add(&map).unwrap_err().to_string();
        assert!(e.contains("at most 255 members"), "{e}");
        // 255 members, all class 0: the share is exactly one
        assert_eq!(f.block(0, &map).unwrap().class[0], vec![1.0]);
    }

    #[test]
    fn summary_matches_a_hand_computation() {
        // values 10, 12, 14, 20: mean 14, deviations -4 -2 0 6, squares 16 4 0 36 = 56,
        // sd = sqrt(56 / 3); p2.5: h = 3 x 0.025 = 0.075 -> 10 + 0.075 x 2 = 10.15;
        // p97.5: h = 2.925 -> 14 + 0.925 x 6 = 19.55
        let s = summarize(&[20.0, 10.0, 14.0, 12.0]).unwrap();
        assert_eq!(s.members, 4);
        assert_eq!(s.mean, 14.0);
        assert!((s.sd - (56.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((s.p2_5 - 10.15).abs() < 1e-12, "{}", s.p2_5);
        assert!((s.p97_5 - 19.55).abs() < 1e-12, "{}", s.p97_5);
        assert_eq!((s.min, s.max), (10.0, 20.0));
    }

    #[test]
    fn summary_of_one_member_is_that_member() {
        let s = summarize(&[5.5]).unwrap();
        assert_eq!(
            (s.mean, s.sd, s.p2_5, s.p97_5, s.min, s.max),
            (5.5, 0.0, 5.5, 5.5, 5.5, 5.5)
        );
        assert!(summarize(&[]).is_err());
        assert!(summarize(&[1.0, f64::NAN]).is_err());
    }

    #[test]
    fn carbon_csv_has_the_issue_columns_and_the_summaries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("carbon_ensemble.csv");
        let storage = summarize(&[100.0, 102.0]).unwrap();
        let change = summarize(&[-4.0, -2.0]).unwrap();
        write_carbon(
            &p,
            &[CarbonRow {
                map: "eco_2030".into(),
                storage,
                change,
            }],
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "map,members,mean_t,sd_t,p2_5_t,p97_5_t,mean_change_t,p2_5_change_t,p97_5_change_t"
        );
        // two members: sd = sqrt(2), p2.5 = 100 + 0.025 x 2, p97.5 = 100 + 0.975 x 2
        assert_eq!(
            lines.next().unwrap(),
            "eco_2030,2,101.000,1.414,100.050,101.950,-3.000,-3.950,-2.050"
        );
    }

    #[test]
    fn frequency_rasters_hold_the_hand_counted_shares_per_band() {
        let d = tempfile::tempdir().unwrap();
        let grid = crate::grid::Grid {
            width: 2,
            height: 2,
            geotransform: [500_000.0, 30.0, 0.0, 1_200_000.0, 0.0, -30.0],
            crs_wkt: String::new(),
        };
        let start = [0u8, 1, 2, 255];
        let m = [[0u8, 1, 0, 255], [1u8, 1, 0, 255]];
        let members: Vec<&[u8]> = m.iter().map(|x| x.as_slice()).collect();
        let counts = counts_of(&start, &members, 3).unwrap();
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (cp, kp) = (d.path().join("change.tif"), d.path().join("class.tif"));
        write_frequencies(&cp, &kp, &grid, &counts, &start, &names).unwrap();
        let (_, change): (_, Vec<f32>) = crate::raster::read_band(&cp, 1).unwrap();
        // cell 0 changed in 1 of 2, cell 1 in none, cell 2 in both
        assert_eq!(change, vec![0.5, 0.0, 1.0, FREQUENCY_NODATA]);
        let (_, b): (_, Vec<f32>) = crate::raster::read_band(&kp, 1).unwrap();
        assert_eq!(b, vec![0.5, 0.0, 1.0, FREQUENCY_NODATA]);
        let (_, b): (_, Vec<f32>) = crate::raster::read_band(&kp, 2).unwrap();
        assert_eq!(b, vec![0.5, 1.0, 0.0, FREQUENCY_NODATA]);
        let (_, b): (_, Vec<f32>) = crate::raster::read_band(&kp, 3).unwrap();
        assert_eq!(b, vec![0.0, 0.0, 0.0, FREQUENCY_NODATA]);
        assert_eq!(crate::raster::info(&kp).unwrap().nodata, Some(-1.0));
    }
}
