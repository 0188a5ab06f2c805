//! The report's further map sections: carbon storage per map on one common scale (the
//! paper's Fig. 4), the GWR's local coefficient maps, and the validation as maps
//! (observed and simulated change, the figure of merit's four components).

use std::path::{Path, PathBuf};

use flus_shared::change_maps;

use super::html::{self, esc, LegendEntry};
use super::{map_figure, png, svg, RunMap, MAP_DISPLAY_WIDTH};
use crate::run_json::validation::RangeJson;
use crate::run_json::RunJson;

/// Rendered sections and the PNGs they show.
#[derive(Default)]
pub struct Sections {
    /// HTML sections, in page order.
    pub html: Vec<String>,
    /// PNG files written.
    pub images: Vec<PathBuf>,
    /// PNG files to write ([`png::write_all`]), all at once at the end.
    pub pending: Vec<png::Pending>,
}

impl Sections {
    /// The PNG of `img` at `path`: listed now, written with the others at the end.
    pub fn png(&mut self, path: PathBuf, img: &png::MapImage, palette: png::Palette) {
        self.images.push(path.clone());
        self.pending
            .push(png::Pending::Image(path, img.clone(), palette));
    }

    /// [`Sections::png`] with its bytes when they were encoded ahead.
    pub fn png_or_encoded(
        &mut self,
        path: PathBuf,
        img: &png::MapImage,
        palette: png::Palette,
        encoded: Option<Vec<u8>>,
    ) {
        match encoded {
            Some(bytes) => {
                self.images.push(path.clone());
                self.pending.push(png::Pending::Encoded(path, bytes));
            }
            None => self.png(path, img, palette),
        }
    }
}

fn hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// Carbon storage of every map (base year and scenarios) on one scale from 0 to the
/// largest cell of all maps, so that the maps compare; the rasters in `ready` (read
/// ahead, by path) are taken from there.
pub fn storage(
    dir: &Path,
    img_dir: &Path,
    maps: &[RunMap],
    ready: &mut std::collections::HashMap<PathBuf, png::StorageValues>,
    out: &mut Sections,
) -> anyhow::Result<()> {
    let files: Vec<(&RunMap, PathBuf)> = maps
        .iter()
        .filter_map(|m| m.carbon.as_ref().map(|c| (m, dir.join(c))))
        .filter(|(_, p)| p.exists())
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    // every file read once, several at a time; the scale is the largest of all
    let values: Vec<png::StorageValues> = {
        use rayon::prelude::*;
        let taken: Vec<_> = files.iter().map(|(_, p)| ready.remove(p)).collect();
        files
            .par_iter()
            .zip(taken)
            .map(|((_, p), r)| r.map_or_else(|| png::StorageValues::read(p), Ok))
            .collect::<anyhow::Result<_>>()?
    };
    let max = values.iter().fold(0.0f64, |m, v| m.max(v.max));
    let mut figs = String::new();
    for ((m, _), v) in files.iter().zip(&values) {
        let img = v.image(max);
        let name = format!("carbon_storage_{}.png", m.label);
        out.png(img_dir.join(&name), &img, png::storage_palette());
        figs.push_str(&map_figure(
            &m.title(),
            &format!("report/{name}"),
            &img,
            &svg::sequential_legend(max, MAP_DISPLAY_WIDTH, "t C per cell"),
        ));
    }
    out.html.push(format!(
        "<section id=\"carbon-storage-maps\"><h2>Carbon storage</h2><p class=\"lead\">Carbon stored per cell in the base year and in every scenario (InVEST carbon model; all maps on one scale, 0 to the largest cell).</p><div class=\"maps\">{figs}</div></section>"
    ));
    Ok(())
}

/// The seed ensemble (`flus run --ensemble N`): per scenario and year the share of
/// members in which each cell changed class, the carbon storage over the members
/// (`carbon_ensemble.csv`) and the validation metrics' range. Nothing without an
/// ensemble.
pub fn ensemble(
    dir: &Path,
    img_dir: &Path,
    run: &RunJson,
    out: &mut Sections,
) -> anyhow::Result<()> {
    let Some(e) = &run.ensemble else {
        return Ok(());
    };
    let members = e.members;
    let mut figs = String::new();
    for m in &e.maps {
        let (label, Some(file)) = (&m.label, &m.change_frequency) else {
            continue;
        };
        let img = png::frequency_map(&dir.join(file))?;
        let name = format!("change_frequency_{label}.png");
        out.png(img_dir.join(&name), &img, png::storage_palette());
        figs.push_str(&map_figure(
            &esc(label),
            &format!("report/{name}"),
            &img,
            &svg::sequential_legend(1.0, MAP_DISPLAY_WIDTH, "share of members that changed"),
        ));
    }
    let rows: Vec<Vec<String>> = e
        .carbon
        .iter()
        .map(|r| {
            vec![
                r.map.clone(),
                svg::fmt_num(r.storage.mean),
                svg::fmt_num(r.storage.sd),
                svg::fmt_num(r.storage.p2_5),
                svg::fmt_num(r.storage.p97_5),
                svg::fmt_num(r.change.mean),
            ]
        })
        .collect();
    let header: Vec<String> = [
        "map",
        "mean storage (t)",
        "standard deviation (t)",
        "2.5th percentile (t)",
        "97.5th percentile (t)",
        "mean change against the base year (t)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let carbon = html::table(&header, &rows, None, esc, |_| "");
    // "–" where the metric is undefined for a member
    let range = |name: &str, r: Option<&RangeJson>| -> String {
        let t = |f: fn(&RangeJson) -> f64| r.map_or("–".to_string(), |r| svg::fmt_num(f(r)));
        format!(
            "<tr><th scope=\"row\">{name}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            t(|r| r.mean),
            t(|r| r.min),
            t(|r| r.max)
        )
    };
    let validation = match &e.validation {
        Some(v) => format!(
            "<h3>Validation over the members</h3><table><thead><tr><th>metric</th><th>mean</th><th>min</th><th>max</th></tr></thead><tbody>{}{}{}</tbody></table>",
            range("overall accuracy", Some(&v.oa)),
            range("Kappa", v.kappa.as_ref()),
            range("figure of merit", v.fom.as_ref())
        ),
        None => String::new(),
    };
    out.html.push(format!(
        "<section id=\"ensemble\"><h2>Seed ensemble</h2><p class=\"lead\">{members} runs of every scenario with seeds derived from the study's (the first is the study's own run, the maps above). Maps: the share of members in which a cell changed class against the base year (<code>change_frequency_*.tif</code>; <code>class_frequency_*.tif</code> holds the share per class, one band each).</p><div class=\"maps\">{figs}</div><h3>Carbon storage over the members</h3>{carbon}{validation}</section>"
    ));
    Ok(())
}

/// The GWR coefficient maps `gwr_coef_<class>.tif` (one band per parameter): every
/// driver's local coefficient per class, each on its own scale symmetric about 0.
pub fn coefficients(
    dir: &Path,
    img_dir: &Path,
    run: &RunJson,
    legend: &[LegendEntry],
    out: &mut Sections,
) -> anyhow::Result<()> {
    let Some(classes) = run.gwr.as_ref().map(|g| &g.analysis.classes) else {
        return Ok(());
    };
    let mut blocks = String::new();
    for entry in legend {
        let Some(p) = classes
            .get(&entry.name)
            .and_then(|c| c.fit())
            .map(|f| &f.coefficient_map)
        else {
            continue;
        };
        let path = {
            let local = dir.join(p.file_name().unwrap_or_default());
            if local.exists() {
                local
            } else {
                p.clone()
            }
        };
        if !path.exists() {
            continue;
        }
        let names = band_names(&path)?;
        let mut figs = String::new();
        for (b, band) in names.iter().enumerate() {
            let (img, max) = png::diverging_band(&path, b + 1)?;
            let param = band.strip_prefix("b_").unwrap_or(band);
            let name = format!("gwr_coef_{}_{}.png", entry.name, param);
            out.png(img_dir.join(&name), &img, png::change_palette());
            figs.push_str(&map_figure(
                &esc(param),
                &format!("report/{name}"),
                &img,
                &svg::diverging_legend(max, MAP_DISPLAY_WIDTH, "local coefficient"),
            ));
        }
        blocks.push_str(&format!(
            "<h3>{}</h3><div class=\"maps\">{figs}</div>",
            super::swatch(legend)(&entry.name)
        ));
    }
    if !blocks.is_empty() {
        out.html.push(format!(
            "<section id=\"gwr-maps\"><h2>GWR local coefficients</h2><p class=\"lead\">Local coefficients of the GWR of each class's suitability on all drivers (standardised when <code>[gwr] standardize</code>), on a coarse grid; each map on its own scale, symmetric about 0 (brown negative, blue-green positive).</p>{blocks}</section>"
        ));
    }
    Ok(())
}

/// Band descriptions of a GeoTIFF (`band N` where one has none).
fn band_names(path: &Path) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let ds = flus_shared::raster::open(path)?;
    (1..=ds.raster_count())
        .map(|b| {
            let band = ds
                .rasterband(b)
                .with_context(|| format!("{}: band {b}", path.display()))?;
            let d = gdal::Metadata::description(&band).unwrap_or_default();
            Ok(if d.is_empty() { format!("band {b}") } else { d })
        })
        .collect()
}

/// The validation maps written by the validation (`run.json` `validation.maps`):
/// observed change, simulated change, and the four figure-of-merit components.
pub fn validation(
    dir: &Path,
    img_dir: &Path,
    run: &RunJson,
    legend: &[LegendEntry],
    ready: &mut super::Prerendered,
    out: &mut Sections,
) -> anyhow::Result<()> {
    let Some(v) = &run.validation else {
        return Ok(());
    };
    let Some(maps) = &v.maps else {
        return Ok(());
    };
    let file = |f: &Option<String>| f.as_ref().map(|f| dir.join(f)).filter(|p| p.exists());
    let (Some(observed), Some(simulated), Some(components)) = (
        file(&maps.observed_change),
        file(&maps.simulated_change),
        file(&maps.components),
    ) else {
        return Ok(());
    };
    let mut change_legend = vec![LegendEntry {
        name: "unchanged".into(),
        color: hex(change_maps::UNCHANGED_RGB),
    }];
    change_legend.extend(legend.iter().map(|e| LegendEntry {
        name: format!("to {}", e.name),
        color: e.color.clone(),
    }));
    let comp_legend: Vec<LegendEntry> = change_maps::COMPONENTS
        .iter()
        .map(|&(_, name, rgb)| LegendEntry {
            name: name.to_string(),
            color: hex(rgb),
        })
        .collect();
    let (from, to) = (v.from, v.to);
    let mut figs = String::new();
    for (path, title, entries) in [
        (
            &observed,
            format!("Observed change <small>{from} → {to}</small>"),
            &change_legend,
        ),
        (
            &simulated,
            format!("Simulated change <small>{from} → {to}</small>"),
            &change_legend,
        ),
        (
            &components,
            "Figure of merit components".to_string(),
            &comp_legend,
        ),
    ] {
        let (img, palette, encoded) = match ready.take_class(path) {
            Some(r) => r,
            None => {
                let (img, palette) = png::class_map(path)?;
                (img, palette, None)
            }
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let name = format!("{stem}.png");
        out.png_or_encoded(img_dir.join(&name), &img, palette, encoded);
        figs.push_str(&map_figure(
            &title,
            &format!("report/{name}"),
            &img,
            &html::legend(entries),
        ));
    }
    let m = &v.simulation;
    let count = |n: u64| svg::fmt_num(n as f64);
    out.html.push(format!(
        "<section id=\"validation-maps\"><h2>Validation maps</h2><p class=\"lead\">Where the land use changed from {from} to {to}, observed and simulated, and the four components of the figure of merit: hits {} (change simulated as the right class), misses {} (change simulated as persistence), wrong hits {} (change to the wrong class), false alarms {} (persistence simulated as change) cells.</p><div class=\"maps\">{figs}</div></section>",
        count(m.hits), count(m.misses), count(m.wrong_hits), count(m.false_alarms)
    ));
    Ok(())
}
