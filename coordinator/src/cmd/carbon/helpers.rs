//! `flus carbon correct-density` and `flus carbon densities`: pools tables.

use anyhow::{bail, Context};
use serde_json::{json, Value};

use flus_shared::carbon::{
    self, correct_densities, pools::pools_csv_text, read_pools_csv, write_pools_csv,
    CorrectionTarget,
};

use super::{ApplyTo, CorrectArgs, DensitiesArgs};
use crate::output::print_json;

pub(super) fn run_correct(a: &CorrectArgs) -> anyhow::Result<()> {
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

pub(super) fn run_densities(a: &DensitiesArgs) -> anyhow::Result<()> {
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
