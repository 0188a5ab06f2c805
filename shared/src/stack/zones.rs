//! The zone raster: a zone code per cell and the names of the codes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::on_grid::read_on_grid;
use crate::config::Study;
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::raster::Resample;

/// What [`read_zones`] read.
pub(super) struct ZoneLayer {
    /// The zone code per cell, when zones are configured.
    pub(super) codes: Option<Vec<i32>>,
    /// The names of the zone codes (empty when the raster has none).
    pub(super) names: BTreeMap<i64, String>,
}

/// Reads the zone raster, when zones are configured, onto `grid`, clearing in `mask` the
/// cells where it has no data; returns the zone code per cell and the names of the zone
/// codes. Polygon zones (a `zones.field`) are an error: they must be rasterised first.
pub(super) fn read_zones(
    study: &Study,
    reference: &Path,
    grid: &Grid,
    mask: &mut [bool],
    warped: &mut Vec<PathBuf>,
) -> Result<ZoneLayer> {
    let Some(z) = &study.config.zones else {
        return Ok(ZoneLayer {
            codes: None,
            names: BTreeMap::new(),
        });
    };
    let path = study.resolve(&z.path);
    let zone_names = crate::zones::raster_zone_names(&path)?;
    if z.field.is_some() {
        return Err(Error::Config {
            file: study.file.clone(),
            key: "zones.field".into(),
            message: format!(
                "{}: polygon zones must be rasterised first (`flus prepare`); give a zone raster",
                path.display()
            ),
        });
    }
    let mut codes: Vec<i32> = Vec::with_capacity(grid.cells());
    read_on_grid(
        study,
        reference,
        grid,
        &path,
        1,
        None,
        Resample::Nearest,
        warped,
        |first, values, has_data, _| {
            for (j, &data) in has_data.iter().enumerate() {
                mask[first + j] &= data;
            }
            codes.extend(values.iter().map(|&v| v as i32));
            Ok(())
        },
    )?;
    Ok(ZoneLayer {
        codes: Some(codes),
        names: zone_names,
    })
}
