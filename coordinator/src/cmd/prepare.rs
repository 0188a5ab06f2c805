//! `flus prepare --reference LANDUSE.tif --out DIR ...`: raw inputs onto the reference
//! grid (warped rasters, slope and aspect, distance, restriction and zone rasters), one
//! `NAME.tif` per output in DIR plus `prepared.toml` to paste into a study.toml.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Context};
use flus_shared::prepare::{self, Output, ZoneFields};
use flus_shared::{files, raster};
use serde_json::json;

/// Arguments of `flus prepare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reference raster (the land-use map): every output is written on its grid.
    #[arg(long)]
    pub reference: PathBuf,
    /// Output folder (NAME.tif per output, prepared.toml).
    #[arg(long)]
    pub out: PathBuf,
    /// Raster to warp: NAME=PATH[:nearest|bilinear] (default: nearest for integer
    /// rasters, bilinear for floating point ones). Repeatable.
    #[arg(long, value_name = "NAME=PATH[:RESAMPLING]")]
    pub warp: Vec<String>,
    /// DEM: writes slope.tif and aspect.tif (degrees; aspect -1 on flat cells).
    #[arg(long)]
    pub dem: Option<PathBuf>,
    /// Lines or points (roads, rivers): distance raster NAME.tif in map units. Repeatable.
    #[arg(long, value_name = "NAME=VECTOR")]
    pub distance: Vec<String>,
    /// Polygons where land use may not change: NAME.tif, 0 inside, 1 outside. Repeatable.
    #[arg(long, value_name = "NAME=VECTOR")]
    pub restrict: Vec<String>,
    /// Zone polygons: zones.tif (Int32 codes, 0 outside) and zones.csv (code,name).
    #[arg(long, value_name = "VECTOR")]
    pub zones: Option<PathBuf>,
    /// Attribute with the zone names (default: the code).
    #[arg(long, requires = "zones")]
    pub zone_field: Option<String>,
    /// Integer attribute with the zone codes (default: 1..n in feature order).
    #[arg(long, requires = "zones")]
    pub zone_code_field: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn claim(names: &mut BTreeSet<String>, name: &str) -> anyhow::Result<()> {
    if !names.insert(name.to_string()) {
        bail!("output name `{name}` is given twice (each output is written to NAME.tif)");
    }
    Ok(())
}

fn log(o: &Output) {
    tracing::info!(
        name = %o.name,
        kind = ?o.kind,
        cells_with_data = o.cells_with_data,
        min = ?o.min,
        max = ?o.max,
        "wrote {}",
        o.path.display()
    );
}

/// The parsed and checked arguments: what to write, by output name.
struct Specs {
    warps: Vec<prepare::WarpSpec>,
    distances: Vec<(String, PathBuf)>,
    restricts: Vec<(String, PathBuf)>,
    /// Every output's name (NAME.tif), each once.
    names: BTreeSet<String>,
}

impl Specs {
    /// Parses every argument and checks the output names before any work.
    fn parse(args: &Args) -> anyhow::Result<Self> {
        let warps = args
            .warp
            .iter()
            .map(|w| prepare::parse_warp_spec(w))
            .collect::<Result<Vec<_>, _>>()?;
        let named = |flag: &str, list: &[String]| {
            list.iter()
                .map(|d| prepare::parse_named_path(flag, d))
                .collect::<Result<Vec<_>, _>>()
        };
        let distances = named("--distance", &args.distance)?;
        let restricts = named("--restrict", &args.restrict)?;
        let mut names = BTreeSet::new();
        for w in &warps {
            claim(&mut names, &w.name)?;
        }
        if args.dem.is_some() {
            claim(&mut names, "slope")?;
            claim(&mut names, "aspect")?;
        }
        for (n, _) in distances.iter().chain(&restricts) {
            claim(&mut names, n)?;
        }
        if args.zones.is_some() {
            claim(&mut names, "zones")?;
        }
        if names.is_empty() {
            bail!("nothing to prepare: give --warp, --dem, --distance, --restrict or --zones");
        }
        Ok(Self {
            warps,
            distances,
            restricts,
            names,
        })
    }
}

/// The zone table written beside `zones.tif`: its path and the zones.
type ZoneTable = (PathBuf, Vec<prepare::Zone>);

/// Runs `flus prepare`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let specs = Specs::parse(args)?;
    let tif = |name: &str| args.out.join(format!("{name}.tif"));
    // no output may replace an input: checked for every output before any is written
    files::register_inputs(
        std::iter::once(&args.reference)
            .chain(specs.warps.iter().map(|w| &w.path))
            .chain(&args.dem)
            .chain(
                specs
                    .distances
                    .iter()
                    .chain(&specs.restricts)
                    .map(|(_, p)| p),
            )
            .chain(&args.zones),
    );
    files::check_outputs(
        specs
            .names
            .iter()
            .map(|n| tif(n))
            .chain(["zones.csv", "prepared.toml"].map(|n| args.out.join(n))),
    )?;
    let reference = raster::info(&args.reference)?;
    files::ensure_dir(&args.out)?;
    let (outputs, zone_table) = write_outputs(args, &specs, &reference.grid)?;

    let toml_path = args.out.join("prepared.toml");
    let text = prepare::prepared_toml(&args.out, &outputs)?;
    files::write_atomic(&toml_path, text.as_bytes())
        .with_context(|| "writing prepared.toml".to_string())?;
    tracing::info!("wrote {}", toml_path.display());
    if args.json {
        let mut obj = json!({
            "reference": reference.path,
            "outputs": outputs,
            "prepared_toml": toml_path,
        });
        if let Some((csv, zones)) = &zone_table {
            obj["zones"] = json!({ "table": csv, "zones": zones });
        }
        crate::output::print_json(&obj)?;
    } else {
        print_outputs(&reference, &outputs, &toml_path);
    }
    Ok(())
}

/// Writes every output of `specs` on `grid`, in argument order: warps, slope and aspect,
/// distances, restrictions, zones.
fn write_outputs(
    args: &Args,
    specs: &Specs,
    grid: &flus_shared::grid::Grid,
) -> anyhow::Result<(Vec<Output>, Option<ZoneTable>)> {
    let tif = |name: &str| args.out.join(format!("{name}.tif"));
    let mut outputs: Vec<Output> = Vec::new();
    let mut push = |o: Output| {
        log(&o);
        outputs.push(o);
    };
    for w in &specs.warps {
        push(prepare::warp(
            &w.path,
            grid,
            w.resample,
            &w.name,
            &tif(&w.name),
        )?);
    }
    if let Some(dem) = &args.dem {
        let (s, a) = prepare::slope_aspect(dem, grid, &tif("slope"), &tif("aspect"))?;
        push(s);
        push(a);
    }
    for (name, vector) in &specs.distances {
        push(prepare::distance(vector, grid, name, &tif(name))?);
    }
    for (name, vector) in &specs.restricts {
        push(prepare::restriction(vector, grid, name, &tif(name))?);
    }
    let mut zone_table = None;
    if let Some(vector) = &args.zones {
        let fields = ZoneFields {
            code: args.zone_code_field.clone(),
            name: args.zone_field.clone(),
        };
        let csv = args.out.join("zones.csv");
        let (o, zones) = prepare::zones(vector, grid, &fields, &tif("zones"), &csv)?;
        tracing::info!("{} zones, names in {}", zones.len(), csv.display());
        push(o);
        zone_table = Some((csv, zones));
    }
    Ok((outputs, zone_table))
}

/// The outputs as a table on stdout (without `--json`).
fn print_outputs(reference: &raster::RasterInfo, outputs: &[Output], toml_path: &std::path::Path) {
    let grid = &reference.grid;
    println!(
        "{} output(s) on the grid of {} ({} x {} cells):",
        outputs.len(),
        reference.path.display(),
        grid.width,
        grid.height
    );
    for o in outputs {
        let range = match (o.min, o.max) {
            (Some(a), Some(b)) => format!("{a} .. {b}"),
            _ => "no data".into(),
        };
        println!(
            "  {:<16} {:<12} {:>10} cells with data, {range}",
            o.name,
            format!("{:?}", o.kind).to_lowercase(),
            o.cells_with_data
        );
    }
    println!("study config entries: {}", toml_path.display());
}
