//! The tables of `flus carbon` (by class, by zone) and its text output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flus_shared::carbon::{self, pools::write_atomic, CarbonCounts, CarbonTotals};
use flus_shared::zones::Zones;

/// Writes the class and zone tables into `dir`.
pub(super) fn write_tables(
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

pub(super) fn print_human(tot: &CarbonTotals, counts: &CarbonCounts, constant: Option<f64>) {
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
