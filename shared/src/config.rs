//! The study config: a strict TOML file (unknown keys are errors) describing classes,
//! land-use maps, drivers, restrictions, zones, Markov demand, scenarios and the
//! parameters of the ANN, the CA and GWR. Every error names the file, the key and what
//! was expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A whole study, as read from `study.toml`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// General settings.
    pub study: StudySection,
    /// Land-use classes, in the order that defines the class indices 0..K-1 (missing:
    /// none, which validation refuses with a clear message).
    #[serde(default)]
    pub classes: Vec<ClassConfig>,
    /// Land-use maps by year (at least the two Markov years).
    pub landuse: Vec<LanduseMap>,
    /// Driver rasters for the ANN suitability (and GWR).
    #[serde(default)]
    pub drivers: Vec<LayerConfig>,
    /// Restriction layers: cells where a layer is 0 never change.
    #[serde(default)]
    pub restrictions: Vec<LayerConfig>,
    /// Zones (cities, counties) for carbon totals per zone.
    #[serde(default)]
    pub zones: Option<ZonesConfig>,
    /// Markov demand settings.
    pub markov: MarkovConfig,
    /// Cellular automaton parameters.
    #[serde(default)]
    pub ca: CaConfig,
    /// Which model gives the suitability.
    #[serde(default)]
    pub suitability: SuitabilityConfig,
    /// ANN suitability parameters.
    #[serde(default)]
    pub ann: AnnConfig,
    /// Random-forest (PLUS LEAS) parameters.
    #[serde(default)]
    pub random_forest: RandomForestConfig,
    /// GWR driver analysis parameters.
    #[serde(default)]
    pub gwr: GwrConfig,
    /// Validation run settings.
    #[serde(default)]
    pub validation: ValidationConfig,
    /// Scenarios to simulate to the target year.
    pub scenarios: Vec<ScenarioConfig>,
}

/// `[validation]`: the CA run on the past period (t0 -> t1).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    /// The class that gives up cells when the t1 map asks restricted cells to change.
    #[serde(default)]
    pub absorb: Option<String>,
}

/// `[study]`: name, seed, output folder, grid alignment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StudySection {
    /// Study name (shown in reports).
    pub name: String,
    /// Free text shown in the report.
    #[serde(default)]
    pub description: Option<String>,
    /// Seed of every random number of the run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Output folder, relative to the config file (default `out/<file stem>`).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// Warp layers that are not on the land-use grid onto it (nearest for classes,
    /// bilinear for continuous drivers) instead of failing.
    #[serde(default)]
    pub align: bool,
    /// Largest placement difference between grids accepted as "the same grid", in cells.
    #[serde(default = "default_grid_tolerance")]
    pub grid_tolerance: f64,
    /// Format of the rasters a run writes (land use, suitability, carbon).
    #[serde(default)]
    pub output_format: OutputFormat,
}

/// `[study] output_format`: how a run's rasters are written.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Tiled, DEFLATE-compressed GeoTIFF (default).
    #[default]
    Gtiff,
    /// Cloud-optimized GeoTIFF (GDAL's COG driver: tiles, overviews, header first), to
    /// be served and viewed straight from object storage.
    Cog,
}

/// Largest `[study] grid_tolerance` (cells): half a cell or more would take a layer
/// shifted by whole cells for aligned.
pub const MAX_GRID_TOLERANCE: f64 = 0.5;
/// Largest carbon pool accepted, t/ha: far above any measured density (peat soils hold
/// a few thousand t/ha), small enough that sums over any grid stay finite.
pub const MAX_CARBON_POOL: f64 = 100_000.0;
/// Largest `[ann] hidden`: more units than this only slows training (the default is
/// floor(sqrt(drivers)) + 10).
pub const MAX_HIDDEN: usize = 1_000;
/// Largest `[ann] epochs`.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest `[ca] neighbourhood` (cells per side).
pub const MAX_NEIGHBOURHOOD: usize = 51;
/// Largest `[ca] max_iterations`.
pub const MAX_ITERATIONS: u32 = 100_000;
/// Largest `[gwr] sample_points`: the size docs/gwr.md measures (minutes on 2 cores);
/// larger samples take hours per fit.
pub const MAX_GWR_POINTS: usize = 100_000;
/// Largest `[gwr] permutations` (each is one GWR fit per class and factor).
pub const MAX_GWR_PERMUTATIONS: usize = 9_999;

fn default_seed() -> u64 {
    1
}
fn default_grid_tolerance() -> f64 {
    0.01
}

/// Carbon pools of a class, t/ha (InVEST's c_above, c_below, c_soil, c_dead).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolsConfig {
    /// Above-ground biomass carbon, t/ha.
    pub above: f64,
    /// Below-ground biomass carbon, t/ha.
    pub below: f64,
    /// Soil organic carbon, t/ha.
    pub soil: f64,
    /// Dead organic matter carbon, t/ha.
    pub dead: f64,
}

impl PoolsConfig {
    /// Total density, t/ha.
    pub fn total(&self) -> f64 {
        self.above + self.below + self.soil + self.dead
    }
}

/// `[[classes]]`: one land-use class.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClassConfig {
    /// Code of the class in the input maps (any integer).
    pub code: i64,
    /// Name (unique; used as key in scenarios and outputs).
    pub name: String,
    /// Display colour, `#rrggbb`.
    pub color: String,
    /// Neighbourhood weight w_k in [0, 1].
    pub weight: f64,
    /// Counts as ecological space (paper Table 7).
    #[serde(default)]
    pub ecological: bool,
    /// Carbon pools, t/ha.
    #[serde(default)]
    pub carbon: Option<PoolsConfig>,
}

impl ClassConfig {
    /// The colour as RGB (validated by [`StudyConfig::validate`]).
    pub fn rgb(&self) -> [u8; 3] {
        parse_color(&self.color).unwrap_or([128, 128, 128])
    }
}

/// `[[landuse]]`: a land-use map of one year.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LanduseMap {
    /// Year of the map.
    pub year: i32,
    /// Raster file (relative to the config file).
    pub path: PathBuf,
}

/// How a layer's nodata is taken.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum NodataSetting {
    /// Use this value as nodata instead of the declared one.
    Value(f64),
    /// `"none"`: ignore the declared nodata (every cell has data), `"declared"`: default.
    Keyword(String),
}

/// A raster layer: driver or restriction.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// Name (unique among drivers; used in outputs and GWR tables).
    pub name: String,
    /// Raster file (relative to the config file).
    pub path: PathBuf,
    /// Band (1-based).
    #[serde(default = "default_band")]
    pub band: usize,
    /// Nodata override: a number, or "none" to ignore the declared nodata.
    #[serde(default)]
    pub nodata: Option<NodataSetting>,
}

fn default_band() -> usize {
    1
}

/// `[zones]`: zones for per-zone carbon totals.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZonesConfig {
    /// Zone raster (integer codes) or polygon file (rasterised onto the grid).
    pub path: PathBuf,
    /// For polygons: the attribute holding the zone name.
    #[serde(default)]
    pub field: Option<String>,
}

/// `[markov]`: which maps give the transition matrix, and the target year.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MarkovConfig {
    /// Start year of the transition period (t0).
    pub from: i32,
    /// End year of the transition period (t1), also the base year of the scenarios.
    pub to: i32,
    /// Year to simulate (one stage from the base year). Exactly one of `target_year` and
    /// `target_years` is given; read both through [`MarkovConfig::years`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_year: Option<i32>,
    /// Staged years, increasing (e.g. `[2030, 2040, 2050, 2060]`): each stage starts from
    /// the previous stage's simulated map, with the demand of the Markov shares at its
    /// year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_years: Option<Vec<i32>>,
    /// Allow a target year that is not t1 + m (t1 - t0) (shares interpolated linearly
    /// between whole steps).
    #[serde(default)]
    pub interpolate: bool,
}

/// Most staged years a study may have: a stage's CA stream adds `stage << 16` and must
/// stay below the patch seeds' offset 2^23 (`rng::stream`).
pub const MAX_STAGES: usize = 127;

impl MarkovConfig {
    /// The years to simulate, in order: `target_years`, or `[target_year]` (empty only
    /// in a config that [`StudyConfig::validate`] refuses).
    pub fn years(&self) -> Vec<i32> {
        match (&self.target_years, self.target_year) {
            (Some(v), _) => v.clone(),
            (None, Some(y)) => vec![y],
            (None, None) => Vec::new(),
        }
    }

    /// The last year simulated (the base year `to` in a config that
    /// [`StudyConfig::validate`] refuses).
    pub fn final_year(&self) -> i32 {
        self.years().last().copied().unwrap_or(self.to)
    }

    /// Whether the study runs several stages (`target_years` with more than one year).
    pub fn staged(&self) -> bool {
        self.years().len() > 1
    }
}

/// `[ca]`: cellular automaton parameters (docs/design.md §4).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// Neighbourhood size N (odd, N x N window).
    #[serde(default = "default_neighbourhood")]
    pub neighbourhood: usize,
    /// Largest number of iterations.
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u32,
    /// Degree of acceleration of the self-adaptive inertia.
    #[serde(default = "default_accelerate")]
    pub accelerate: f64,
    /// Stop when sum |gap| has not decreased for this many iterations.
    #[serde(default = "default_stall")]
    pub stall_iterations: u32,
    /// A demand that the conversion matrix and restrictions cannot meet: refused before
    /// the run (`"error"`, default) or run anyway to `max_iterations` or the stall rule,
    /// reporting the gap per class (`"best_effort"`).
    #[serde(default)]
    pub unmet: Unmet,
    /// PLUS's random patch seeds (CARS): `patches = { threshold = ..., decay = ...,
    /// seeds = ... }`, `patches = {}` for PLUS's defaults; absent: FLUS's CA
    /// (docs/design.md §4a).
    #[serde(default)]
    pub patches: Option<PatchesConfig>,
    /// What the CA allocates: net class totals (`"net"`, default) or the cells of every
    /// (from, to) conversion (`"transitions"`, docs/design.md §5).
    #[serde(default)]
    pub allocation: Allocation,
}

/// `[ca] allocation`: what the CA's quantities fix.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// The cells of every class at the end (today's FLUS behaviour, default).
    #[default]
    Net,
    /// The cells of every (from, to) conversion: projected Markov transition counts
    /// for scenarios, the observed counts for the validation.
    Transitions,
}

/// `[ca] patches`: PLUS's patch generation threshold, expansion coefficient and
/// percentage of seeds (docs/design.md §4a).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PatchesConfig {
    /// PLUS's patch generation threshold: delta, the factor of the seeds' decreasing
    /// threshold delta^l (the higher, the more conservative).
    #[serde(default = "default_patch_threshold")]
    pub threshold: f64,
    /// PLUS's expansion coefficient: mu, the scale of a seed's stand-in neighbourhood
    /// term r * mu (the higher, the more new patches).
    #[serde(default = "default_patch_decay")]
    pub decay: f64,
    /// Share of the cells that are random seeds in an iteration (PLUS's percentage of
    /// seeds, as a share).
    #[serde(default = "default_patch_seeds")]
    pub seeds: f64,
}

fn default_patch_threshold() -> f64 {
    crate::ca::Patches::PLUS_DEFAULTS.threshold
}
fn default_patch_decay() -> f64 {
    crate::ca::Patches::PLUS_DEFAULTS.decay
}
fn default_patch_seeds() -> f64 {
    crate::ca::Patches::PLUS_DEFAULTS.seeds
}

impl PatchesConfig {
    /// The CA's patch parameters.
    pub fn patches(&self) -> crate::ca::Patches {
        crate::ca::Patches {
            threshold: self.threshold,
            decay: self.decay,
            seeds: self.seeds,
        }
    }
}

/// `[ca] unmet`: what to do with a demand that cannot be met.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Unmet {
    /// Refuse the run, naming the classes (default).
    #[default]
    Error,
    /// Run, write the outputs and report demand, cells reached and gap per class.
    BestEffort,
}

fn default_neighbourhood() -> usize {
    3
}
fn default_max_iterations() -> u32 {
    300
}
fn default_accelerate() -> f64 {
    0.1
}
fn default_stall() -> u32 {
    10
}

impl Default for CaConfig {
    fn default() -> Self {
        Self {
            neighbourhood: default_neighbourhood(),
            max_iterations: default_max_iterations(),
            accelerate: default_accelerate(),
            stall_iterations: default_stall(),
            unmet: Unmet::default(),
            patches: None,
            allocation: Allocation::default(),
        }
    }
}

/// Training sample mode of the ANN.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SamplingMode {
    /// The same number of cells per class.
    #[default]
    Uniform,
    /// Random cells: classes by their shares.
    Proportional,
}

/// The model of `[suitability] model`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SuitabilityModel {
    /// FLUS's ANN (`[ann]`).
    #[default]
    Ann,
    /// PLUS's LEAS random forest per class (`[random_forest]`).
    RandomForest,
}

/// `[suitability]`: which model gives the suitability (docs/design.md §3a).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SuitabilityConfig {
    /// `"ann"` (default) or `"random_forest"`.
    #[serde(default)]
    pub model: SuitabilityModel,
}

/// Largest `[random_forest] n_trees`.
pub const MAX_TREES: usize = 10_000;

/// `[random_forest]`: PLUS's LEAS parameters (docs/design.md §3a).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RandomForestConfig {
    /// Number of trees per class (PLUS: "number of regression trees", default 20).
    #[serde(default = "default_n_trees")]
    pub n_trees: usize,
    /// Drivers tried at each split (PLUS: "mTry"); default: every driver.
    #[serde(default)]
    pub mtry: Option<usize>,
    /// Share of the candidate cells sampled per class (PLUS: "sampling rate", default 0.01).
    #[serde(default = "default_sample_rate")]
    pub sample_rate: f64,
}

fn default_n_trees() -> usize {
    20
}
fn default_sample_rate() -> f64 {
    0.01
}

impl Default for RandomForestConfig {
    fn default() -> Self {
        Self {
            n_trees: default_n_trees(),
            mtry: None,
            sample_rate: default_sample_rate(),
        }
    }
}

/// `[ann]`: ANN suitability parameters (docs/design.md §3).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnnConfig {
    /// Hidden units (default floor(sqrt(drivers)) + 10).
    #[serde(default)]
    pub hidden: Option<usize>,
    /// Sampling mode.
    #[serde(default)]
    pub sampling: SamplingMode,
    /// Sampling rate, per mille of valid cells.
    #[serde(default = "default_per_mille")]
    pub sample_per_mille: f64,
    /// Training epochs.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Learning rate.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Held-out share of the sample.
    #[serde(default = "default_holdout")]
    pub holdout: f64,
    /// Mini-batch size.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Stop when the held-out loss has not improved for this many epochs (0: never).
    #[serde(default = "default_patience")]
    pub early_stop_patience: usize,
    /// A K-band suitability raster to use instead of training (as GeoSOS-FLUS allows):
    /// the probability of occurrence of each class for the scenarios (from the
    /// `[markov] to` map).
    #[serde(default)]
    pub suitability: Option<PathBuf>,
    /// A K-band suitability raster for the validation (the CA from the `[markov] from`
    /// map); without it the validation trains the ANN on the drivers.
    #[serde(default)]
    pub validation_suitability: Option<PathBuf>,
}

fn default_per_mille() -> f64 {
    20.0
}
fn default_epochs() -> usize {
    100
}
fn default_learning_rate() -> f64 {
    0.1
}
fn default_momentum() -> f64 {
    0.9
}
fn default_holdout() -> f64 {
    0.2
}
fn default_batch() -> usize {
    32
}
fn default_patience() -> usize {
    15
}

impl Default for AnnConfig {
    fn default() -> Self {
        Self {
            hidden: None,
            sampling: SamplingMode::default(),
            sample_per_mille: default_per_mille(),
            epochs: default_epochs(),
            learning_rate: default_learning_rate(),
            momentum: default_momentum(),
            holdout: default_holdout(),
            batch_size: default_batch(),
            early_stop_patience: default_patience(),
            suitability: None,
            validation_suitability: None,
        }
    }
}

/// GWR kernel.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum KernelName {
    /// Bisquare (default).
    #[default]
    Bisquare,
    /// Gaussian.
    Gaussian,
    /// Exponential.
    Exponential,
}

/// `[gwr]`: GWR driver analysis parameters (docs/design.md §8).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GwrConfig {
    /// Number of sample points (seeded sample of valid cells).
    #[serde(default = "default_gwr_points")]
    pub sample_points: usize,
    /// Kernel.
    #[serde(default)]
    pub kernel: KernelName,
    /// Fixed-distance bandwidth instead of adaptive nearest neighbours.
    #[serde(default)]
    pub fixed: bool,
    /// Bandwidth (neighbours, or map units when fixed); searched on AICc when absent.
    #[serde(default)]
    pub bandwidth: Option<f64>,
    /// Standardise the drivers before fitting.
    #[serde(default = "default_true")]
    pub standardize: bool,
    /// Seeded permutations of each factor across the sample points for the
    /// significance of the factor table (`gwr_factor_r2.csv`, `p_value`); 0 skips them.
    #[serde(default = "default_gwr_permutations")]
    pub permutations: usize,
}

fn default_gwr_points() -> usize {
    1000
}
fn default_gwr_permutations() -> usize {
    99
}
fn default_true() -> bool {
    true
}

impl Default for GwrConfig {
    fn default() -> Self {
        Self {
            sample_points: default_gwr_points(),
            kernel: KernelName::default(),
            fixed: false,
            bandwidth: None,
            standardize: true,
            permutations: default_gwr_permutations(),
        }
    }
}

/// One multiplier on the Markov transition probability from one class to another.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Multiplier {
    /// From class (name).
    pub from: String,
    /// To class (name).
    pub to: String,
    /// Factor applied to P[from][to] before the row is renormalised.
    pub factor: f64,
}

/// `[[scenarios]]`: one planning scenario.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// Name (unique; used in file names).
    pub name: String,
    /// What the scenario stands for, and the assumptions behind its demand.
    #[serde(default)]
    pub description: Option<String>,
    /// Conversion matrix, rows = current class, columns = future class, values in [0, 1].
    pub matrix: Vec<Vec<f64>>,
    /// Zero the Markov probabilities of conversions the matrix forbids (default true), so
    /// the demand only asks for what the scenario allows.
    #[serde(default = "default_true")]
    pub markov_follows_matrix: bool,
    /// Multipliers on the Markov transition probabilities (rows renormalised).
    #[serde(default)]
    pub multipliers: Vec<Multiplier>,
    /// Demand given outright, cells per class name (instead of Markov).
    #[serde(default)]
    pub demand: Option<BTreeMap<String, i64>>,
    /// The class that absorbs the difference when an explicit demand does not sum to the
    /// valid cells.
    #[serde(default)]
    pub absorb: Option<String>,
}

/// Parses `#rrggbb`.
pub fn parse_color(s: &str) -> Option<[u8; 3]> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(h, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

/// A config file read from disk, with the folder its relative paths start from.
#[derive(Clone, Debug)]
pub struct Study {
    /// The parsed config.
    pub config: StudyConfig,
    /// The config file.
    pub file: PathBuf,
    /// Folder of the config file (relative paths start here).
    pub base_dir: PathBuf,
}

impl Study {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Study> {
        if path.is_dir() {
            return Err(Error::Config {
                file: path.to_path_buf(),
                key: "(file)".into(),
                message: "is a folder, expected a study TOML file".into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config = parse(&text, path)?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let study = Study {
            config,
            file: path.to_path_buf(),
            base_dir,
        };
        study.config.validate(path)?;
        study.check_paths(path)?;
        crate::files::register_inputs(study.input_files());
        Ok(study)
    }

    /// Every layer path of the config with its key (`landuse[0].path`, ...), as written.
    pub fn layer_paths(&self) -> Vec<(String, &Path)> {
        let cfg = &self.config;
        let mut paths: Vec<(String, &Path)> = Vec::new();
        for (i, m) in cfg.landuse.iter().enumerate() {
            paths.push((format!("landuse[{i}].path"), &m.path));
        }
        for (group, layers) in [
            ("drivers", &cfg.drivers),
            ("restrictions", &cfg.restrictions),
        ] {
            for (i, l) in layers.iter().enumerate() {
                paths.push((format!("{group}[{i}].path"), &l.path));
            }
        }
        if let Some(z) = &cfg.zones {
            paths.push(("zones.path".into(), &z.path));
        }
        if let Some(s) = &cfg.ann.suitability {
            paths.push(("ann.suitability".into(), s));
        }
        if let Some(s) = &cfg.ann.validation_suitability {
            paths.push(("ann.validation_suitability".into(), s));
        }
        paths
    }

    /// The files the study reads: the config and every layer (resolved against the
    /// config's folder).
    pub fn input_files(&self) -> Vec<PathBuf> {
        std::iter::once(self.file.clone())
            .chain(self.layer_paths().into_iter().map(|(_, p)| self.resolve(p)))
            .collect()
    }

    /// Refuses a layer path that names the config file itself, and two land-use maps
    /// that are one file (the change between them would be none by construction).
    fn check_paths(&self, path: &Path) -> Result<()> {
        let me = std::fs::canonicalize(path).ok();
        let err = |key: String, message: String| Error::Config {
            file: path.to_path_buf(),
            key,
            message,
        };
        for (key, p) in self.layer_paths() {
            let c = std::fs::canonicalize(self.resolve(p)).ok();
            if c.is_some() && c == me {
                return Err(err(
                    key,
                    format!(
                        "{} is the study config itself, expected a raster",
                        p.display()
                    ),
                ));
            }
        }
        let maps = &self.config.landuse;
        for (i, a) in maps.iter().enumerate() {
            let ca = std::fs::canonicalize(self.resolve(&a.path)).ok();
            for (j, b) in maps.iter().enumerate().skip(i + 1) {
                if ca.is_some() && ca == std::fs::canonicalize(self.resolve(&b.path)).ok() {
                    return Err(err(
                        format!("landuse[{j}].path"),
                        format!(
                            "{} (year {}) is the same file as landuse[{i}].path {} (year {}); \
                             expected a map of each year",
                            b.path.display(),
                            b.year,
                            a.path.display(),
                            a.year
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Resolves a path of the config against the config's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The output folder: `[study] output`, else `out/<config file stem>` beside the config.
    pub fn output_dir(&self) -> PathBuf {
        match &self.config.study.output {
            Some(o) => self.resolve(o),
            None => {
                let stem = self
                    .file
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string());
                self.base_dir
                    .join("out")
                    .join(stem.unwrap_or_else(|| "study".into()))
            }
        }
    }

    /// Number of classes K.
    pub fn k(&self) -> usize {
        self.config.classes.len()
    }

    /// The classes' names, in class order.
    pub fn class_names(&self) -> Vec<String> {
        self.config.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// Index of the class named `name`.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.config.classes.iter().position(|c| c.name == name)
    }

    /// Path of the land-use map of `year`.
    pub fn map_path(&self, year: i32) -> Option<PathBuf> {
        self.config
            .landuse
            .iter()
            .find(|m| m.year == year)
            .map(|m| self.resolve(&m.path))
    }
}

/// Parses TOML text (strict); errors name `file`, the key path and the problem.
pub fn parse(text: &str, file: &Path) -> Result<StudyConfig> {
    let de = toml::Deserializer::parse(text).map_err(|e| Error::Config {
        file: file.to_path_buf(),
        key: "(syntax)".into(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        Error::Config {
            file: file.to_path_buf(),
            key: if key.is_empty() || key == "." {
                "(top level)".into()
            } else {
                key
            },
            message: inner.message().trim().to_string(),
        }
    })
}

/// Parses and validates arbitrary bytes as a study config, ignoring the result: the
/// body of the `config` fuzz target and of its regression tests (a panic is a bug).
pub fn fuzz_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.toml");
    if let Ok(c) = parse(text, file) {
        let _ = c.validate(file);
    }
}

mod validate;

#[cfg(test)]
mod tests;
