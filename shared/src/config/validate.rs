//! [`StudyConfig::validate`]: the checks that the types alone do not make, one function
//! a config section. `validate` calls them in a fixed order, so that the first error
//! found for any config is always the same one.

use std::collections::BTreeSet;
use std::path::Path;

use super::{
    parse_color, Multiplier, NodataSetting, PoolsConfig, ScenarioConfig, StudyConfig,
    SuitabilityModel, MAX_CARBON_POOL, MAX_EPOCHS, MAX_GRID_TOLERANCE, MAX_GWR_PERMUTATIONS,
    MAX_GWR_POINTS, MAX_HIDDEN, MAX_ITERATIONS, MAX_NEIGHBOURHOOD, MAX_STAGES, MAX_TREES,
};
use crate::error::{Error, Result};

/// The config error of `file` at `key`.
fn config_error(file: &Path, key: String, message: String) -> Error {
    Error::Config {
        file: file.to_path_buf(),
        key,
        message,
    }
}

impl StudyConfig {
    /// Checks everything that the types alone do not; `file` is named in errors.
    pub fn validate(&self, file: &Path) -> Result<()> {
        self.validate_class_count(file)?;
        self.validate_grid_tolerance(file)?;
        let names = self.validate_classes(file)?;
        let years = self.validate_landuse_years(file)?;
        self.validate_markov(file, &years)?;
        self.validate_layers(file)?;
        self.validate_ca(file)?;
        self.validate_ann(file)?;
        self.validate_patches(file)?;
        self.validate_random_forest(file)?;
        self.validate_gwr(file)?;
        self.validate_validation(file, &names)?;
        self.validate_scenarios(file, &names)
    }

    /// `classes`: at least 2 classes (land-use change needs two) and at most 254.
    fn validate_class_count(&self, file: &Path) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        let k = self.classes.len();
        if k < 2 {
            return Err(err(
                "classes".into(),
                format!("{k} class(es) given; at least 2 are needed for land-use change"),
            ));
        }
        if k > 254 {
            return Err(err(
                "classes".into(),
                format!("{k} classes; at most 254 are supported"),
            ));
        }
        Ok(())
    }

    /// `study.grid_tolerance`: a finite number of cells in [0, `MAX_GRID_TOLERANCE`).
    fn validate_grid_tolerance(&self, file: &Path) -> Result<()> {
        let tol = self.study.grid_tolerance;
        if !(tol.is_finite() && (0.0..MAX_GRID_TOLERANCE).contains(&tol)) {
            return Err(config_error(
                file,
                "study.grid_tolerance".into(),
                format!(
                    "{tol}: expected a number of cells in [0, {MAX_GRID_TOLERANCE}) \
                     (layers off by more are not on the same grid: set `align = true`)"
                ),
            ));
        }
        Ok(())
    }

    /// `[[classes]]`, class by class: unique codes, unique non-empty names, a `#rrggbb`
    /// colour, a weight in [0, 1] and valid carbon pools. Returns the set of class names.
    fn validate_classes(&self, file: &Path) -> Result<BTreeSet<String>> {
        let err = |key, message| config_error(file, key, message);
        let mut codes = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (i, c) in self.classes.iter().enumerate() {
            let key = |f: &str| format!("classes[{i}].{f}");
            if !codes.insert(c.code) {
                return Err(err(
                    key("code"),
                    format!("code {} is used by two classes", c.code),
                ));
            }
            if c.name.trim().is_empty() {
                return Err(err(key("name"), "empty name".into()));
            }
            if !names.insert(c.name.clone()) {
                return Err(err(
                    key("name"),
                    format!("name {:?} is used by two classes", c.name),
                ));
            }
            if parse_color(&c.color).is_none() {
                return Err(err(
                    key("color"),
                    format!("{:?} is not a colour, expected #rrggbb", c.color),
                ));
            }
            if !(c.weight.is_finite() && (0.0..=1.0).contains(&c.weight)) {
                return Err(err(
                    key("weight"),
                    format!("{} is outside [0, 1]", c.weight),
                ));
            }
            if let Some(p) = &c.carbon {
                validate_carbon_pools(file, i, p)?;
            }
        }
        Ok(names)
    }

    /// `[[landuse]]`: no year given twice. Returns the set of the maps' years.
    fn validate_landuse_years(&self, file: &Path) -> Result<BTreeSet<i32>> {
        let mut years = BTreeSet::new();
        for (i, m) in self.landuse.iter().enumerate() {
            if !years.insert(m.year) {
                return Err(config_error(
                    file,
                    format!("landuse[{i}].year"),
                    format!("year {} is given twice", m.year),
                ));
            }
        }
        Ok(years)
    }

    /// `[markov]`: `from` and `to` are years of maps (`years`), `to` after `from`, and
    /// the target years increase from `to`, each in whole steps of `to - from` years
    /// unless `interpolate` is set.
    fn validate_markov(&self, file: &Path, years: &BTreeSet<i32>) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        let mk = &self.markov;
        for (key, y) in [("markov.from", mk.from), ("markov.to", mk.to)] {
            if !years.contains(&y) {
                return Err(err(
                    key.into(),
                    format!("no [[landuse]] map for year {y} (maps: {:?})", years),
                ));
            }
        }
        if mk.to <= mk.from {
            return Err(err(
                "markov.to".into(),
                format!("{} is not after markov.from = {}", mk.to, mk.from),
            ));
        }
        let step = mk.to - mk.from;
        let mut previous = mk.to;
        for (key, y) in self.target_years_keyed(file)? {
            if y <= previous {
                let what = if previous == mk.to {
                    format!("the base year markov.to = {}", mk.to)
                } else {
                    format!("the previous year {previous} (the years must increase)")
                };
                return Err(err(key, format!("{y} is not after {what}")));
            }
            if (y - mk.to) % step != 0 && !mk.interpolate {
                return Err(err(
                    key,
                    format!(
                        "{y} is not reachable in whole steps of {step} years from {} ({} + m * {step}); \
                         choose such a year or set `interpolate = true`",
                        mk.to, mk.to
                    ),
                ));
            }
            previous = y;
        }
        Ok(())
    }

    /// The target years with their keys: exactly one of `markov.target_year` and
    /// `markov.target_years` (1 to `MAX_STAGES` years) must be given.
    fn target_years_keyed(&self, file: &Path) -> Result<Vec<(String, i32)>> {
        let err = |key, message| config_error(file, key, message);
        let mk = &self.markov;
        Ok(match (mk.target_year, &mk.target_years) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "markov.target_years".into(),
                    "both markov.target_year and markov.target_years are given; \
                     keep one (target_year for one year, target_years for staged years)"
                        .into(),
                ))
            }
            (None, None) => {
                return Err(err(
                    "markov.target_year".into(),
                    "missing: give markov.target_year (one year) or markov.target_years \
                     (staged years, e.g. [2030, 2040])"
                        .into(),
                ))
            }
            (Some(y), None) => vec![("markov.target_year".to_string(), y)],
            (None, Some(v)) => {
                if v.is_empty() || v.len() > MAX_STAGES {
                    return Err(err(
                        "markov.target_years".into(),
                        format!(
                            "{} years; expected 1 to {MAX_STAGES} (each stage has its own \
                             random stream)",
                            v.len()
                        ),
                    ));
                }
                v.iter()
                    .enumerate()
                    .map(|(i, &y)| (format!("markov.target_years[{i}]"), y))
                    .collect()
            }
        })
    }

    /// `[[drivers]]` and `[[restrictions]]`: unique driver names, bands counted from 1
    /// and a `nodata` keyword of "none" or "declared".
    fn validate_layers(&self, file: &Path) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        let mut dnames = BTreeSet::new();
        for (group, layers) in [
            ("drivers", &self.drivers),
            ("restrictions", &self.restrictions),
        ] {
            for (i, l) in layers.iter().enumerate() {
                if group == "drivers" && !dnames.insert(l.name.clone()) {
                    return Err(err(
                        format!("{group}[{i}].name"),
                        format!("driver {:?} is given twice", l.name),
                    ));
                }
                if l.band == 0 {
                    return Err(err(
                        format!("{group}[{i}].band"),
                        "bands count from 1".into(),
                    ));
                }
                if let Some(NodataSetting::Keyword(w)) = &l.nodata {
                    if w != "none" && w != "declared" {
                        return Err(err(
                            format!("{group}[{i}].nodata"),
                            format!("{w:?}: expected a number, \"none\" or \"declared\""),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `[ca]`: an odd neighbourhood from 3 to `MAX_NEIGHBOURHOOD`, 1 to `MAX_ITERATIONS`
    /// iterations, an acceleration in (0, 1) and at least one stall iteration.
    fn validate_ca(&self, file: &Path) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        let ca = &self.ca;
        if ca.neighbourhood < 3 || ca.neighbourhood.is_multiple_of(2) {
            return Err(err(
                "ca.neighbourhood".into(),
                format!("{}: expected an odd number >= 3", ca.neighbourhood),
            ));
        }
        if ca.neighbourhood > MAX_NEIGHBOURHOOD {
            return Err(err(
                "ca.neighbourhood".into(),
                format!(
                    "{}: expected an odd number from 3 to {MAX_NEIGHBOURHOOD}",
                    ca.neighbourhood
                ),
            ));
        }
        if !(1..=MAX_ITERATIONS).contains(&ca.max_iterations) {
            return Err(err(
                "ca.max_iterations".into(),
                format!("{}: expected 1 to {MAX_ITERATIONS}", ca.max_iterations),
            ));
        }
        if !(ca.accelerate > 0.0 && ca.accelerate < 1.0) {
            return Err(err(
                "ca.accelerate".into(),
                format!("{}: expected a value in (0, 1)", ca.accelerate),
            ));
        }
        if ca.stall_iterations == 0 {
            return Err(err(
                "ca.stall_iterations".into(),
                "0: expected at least 1".into(),
            ));
        }
        Ok(())
    }

    /// `[ann]`: the sample share, holdout, batch size, epochs, hidden units, learning
    /// rate and momentum within their ranges.
    fn validate_ann(&self, file: &Path) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        let ann = &self.ann;
        if !(ann.sample_per_mille > 0.0 && ann.sample_per_mille <= 1000.0) {
            return Err(err(
                "ann.sample_per_mille".into(),
                format!("{}: expected a value in (0, 1000]", ann.sample_per_mille),
            ));
        }
        if !(0.0..0.9).contains(&ann.holdout) {
            return Err(err(
                "ann.holdout".into(),
                format!("{}: expected a share in [0, 0.9)", ann.holdout),
            ));
        }
        if ann.batch_size == 0 {
            return Err(err(
                "ann.batch_size".into(),
                "0: expected at least 1".into(),
            ));
        }
        if !(1..=MAX_EPOCHS).contains(&ann.epochs) {
            return Err(err(
                "ann.epochs".into(),
                format!("{}: expected 1 to {MAX_EPOCHS}", ann.epochs),
            ));
        }
        if let Some(h) = ann.hidden {
            if !(1..=MAX_HIDDEN).contains(&h) {
                return Err(err(
                    "ann.hidden".into(),
                    format!("{h}: expected 1 to {MAX_HIDDEN} hidden units"),
                ));
            }
        }
        if !(ann.learning_rate > 0.0 && ann.learning_rate.is_finite()) {
            return Err(err(
                "ann.learning_rate".into(),
                format!("{}: expected a positive number", ann.learning_rate),
            ));
        }
        if !(0.0..1.0).contains(&ann.momentum) {
            return Err(err(
                "ann.momentum".into(),
                format!("{}: expected a value in [0, 1)", ann.momentum),
            ));
        }
        Ok(())
    }

    /// `[ca.patches]`, when given: the patch generator's own checks, their
    /// `key = message` errors keyed under `ca.`.
    fn validate_patches(&self, file: &Path) -> Result<()> {
        if let Some(p) = &self.ca.patches {
            p.patches().validate().map_err(|m| {
                let (key, msg) = m.split_once(" = ").unwrap_or(("patches", &m));
                config_error(file, format!("ca.{key}"), msg.to_string())
            })?;
        }
        Ok(())
    }

    /// `[random_forest]`: the number of trees and sample rate within bounds and, when
    /// `suitability.model` is the forest, 1 to `forest::MAX_FEATURES` drivers, an `mtry`
    /// up to their number and no `[ann] suitability` raster beside it.
    fn validate_random_forest(&self, file: &Path) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        let rf = &self.random_forest;
        if !(1..=MAX_TREES).contains(&rf.n_trees) {
            return Err(err(
                "random_forest.n_trees".into(),
                format!("{}: expected 1 to {MAX_TREES}", rf.n_trees),
            ));
        }
        if !(rf.sample_rate > 0.0 && rf.sample_rate <= 1.0) {
            return Err(err(
                "random_forest.sample_rate".into(),
                format!("{}: expected a share in (0, 1]", rf.sample_rate),
            ));
        }
        if self.suitability.model != SuitabilityModel::RandomForest {
            return Ok(());
        }
        let d = self.drivers.len();
        if d == 0 {
            return Err(err(
                "suitability.model".into(),
                "\"random_forest\" with no [[drivers]]: the forest needs at least one driver"
                    .into(),
            ));
        }
        let most = d.min(crate::forest::MAX_FEATURES);
        if d > crate::forest::MAX_FEATURES {
            return Err(err(
                "drivers".into(),
                format!(
                    "{d} drivers; the random forest takes at most {}",
                    crate::forest::MAX_FEATURES
                ),
            ));
        }
        if let Some(m) = rf.mtry {
            if !(1..=most).contains(&m) {
                return Err(err(
                    "random_forest.mtry".into(),
                    format!("{m}: expected 1 to {most} (the number of drivers)"),
                ));
            }
        }
        if self.ann.suitability.is_some() {
            return Err(err(
                "suitability.model".into(),
                "\"random_forest\" together with [ann] suitability (a raster used instead of \
                 a model); expected one of them"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `[gwr]`: a sample size and permutation count within bounds and a bandwidth that
    /// can weigh at least the points a local fit needs.
    fn validate_gwr(&self, file: &Path) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        let g = &self.gwr;
        if !(10..=MAX_GWR_POINTS).contains(&g.sample_points) {
            return Err(err(
                "gwr.sample_points".into(),
                format!("{}: expected 10 to {MAX_GWR_POINTS}", g.sample_points),
            ));
        }
        if g.permutations > MAX_GWR_PERMUTATIONS {
            return Err(err(
                "gwr.permutations".into(),
                format!(
                    "{}: expected 0 (no significance test) to {MAX_GWR_PERMUTATIONS}",
                    g.permutations
                ),
            ));
        }
        let Some(b) = g.bandwidth else { return Ok(()) };
        if g.fixed {
            if !(b.is_finite() && b > 0.0) {
                return Err(err(
                    "gwr.bandwidth".into(),
                    format!("{b}: expected a distance > 0 in map units (fixed = true)"),
                ));
            }
            return Ok(());
        }
        // a local fit estimates an intercept and one coefficient per driver
        let need = self.drivers.len() + 2;
        if !(b.fract() == 0.0 && b >= need as f64 && b <= g.sample_points as f64) {
            return Err(err(
                "gwr.bandwidth".into(),
                format!(
                    "{b}: expected a whole number of neighbours from {need} (drivers + 2) \
                     to sample_points = {}",
                    g.sample_points
                ),
            ));
        }
        Ok(())
    }

    /// `[validation]`: an `absorb` class, when given, is one of the class `names`.
    fn validate_validation(&self, file: &Path, names: &BTreeSet<String>) -> Result<()> {
        if let Some(a) = &self.validation.absorb {
            if !names.contains(a) {
                return Err(config_error(
                    file,
                    "validation.absorb".into(),
                    format!("{a:?} is not a class name"),
                ));
            }
        }
        Ok(())
    }

    /// `[[scenarios]]`: at least one, with unique names of letters, digits, '-' or '_',
    /// each with a valid matrix, multipliers, explicit demand and `absorb` class (the
    /// class names checked against `names`).
    fn validate_scenarios(&self, file: &Path, names: &BTreeSet<String>) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        if self.scenarios.is_empty() {
            return Err(err(
                "scenarios".into(),
                "no scenario given; expected at least one [[scenarios]]".into(),
            ));
        }
        let mut snames = BTreeSet::new();
        for (s, sc) in self.scenarios.iter().enumerate() {
            let key = |f: &str| format!("scenarios[{s}].{f}");
            if sc.name.is_empty()
                || !sc
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(err(
                    key("name"),
                    format!("{:?}: expected letters, digits, '-' or '_'", sc.name),
                ));
            }
            if !snames.insert(sc.name.clone()) {
                return Err(err(
                    key("name"),
                    format!("scenario {:?} is given twice", sc.name),
                ));
            }
            validate_scenario_matrix(file, s, &sc.matrix, self.classes.len())?;
            validate_multipliers(file, s, &sc.multipliers, names)?;
            self.validate_scenario_demand(file, s, sc, names)?;
            if let Some(a) = &sc.absorb {
                if !names.contains(a) {
                    return Err(err(key("absorb"), format!("{a:?} is not a class name")));
                }
            }
        }
        Ok(())
    }

    /// The explicit `demand` of scenario `s`, when given: class names of `names`, no negative
    /// demand, every class given, no multipliers beside it and no staged target years.
    fn validate_scenario_demand(
        &self,
        file: &Path,
        s: usize,
        sc: &ScenarioConfig,
        names: &BTreeSet<String>,
    ) -> Result<()> {
        let err = |key, message| config_error(file, key, message);
        let key = |f: &str| format!("scenarios[{s}].{f}");
        let Some(d) = &sc.demand else { return Ok(()) };
        for (n, v) in d {
            if !names.contains(n) {
                return Err(err(
                    format!("scenarios[{s}].demand.{n}"),
                    format!("{n:?} is not a class name"),
                ));
            }
            if *v < 0 {
                return Err(err(
                    format!("scenarios[{s}].demand.{n}"),
                    format!("{v} cells: demand cannot be negative"),
                ));
            }
        }
        for c in &self.classes {
            if !d.contains_key(&c.name) {
                return Err(err(
                    key("demand"),
                    format!("no demand for class {:?}; give every class", c.name),
                ));
            }
        }
        if !sc.multipliers.is_empty() {
            return Err(err(
                key("multipliers"),
                "give either an explicit demand or Markov multipliers, not both".into(),
            ));
        }
        if self.markov.staged() {
            return Err(err(
                key("demand"),
                format!(
                    "an explicit demand is of one year, but markov.target_years gives \
                     {} staged years; use the Markov demand (drop `demand`) or one \
                     markov.target_year",
                    self.markov.years().len()
                ),
            ));
        }
        Ok(())
    }
}

/// The carbon pools of class `i`: finite, not negative and at most `MAX_CARBON_POOL`.
fn validate_carbon_pools(file: &Path, i: usize, p: &PoolsConfig) -> Result<()> {
    for (f, v) in [
        ("above", p.above),
        ("below", p.below),
        ("soil", p.soil),
        ("dead", p.dead),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(config_error(
                file,
                format!("classes[{i}].carbon.{f}"),
                format!("{v} t/ha; carbon pools must be finite and not negative"),
            ));
        }
        if v > MAX_CARBON_POOL {
            return Err(config_error(
                file,
                format!("classes[{i}].carbon.{f}"),
                format!("{v:e} t/ha: expected at most {MAX_CARBON_POOL} t/ha"),
            ));
        }
    }
    Ok(())
}

/// The transition matrix of scenario `s`: `k` rows of `k` values in [0, 1].
fn validate_scenario_matrix(file: &Path, s: usize, matrix: &[Vec<f64>], k: usize) -> Result<()> {
    let err = |key, message| config_error(file, key, message);
    if matrix.len() != k {
        return Err(err(
            format!("scenarios[{s}].matrix"),
            format!(
                "{} rows, expected {k} (one per class, rows = from, columns = to)",
                matrix.len()
            ),
        ));
    }
    for (r, row) in matrix.iter().enumerate() {
        if row.len() != k {
            return Err(err(
                format!("scenarios[{s}].matrix[{r}]"),
                format!("{} columns, expected {k} (a {k} x {k} matrix)", row.len()),
            ));
        }
        for (c, v) in row.iter().enumerate() {
            if !(v.is_finite() && (0.0..=1.0).contains(v)) {
                return Err(err(
                    format!("scenarios[{s}].matrix[{r}][{c}]"),
                    format!("{v} is outside [0, 1]"),
                ));
            }
        }
    }
    Ok(())
}

/// The Markov multipliers of scenario `s`: class names of `names`, each from -> to pair
/// once, and factors finite and not negative.
fn validate_multipliers(
    file: &Path,
    s: usize,
    multipliers: &[Multiplier],
    names: &BTreeSet<String>,
) -> Result<()> {
    let err = |key, message| config_error(file, key, message);
    for (m, mu) in multipliers.iter().enumerate() {
        for (f, n) in [("from", &mu.from), ("to", &mu.to)] {
            if !names.contains(n) {
                return Err(err(
                    format!("scenarios[{s}].multipliers[{m}].{f}"),
                    format!("{n:?} is not a class name"),
                ));
            }
        }
        if let Some(j) = multipliers[..m]
            .iter()
            .position(|o| o.from == mu.from && o.to == mu.to)
        {
            return Err(err(
                format!("scenarios[{s}].multipliers[{m}]"),
                format!(
                    "{:?} -> {:?} is given twice (also multipliers[{j}]); \
                     expected one factor per pair",
                    mu.from, mu.to
                ),
            ));
        }
        if !(mu.factor.is_finite() && mu.factor >= 0.0) {
            return Err(err(
                format!("scenarios[{s}].multipliers[{m}].factor"),
                format!("{}: expected a number >= 0", mu.factor),
            ));
        }
    }
    Ok(())
}
