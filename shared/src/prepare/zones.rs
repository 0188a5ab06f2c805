//! [`zones`]: a zone raster and its `code,name` table from polygons.

use std::collections::BTreeMap;
use std::path::Path;

use gdal::vector::{FieldValue, Geometry};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster::{self, WriteOptions};

use super::{rasterize, read_features, summarize, Output, OutputKind, VectorFeature, ZONE_NODATA};

/// Where zone codes and names come from.
#[derive(Clone, Debug, Default)]
pub struct ZoneFields {
    /// Integer attribute holding the zone code (>= 1); `None`: 1..n in feature order.
    pub code: Option<String>,
    /// Attribute holding the zone name; `None`: the name is the code.
    pub name: Option<String>,
}

/// One zone: its code and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Zone {
    /// Zone code in the raster.
    pub code: i32,
    /// Zone name.
    pub name: String,
}

fn field_to_code(v: &Option<FieldValue>) -> Option<i64> {
    match v {
        Some(FieldValue::IntegerValue(i)) => Some(*i as i64),
        Some(FieldValue::Integer64Value(i)) => Some(*i),
        Some(FieldValue::RealValue(r)) if r.fract() == 0.0 && r.abs() < 1e15 => Some(*r as i64),
        Some(FieldValue::StringValue(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn field_to_name(v: &Option<FieldValue>) -> String {
    match v {
        None => String::new(),
        Some(FieldValue::StringValue(s)) => s.clone(),
        Some(FieldValue::IntegerValue(i)) => i.to_string(),
        Some(FieldValue::Integer64Value(i)) => i.to_string(),
        Some(FieldValue::RealValue(r)) => r.to_string(),
        Some(other) => format!("{other:?}"),
    }
}

/// Zone raster from the polygons of `vector`: Int32 zone codes ([`ZONE_NODATA`] = 0
/// outside every polygon) written to `out`, and the `code,name` table (sorted by code)
/// written to `table`. Features sharing a code must share a name.
pub fn zones(
    vector: &Path,
    reference: &Grid,
    fields: &ZoneFields,
    out: &Path,
    table: &Path,
) -> Result<(Output, Vec<Zone>)> {
    let mut asked: Vec<&str> = Vec::new();
    if let Some(c) = &fields.code {
        asked.push(c);
    }
    if let Some(n) = &fields.name {
        asked.push(n);
    }
    let features = read_features(vector, reference, &asked)?;
    let (codes, by_code) = zone_codes(vector, &features, fields)?;
    let geometries: Vec<Geometry> = features.into_iter().map(|f| f.geometry).collect();
    let values = rasterize(
        reference,
        &geometries,
        &codes,
        ZONE_NODATA as f64,
        false,
        vector,
    )?;
    let data: Vec<i32> = values.iter().map(|&v| v as i32).collect();
    raster::write_geotiff(
        out,
        reference,
        &[&data],
        &WriteOptions {
            nodata: Some(ZONE_NODATA as f64),
            ..Default::default()
        },
    )?;
    let zones: Vec<Zone> = by_code
        .into_iter()
        .map(|(code, (_, name))| Zone { code, name })
        .collect();
    let rows: Vec<Vec<String>> = zones
        .iter()
        .map(|z| vec![z.code.to_string(), z.name.clone()])
        .collect();
    crate::files::write_csv(table, &["code".into(), "name".into()], &rows)?;
    Ok((
        summarize(
            "zones",
            OutputKind::Zones,
            out,
            values.iter().copied(),
            Some(ZONE_NODATA as f64),
        ),
        zones,
    ))
}

/// By zone code: the first feature that used it and the zone's name.
type ZoneNames = BTreeMap<i32, (usize, String)>;

/// Every feature's zone code (as the rasteriser's burn value) and, by code, the first
/// feature that used it and its name; a code used with two names is an error.
fn zone_codes(
    vector: &Path,
    features: &[VectorFeature],
    fields: &ZoneFields,
) -> Result<(Vec<f64>, ZoneNames)> {
    let mut codes = Vec::with_capacity(features.len());
    let mut by_code = ZoneNames::new();
    for (k, f) in features.iter().enumerate() {
        let code = zone_code(vector, fields, k, f)?;
        let name = match &fields.name {
            Some(_) => field_to_name(f.values.last().unwrap_or(&None)),
            None => code.to_string(),
        };
        if let Some((first, prev)) = by_code.get(&code) {
            if *prev != name {
                return Err(Error::vector(
                    vector,
                    format!(
                        "zone code {code} is used by feature {first} (`{prev}`) and feature {} \
                         (`{name}`): expected one name per code",
                        f.index
                    ),
                ));
            }
        } else {
            by_code.insert(code, (f.index, name));
        }
        codes.push(code as f64);
    }
    Ok((codes, by_code))
}

/// The zone code of feature `f`, the `k`-th read: its code attribute (a whole number from
/// 1), or k + 1 without one.
fn zone_code(vector: &Path, fields: &ZoneFields, k: usize, f: &VectorFeature) -> Result<i32> {
    Ok(match &fields.code {
        Some(field) => {
            let v = &f.values[0];
            match field_to_code(v).and_then(|c| i32::try_from(c).ok()) {
                Some(c) if c >= 1 => c,
                _ => {
                    return Err(Error::vector(
                        vector,
                        format!(
                            "feature {}: zone code attribute `{field}` holds {}, expected \
                             a whole number from 1 to {} (0 marks cells outside every zone)",
                            f.index,
                            v.as_ref()
                                .map(|x| format!("{x:?}"))
                                .unwrap_or_else(|| "nothing (null)".into()),
                            i32::MAX
                        ),
                    ))
                }
            }
        }
        None => i32::try_from(k + 1)
            .map_err(|_| Error::vector(vector, "more zones than an Int32 raster can number"))?,
    })
}
