//! `flus carbon`'s storage run: the maps streamed through the pools, then the totals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use flus_shared::area::CellAreas;
use flus_shared::carbon::{
    self, pools::write_atomic, read_pools_csv, totals, CarbonCounts, CellKernel, CellRaster,
    OnMissing, StorageUnit, Valuation,
};
use flus_shared::files;
use flus_shared::raster::{self, RasterInfo};
use flus_shared::zones::{self, Zones};

use super::super::carbon_json::{CarbonSummaryJson, SummaryInputs};
use super::super::carbon_stream::{self, Inputs, Output, ZoneInput};
use super::tables::{print_human, write_tables};
use super::{Args, Missing};
use crate::output::print_json;

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

pub(super) fn run_storage(args: &Args) -> anyhow::Result<()> {
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
