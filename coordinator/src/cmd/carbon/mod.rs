//! `flus carbon`: carbon storage like InVEST's carbon model (docs/design.md §7), usable on its
//! own: storage of a baseline (and alternate) land-use map from a pools table, totals by
//! class and zone, change, optional valuation; and `flus carbon correct-density`, the
//! paper's precipitation correction of a pools table.

mod helpers;
mod storage;
mod tables;

use std::path::{Path, PathBuf};

use flus_shared::carbon::CARBON_NODATA;
use flus_shared::raster::{self, WriteOptions};

const AFTER_HELP: &str = "\
Outputs in --out DIR (Float32, nodata -3.4028235e38, grid and CRS of the baseline):
  carbon_baseline_t.tif            storage in t per cell
  carbon_alternate_t.tif           the same for --alternate
  carbon_change_t.tif              alternate - baseline, t per cell
  carbon_npv.tif                   NPV of the change (with valuation)
  carbon_baseline_t_ha.tif, carbon_alternate_t_ha.tif   storage in t/ha (with --per-ha)
  carbon_by_class.csv, carbon_by_zone.csv, carbon_summary.json
The maps are read and the rasters written a strip of 256 rows at a time (no layer is held
whole; polygon zones are rasterised whole), the blocks compressed (DEFLATE level 1) on
all cores.
A cell counts when every given layer has data there and both of its land-use codes are
in the pools table; the other cells are excluded everywhere and reported under `missing`.
Storage t = (c_above + c_below + c_soil + c_dead) t/ha * cells * cell area (ha), totals
are computed from integer cell counts per (zone, class).

Valuation (as InVEST): NPV = change * price / T * sum_{t=0}^{T-1} 1 / ((1 + r/100)^t (1 + c/100)^t),
T = years-alternate - years-baseline, r = --discount-rate %, c = --rate-change %.

`flus carbon correct-density` writes a pools table corrected for precipitation
(Qin et al. 2023, eq. 10-11); see `flus carbon correct-density --help`.
`flus carbon densities` derives the pools from national soil densities, biomass ratios
and carbon shares (the paper's Tables 4 -> 5 -> 6); see `flus carbon densities --help`.";

/// Arguments of `flus carbon`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = AFTER_HELP
)]
pub struct Args {
    /// Optional helper command instead of a storage run.
    #[command(subcommand)]
    pub command: Option<Helper>,
    /// Baseline land-use raster (integer class codes).
    #[arg(long, required = true, value_name = "A.tif")]
    pub baseline: Option<PathBuf>,
    /// Alternate (future or scenario) land-use raster on the same grid.
    #[arg(long, value_name = "B.tif")]
    pub alternate: Option<PathBuf>,
    /// InVEST carbon pools CSV: lucode,c_above,c_below,c_soil,c_dead (t/ha), extra columns allowed.
    #[arg(long, required = true, value_name = "POOLS.csv")]
    pub pools: Option<PathBuf>,
    /// Zones: an integer raster on the same grid, or polygons (any GDAL vector format).
    #[arg(long, value_name = "Z.tif|Z.gpkg")]
    pub zones: Option<PathBuf>,
    /// Attribute of the zone polygons: integer codes, or names (numbered 1.. in sorted
    /// order). Without it polygons are numbered by feature order and named by FID.
    #[arg(long, value_name = "NAME", requires = "zones")]
    pub zone_field: Option<String>,
    /// Land-use codes missing from the pools table: fail naming them, or exclude those cells.
    #[arg(long, value_enum, default_value_t = Missing::Error)]
    pub on_missing: Missing,
    /// Valuation: price per tonne of carbon.
    #[arg(long, value_name = "P", requires = "alternate")]
    pub price: Option<f64>,
    /// Valuation: annual discount rate, %.
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub discount_rate: Option<f64>,
    /// Valuation: annual change in the price of carbon, %.
    #[arg(long, value_name = "C", allow_negative_numbers = true)]
    pub rate_change: Option<f64>,
    /// Valuation: calendar year of the baseline map.
    #[arg(long, value_name = "Y0")]
    pub years_baseline: Option<i32>,
    /// Valuation: calendar year of the alternate map.
    #[arg(long, value_name = "Y1")]
    pub years_alternate: Option<i32>,
    /// Folder for the rasters and tables (created if needed); without it nothing is written.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also write the storage rasters in t/ha (carbon_baseline_t_ha.tif,
    /// carbon_alternate_t_ha.tif); by default only t per cell is written.
    #[arg(long, requires = "out")]
    pub per_ha: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Helper commands of `flus carbon`.
#[derive(Debug, clap::Subcommand)]
pub enum Helper {
    /// Correct a pools table for precipitation (Qin et al. 2023, eq. 10-11):
    /// C_PS = 3.3968 P + 3996.1, K = C_PS(local) / C_PS(national), density * K.
    ///
    /// The relation is a soil-carbon relation, so by default only c_soil is multiplied
    /// by K (--apply-to soil); --apply-to all multiplies all four pools.
    CorrectDensity(CorrectArgs),
    /// The paper's density chain (Qin et al. 2023, Tables 4 -> 5 -> 6): from national
    /// soil densities, biomass ratios and carbon shares to an InVEST pools table.
    ///
    /// --table T.csv has columns lucode, soil (national soil density, t/ha), ratio
    /// (below/above-ground biomass), biomass_share, soil_share, dead_share (fractions of
    /// the total carbon, summing to 1) and correct (true/false: whether K applies).
    /// soil = national soil x K where correct; total = soil / soil_share; biomass =
    /// biomass_share x total; above = biomass / (1 + ratio); below = biomass - above;
    /// dead = dead_share x total.
    Densities(DensitiesArgs),
}

/// Arguments of `flus carbon densities`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("k").required(true).args(["factor", "precipitation_local"])))]
pub struct DensitiesArgs {
    /// The chain table: lucode, soil, ratio, biomass_share, soil_share, dead_share, correct.
    #[arg(long, value_name = "T.csv")]
    pub table: PathBuf,
    /// The precipitation factor K itself.
    #[arg(long, value_name = "K")]
    pub factor: Option<f64>,
    /// Annual precipitation of the study area, mm (K = C_PS(local) / C_PS(national)).
    #[arg(long, value_name = "P", requires = "precipitation_national")]
    pub precipitation_local: Option<f64>,
    /// National mean annual precipitation, mm.
    #[arg(long, value_name = "P", requires = "precipitation_local")]
    pub precipitation_national: Option<f64>,
    /// Pools table to write (InVEST layout: lucode, c_above, c_below, c_soil, c_dead).
    #[arg(long, value_name = "POOLS.csv")]
    pub out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `flus carbon correct-density`.
#[derive(Debug, clap::Args)]
pub struct CorrectArgs {
    /// The national (or source) pools table.
    #[arg(long, value_name = "POOLS.csv")]
    pub pools: PathBuf,
    /// Annual precipitation of the study area, mm.
    #[arg(long, value_name = "MM")]
    pub precip_local: f64,
    /// Annual precipitation the table's densities stand for (national mean), mm.
    #[arg(long, value_name = "MM")]
    pub precip_national: f64,
    /// Pools multiplied by K.
    #[arg(long, value_enum, default_value_t = ApplyTo::Soil)]
    pub apply_to: ApplyTo,
    /// Corrected table to write (InVEST layout); without it the table goes to stdout.
    #[arg(long, value_name = "F.csv")]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--on-missing` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Missing {
    /// Fail, naming the codes.
    Error,
    /// Leave those cells out and report them.
    Exclude,
}

/// `--apply-to` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ApplyTo {
    /// Only c_soil.
    Soil,
    /// c_above, c_below, c_soil and c_dead.
    All,
}

/// Runs `flus carbon`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Some(Helper::CorrectDensity(c)) => helpers::run_correct(c),
        Some(Helper::Densities(d)) => helpers::run_densities(d),
        None => storage::run_storage(args),
    }
}

/// Creation options of a carbon raster with band description `band`.
pub(crate) fn carbon_options(band: &str) -> WriteOptions {
    WriteOptions {
        nodata: Some(CARBON_NODATA as f64),
        palette: Vec::new(),
        band_names: vec![band.to_string()],
    }
}

/// A writer of a carbon raster fed a strip of rows at a time: the same file as
/// [`write_carbon_raster`] of the whole array.
pub fn carbon_writer(
    path: &Path,
    grid: &flus_shared::grid::Grid,
    band: &str,
) -> anyhow::Result<raster::StripWriter<f32>> {
    Ok(raster::StripWriter::create(
        path,
        grid,
        1,
        &carbon_options(band),
    )?)
}
