//! `flus carbon`: carbon storage like InVEST's carbon model (docs/design.md §7), usable on its
//! own: storage of a baseline (and alternate) land-use map from a pools table, totals by
//! class and zone, change, optional valuation; and `flus carbon correct-density`, the
//! paper's precipitation correction of a pools table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use flus_shared::area::CellAreas;
use flus_shared::carbon::{
    self, correct_densities,
    pools::{pools_csv_text, write_atomic},
    read_pools_csv, totals, write_pools_csv, CarbonCounts, CarbonTotals, CellKernel, CellRaster,
    CorrectionTarget, OnMissing, StorageUnit, Valuation, CARBON_NODATA,
};
use flus_shared::files;
use flus_shared::raster::{self, RasterInfo, WriteOptions};
use flus_shared::zones::{self, Zones};

use super::carbon_json::{CarbonSummaryJson, SummaryInputs};
use super::carbon_stream::{self, Inputs, Output, ZoneInput};
use crate::output::print_json;

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
        Some(Helper::CorrectDensity(c)) => run_correct(c),
        Some(Helper::Densities(d)) => run_densities(d),
        None => run_storage(args),
    }
}

fn run_correct(a: &CorrectArgs) -> anyhow::Result<()> {
    let table = read_pools_csv(&a.pools)?;
    let target = match a.apply_to {
        ApplyTo::Soil => CorrectionTarget::Soil,
        ApplyTo::All => CorrectionTarget::AllPools,
    };
    let (corrected, k) = correct_densities(&table, a.precip_local, a.precip_national, target)?;
    tracing::info!(k, "precipitation correction factor");
    if let Some(out) = &a.out {
        write_pools_csv(out, &corrected)?;
        tracing::info!(path = %out.display(), "corrected pools table written");
    }
    if a.json {
        let rows: Vec<Value> = corrected
            .rows()
            .iter()
            .map(|r| {
                json!({"lucode": r.code, "name": r.name, "c_above": r.pools.above,
                       "c_below": r.pools.below, "c_soil": r.pools.soil, "c_dead": r.pools.dead,
                       "density_t_ha": r.pools.density()})
            })
            .collect();
        print_json(&json!({
            "pools": a.pools,
            "precip_local_mm": a.precip_local,
            "precip_national_mm": a.precip_national,
            "c_ps_local": carbon::correction::soil_carbon_from_precipitation(a.precip_local),
            "c_ps_national": carbon::correction::soil_carbon_from_precipitation(a.precip_national),
            "k": k,
            "apply_to": match a.apply_to { ApplyTo::Soil => "soil", ApplyTo::All => "all" },
            "out": a.out,
            "rows": rows,
        }))?;
    } else if a.out.is_none() {
        print!("{}", pools_csv_text(&corrected));
    } else {
        println!("K = {k:.6}");
    }
    Ok(())
}

fn run_densities(a: &DensitiesArgs) -> anyhow::Result<()> {
    let rows = carbon::read_chain_csv(&a.table)?;
    let k = match (a.factor, a.precipitation_local, a.precipitation_national) {
        (Some(k), None, None) => k,
        (None, Some(l), Some(n)) => carbon::correction_factor(l, n)?,
        _ => bail!(
            "give either --factor K or both --precipitation-local and --precipitation-national"
        ),
    };
    let pools = carbon::chain_pools(&rows, k)
        .with_context(|| format!("deriving pools from {}", a.table.display()))?;
    write_pools_csv(&a.out, &pools)?;
    tracing::info!(k, path = %a.out.display(), "pools table written");
    if a.json {
        let list: Vec<Value> = pools
            .rows()
            .iter()
            .map(|r| {
                json!({"lucode": r.code, "c_above": r.pools.above, "c_below": r.pools.below,
                       "c_soil": r.pools.soil, "c_dead": r.pools.dead})
            })
            .collect();
        print_json(&json!({"table": a.table, "k": k, "out": a.out, "pools": list}))?;
    } else {
        print!("K = {k:.6}\n{}", pools_csv_text(&pools));
    }
    Ok(())
}

fn valuation(args: &Args) -> anyhow::Result<Option<Valuation>> {
    let given = [
        ("--price", args.price.is_some()),
        ("--discount-rate", args.discount_rate.is_some()),
        ("--rate-change", args.rate_change.is_some()),
        ("--years-baseline", args.years_baseline.is_some()),
        ("--years-alternate", args.years_alternate.is_some()),
    ];
    if given.iter().all(|(_, g)| !g) {
        return Ok(None);
    }
    let missing: Vec<&str> = given.iter().filter(|(_, g)| !g).map(|(n, _)| *n).collect();
    if !missing.is_empty() {
        bail!(
            "valuation needs --price, --discount-rate, --rate-change, --years-baseline and --years-alternate; missing: {}",
            missing.join(", ")
        );
    }
    if args.alternate.is_none() {
        bail!("valuation values a change: it needs --alternate");
    }
    Ok(Some(Valuation {
        price: args.price.unwrap_or_default(),
        discount_rate: args.discount_rate.unwrap_or_default(),
        rate_change: args.rate_change.unwrap_or_default(),
        year_baseline: args.years_baseline.unwrap_or_default(),
        year_alternate: args.years_alternate.unwrap_or_default(),
    }))
}

/// The zones of `args`: polygons rasterised on the baseline's grid (held whole), a
/// raster (streamed: here only its name, for the tables) or none.
fn zones_of(args: &Args, info: &RasterInfo) -> anyhow::Result<Option<Zones>> {
    let Some(z) = &args.zones else {
        return Ok(None);
    };
    if zones::is_vector(z)? {
        Ok(Some(zones::zones_from_polygons(
            z,
            args.zone_field.as_deref(),
            &info.grid,
        )?))
    } else {
        if args.zone_field.is_some() {
            bail!(
                "{}: --zone-field is for polygon zones, this is a raster (its values are the zone codes)",
                z.display()
            );
        }
        Ok(Some(Zones {
            path: z.clone(),
            values: Vec::new(),
            nodata: None,
            names: Default::default(),
        }))
    }
}

/// The per-cell rasters asked for: (JSON key, output).
fn raster_outputs(args: &Args, dir: &Path, npv: bool) -> Vec<(String, Output)> {
    let mut maps = vec![(carbon::Map::Baseline, "baseline")];
    if args.alternate.is_some() {
        maps.push((carbon::Map::Alternate, "alternate"));
    }
    let mut units = vec![(StorageUnit::TonnesPerCell, "t", "t per cell")];
    if args.per_ha {
        units.push((StorageUnit::TonnesPerHa, "t_ha", "t/ha"));
    }
    let mut outs = Vec::new();
    for (map, name) in maps {
        for &(unit, suffix, what) in &units {
            outs.push((
                format!("{name}_storage_{suffix}"),
                Output {
                    raster: CellRaster::Storage(map, unit),
                    path: dir.join(format!("carbon_{name}_{suffix}.tif")),
                    band: format!("{name} carbon storage, {what}"),
                },
            ));
        }
    }
    if args.alternate.is_some() {
        outs.push((
            "change_t".into(),
            Output {
                raster: CellRaster::Change,
                path: dir.join("carbon_change_t.tif"),
                band: "carbon change alternate - baseline, t per cell".into(),
            },
        ));
        if npv {
            outs.push((
                "npv".into(),
                Output {
                    raster: CellRaster::Npv,
                    path: dir.join("carbon_npv.tif"),
                    band: "net present value of the carbon change".into(),
                },
            ));
        }
    }
    outs
}

fn run_storage(args: &Args) -> anyhow::Result<()> {
    let run = Storage::prepare(args)?;
    let (keys, outs) = run.rasters()?;
    let counts = run.stream(&outs)?;
    let tot = totals(&counts, &run.pools, &run.areas)?;
    tracing::info!(
        cells = tot.cells,
        baseline_t = tot.baseline_t,
        alternate_t = tot.alternate_t,
        "carbon totals"
    );

    let mut outputs = BTreeMap::new();
    if let Some(dir) = &args.out {
        for (key, o) in keys.iter().zip(&outs) {
            outputs.insert(key.clone(), o.path.clone());
        }
        write_tables(dir, &tot, run.zones.as_ref(), run.constant, &mut outputs)?;
    }
    let summary = CarbonSummaryJson::new(SummaryInputs {
        args,
        tot: &tot,
        counts: &counts,
        zones: run.zones.as_ref(),
        valuation: run.valuation.zip(run.constant),
        outputs,
    });
    // keys in sorted order, as when the summary was an untyped JSON value
    let summary = serde_json::to_value(&summary)?;
    if let Some(dir) = &args.out {
        let p = dir.join("carbon_summary.json");
        write_atomic(&p, serde_json::to_string_pretty(&summary)?.as_bytes())?;
    }
    if args.json {
        print_json(&summary)?;
    } else {
        print_human(&tot, &counts, run.constant);
    }
    Ok(())
}

/// The inputs of a storage run, read and checked: the state shared by the steps of
/// [`run_storage`].
struct Storage<'a> {
    args: &'a Args,
    baseline: &'a PathBuf,
    pools_path: &'a PathBuf,
    valuation: Option<Valuation>,
    /// The NPV per tonne of change, with a valuation.
    constant: Option<f64>,
    pools: carbon::PoolsTable,
    zones: Option<Zones>,
    areas: CellAreas,
}

impl<'a> Storage<'a> {
    /// Checks the arguments and reads the pools table, the baseline's grid and the zones.
    fn prepare(args: &'a Args) -> anyhow::Result<Self> {
        let (Some(baseline), Some(pools_path)) = (&args.baseline, &args.pools) else {
            bail!("flus carbon needs --baseline and --pools");
        };
        files::register_inputs(
            [
                Some(baseline),
                Some(pools_path),
                args.alternate.as_ref(),
                args.zones.as_ref(),
            ]
            .into_iter()
            .flatten(),
        );
        let valuation = valuation(args)?;
        let pools = read_pools_csv(pools_path)?;
        let binfo = raster::info(baseline)?;
        let zones = zones_of(args, &binfo)?;
        let areas = CellAreas::of_grid(&binfo.grid, &baseline.display().to_string())?;
        let constant = valuation.map(|v| v.constant()).transpose()?;
        Ok(Self {
            args,
            baseline,
            pools_path,
            valuation,
            constant,
            pools,
            zones,
            areas,
        })
    }

    /// The per-cell rasters to write (with --out, its folder created): JSON keys and
    /// outputs.
    fn rasters(&self) -> anyhow::Result<(Vec<String>, Vec<Output>)> {
        Ok(match &self.args.out {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create output folder {}", dir.display()))?;
                raster_outputs(self.args, dir, self.constant.is_some())
                    .into_iter()
                    .unzip()
            }
            None => (Vec::new(), Vec::new()),
        })
    }

    /// Streams the maps, writing `outs`; the counts, once checked for missing codes
    /// (`--on-missing`) and for cells with data.
    fn stream(&self, outs: &[Output]) -> anyhow::Result<CarbonCounts> {
        let args = self.args;
        let on_missing = match args.on_missing {
            Missing::Error => OnMissing::Error,
            Missing::Exclude => OnMissing::Exclude,
        };
        let zone_input = match (&self.zones, &args.zones) {
            (Some(z), Some(path)) if z.values.is_empty() => ZoneInput::Raster(path),
            (Some(z), _) => ZoneInput::Cells(z),
            _ => ZoneInput::None,
        };
        let kinds: Vec<CellRaster> = outs.iter().map(|o| o.raster).collect();
        let kernel = CellKernel::new(&self.pools, &kinds, self.constant)?;
        let pools_name = self.pools_path.display().to_string();
        let inputs = Inputs {
            baseline: self.baseline,
            alternate: args.alternate.as_deref(),
            zones: zone_input,
        };
        carbon_stream::run(&inputs, &kernel, &self.areas, outs, |c| {
            c.check_missing(on_missing, &pools_name)?;
            anyhow::ensure!(
                c.counted_cells() > 0,
                "no cell has data in {}: expected maps (and zones) whose data overlap",
                [
                    Some(self.baseline),
                    args.alternate.as_ref(),
                    args.zones.as_ref()
                ]
                .into_iter()
                .flatten()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
            );
            Ok(())
        })
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

/// Writes the class and zone tables into `dir`.
fn write_tables(
    dir: &Path,
    tot: &CarbonTotals,
    zones: Option<&Zones>,
    constant: Option<f64>,
    outputs: &mut BTreeMap<String, PathBuf>,
) -> anyhow::Result<()> {
    let p = dir.join("carbon_by_class.csv");
    write_atomic(&p, &class_csv(tot)?)?;
    outputs.insert("by_class_csv".into(), p);
    if let Some(z) = zones {
        let p = dir.join("carbon_by_zone.csv");
        write_atomic(&p, &zone_csv(tot, z, constant)?)?;
        outputs.insert("by_zone_csv".into(), p);
    }
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn class_csv(tot: &CarbonTotals) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "lucode",
        "name",
        "density_t_ha",
        "baseline_cells",
        "baseline_area_m2",
        "baseline_t",
        "alternate_cells",
        "alternate_area_m2",
        "alternate_t",
        "change_t",
    ])?;
    for c in &tot.by_class {
        w.write_record([
            c.code.to_string(),
            c.name.clone(),
            c.density_t_ha.to_string(),
            c.baseline_cells.to_string(),
            c.baseline_area_m2.to_string(),
            c.baseline_t.to_string(),
            c.alternate_cells.map(|n| n.to_string()).unwrap_or_default(),
            opt(c.alternate_area_m2),
            opt(c.alternate_t),
            opt(c.alternate_t.map(|a| a - c.baseline_t)),
        ])?;
    }
    Ok(w.into_inner()?)
}

fn zone_csv(tot: &CarbonTotals, zones: &Zones, constant: Option<f64>) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "zone",
        "name",
        "cells",
        "area_m2",
        "baseline_t",
        "alternate_t",
        "change_t",
        "baseline_mean_density_kg_m2",
        "alternate_mean_density_kg_m2",
    ];
    if constant.is_some() {
        header.push("npv");
    }
    w.write_record(&header)?;
    for z in &tot.by_zone {
        let mut rec = vec![
            z.zone.to_string(),
            zones.name_of(z.zone),
            z.cells.to_string(),
            z.area_m2.to_string(),
            z.baseline_t.to_string(),
            opt(z.alternate_t),
            opt(z.change_t()),
            carbon::mean_density_kg_m2(z.baseline_t, z.area_m2).to_string(),
            opt(z
                .alternate_t
                .map(|a| carbon::mean_density_kg_m2(a, z.area_m2))),
        ];
        if let Some(k) = constant {
            rec.push(opt(z.change_t().map(|c| c * k)));
        }
        w.write_record(&rec)?;
    }
    Ok(w.into_inner()?)
}

fn print_human(tot: &CarbonTotals, counts: &CarbonCounts, constant: Option<f64>) {
    println!(
        "cells counted: {} ({:.1} ha), excluded: {} (nodata {}, outside zones {}, unknown codes {})",
        tot.cells,
        tot.area_m2 / 10_000.0,
        counts.excluded_cells(),
        counts.nodata_cells,
        counts.outside_zones_cells,
        counts.unknown_cells
    );
    println!(
        "{:>8} {:>10} {:>12} {:>16} {:>12} {:>16}",
        "lucode", "t/ha", "base cells", "baseline t", "alt cells", "alternate t"
    );
    for c in &tot.by_class {
        println!(
            "{:>8} {:>10.3} {:>12} {:>16.2} {:>12} {:>16}",
            c.code,
            c.density_t_ha,
            c.baseline_cells,
            c.baseline_t,
            c.alternate_cells.map(|n| n.to_string()).unwrap_or_default(),
            c.alternate_t.map(|t| format!("{t:.2}")).unwrap_or_default()
        );
    }
    println!(
        "baseline: {:.2} t ({:.4} kg/m2)",
        tot.baseline_t,
        tot.baseline_mean_density_kg_m2()
    );
    if let (Some(a), Some(d), Some(c)) = (
        tot.alternate_t,
        tot.alternate_mean_density_kg_m2(),
        tot.change_t(),
    ) {
        println!("alternate: {a:.2} t ({d:.4} kg/m2), change {c:.2} t");
        if let Some(k) = constant {
            println!("NPV of the change: {:.2} (constant {k:.6})", c * k);
        }
    }
}
