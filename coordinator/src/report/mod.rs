//! `report.html` of a run folder: PNG maps of the base year and every scenario (class
//! colours of the land-use GeoTIFFs, legend, scale bar), carbon change maps, SVG charts
//! of area per class and total carbon, and the demand, validation and GWR tables.
//! Built from `run.json` and the files of the folder only, so `flus report` can rebuild
//! it; it opens offline (no external resources).

pub mod gwr;
pub mod html;
pub mod maps;
pub mod png;
pub mod svg;
pub mod zones;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::run_json::RunJson;
use anyhow::Context;
use flus_shared::files;

use html::{esc, LegendEntry};

/// Width at which every map is shown on the page, CSS pixels.
const MAP_DISPLAY_WIDTH: f64 = 250.0;

/// What [`build`] wrote.
#[derive(Debug)]
pub struct Built {
    /// The page.
    pub report: PathBuf,
    /// The PNG images it shows.
    pub images: Vec<PathBuf>,
}

/// One map of the run (the base year or a scenario), as listed in run.json `maps`.
pub(crate) type RunMap = crate::run_json::MapJson;

impl RunMap {
    /// The map's figure title: the scenario with its year, or "Base year" with its label.
    fn title(&self) -> String {
        match &self.scenario {
            Some(s) => format!(
                "{} <small>{}</small>",
                esc(s),
                esc(self.label.rsplit('_').next().unwrap_or(""))
            ),
            None => format!("Base year <small>{}</small>", esc(&self.label)),
        }
    }
}

/// A CSV file as header and rows; `None` when the run did not write it.
type Csv = Option<(Vec<String>, Vec<Vec<String>>)>;

fn read_csv(path: &Path) -> anyhow::Result<Csv> {
    if !path.exists() {
        return Ok(None);
    }
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let header = r
        .headers()
        .with_context(|| format!("{}: header", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        rows.push(rec.iter().map(str::to_string).collect());
    }
    Ok(Some((header, rows)))
}

fn legend_of(run: &RunJson) -> Vec<LegendEntry> {
    run.legend
        .iter()
        .map(|e| LegendEntry {
            name: e.name.clone(),
            color: e.color.clone(),
        })
        .collect()
}

/// The map rasters of a run read and downsampled ahead of [`build_with`] (by `flus run`
/// while the workers run the GWR): land use, carbon storage and carbon change, by path;
/// the class and change maps' PNGs encoded too (their palettes are known then; the
/// storage maps' scale is the largest of all maps).
#[derive(Default)]
pub struct Prerendered {
    class: HashMap<PathBuf, (png::MapImage, png::Palette)>,
    change: HashMap<PathBuf, (png::MapImage, f64)>,
    storage: HashMap<PathBuf, png::StorageValues>,
    /// PNG bytes of the class and change maps, by raster.
    encoded: HashMap<PathBuf, Vec<u8>>,
}

impl Prerendered {
    /// Reads and downsamples, several at a time, the land-use, carbon storage and carbon
    /// change rasters of `maps` in run folder `dir` (the report's images of them, the
    /// same as [`build`] makes from the files).
    pub fn read(dir: &Path, maps: &[RunMap]) -> anyhow::Result<Self> {
        use rayon::prelude::*;
        let class: Vec<PathBuf> = maps.iter().map(|m| dir.join(&m.landuse)).collect();
        let storage: Vec<PathBuf> = maps
            .iter()
            .filter_map(|m| m.carbon.as_ref().map(|c| dir.join(c)))
            .filter(|p| p.exists())
            .collect();
        let mut pre = Self::of_files(&class, &storage)?;
        let change: Vec<_> = maps
            .par_iter()
            .filter_map(|m| m.carbon_change.as_ref())
            .map(|c| {
                let p = dir.join(c);
                let (img, max) = png::change_map(&p)?;
                let bytes = png::encode(&img, &png::change_palette())
                    .with_context(|| p.display().to_string())?;
                Ok((p, img, max, bytes))
            })
            .collect::<anyhow::Result<_>>()?;
        for (p, img, max, bytes) in change {
            pre.encoded.insert(p.clone(), bytes);
            pre.change.insert(p, (img, max));
        }
        Ok(pre)
    }

    /// Reads and downsamples the class rasters `class` and the carbon storage rasters
    /// `storage` (by `flus run` on the thread that wrote them, beside the workers' work).
    pub fn of_files(class: &[PathBuf], storage: &[PathBuf]) -> anyhow::Result<Self> {
        use rayon::prelude::*;
        let read: Vec<_> = class
            .par_iter()
            .map(|p| {
                let (img, palette) = png::class_map(p)?;
                let bytes = png::encode(&img, &palette).with_context(|| p.display().to_string())?;
                Ok((p.clone(), img, palette, bytes))
            })
            .collect::<anyhow::Result<_>>()?;
        let storage = storage
            .par_iter()
            .map(|p| Ok((p.clone(), png::StorageValues::read(p)?)))
            .collect::<anyhow::Result<_>>()?;
        let mut pre = Self {
            storage,
            ..Self::default()
        };
        for (p, img, palette, bytes) in read {
            pre.encoded.insert(p.clone(), bytes);
            pre.class.insert(p, (img, palette));
        }
        Ok(pre)
    }

    /// Adds the images of `other`.
    pub fn merge(&mut self, other: Prerendered) {
        self.class.extend(other.class);
        self.change.extend(other.change);
        self.storage.extend(other.storage);
        self.encoded.extend(other.encoded);
    }

    /// The class map of raster `path` read ahead, with its PNG's bytes.
    fn take_class(
        &mut self,
        path: &Path,
    ) -> Option<(png::MapImage, png::Palette, Option<Vec<u8>>)> {
        let (img, palette) = self.class.remove(path)?;
        Some((img, palette, self.encoded.remove(path)))
    }

    /// The change map of raster `path` (image, largest |value|) and its PNG bytes when
    /// read ahead.
    fn take_change(&mut self, path: &Path) -> Option<(png::MapImage, f64, Option<Vec<u8>>)> {
        let (img, max) = self.change.remove(path)?;
        Some((img, max, self.encoded.remove(path)))
    }
}

/// Writes `report/` PNGs and `report.html` into run folder `dir` from its run.json.
pub fn build(dir: &Path) -> anyhow::Result<Built> {
    build_with(dir, Prerendered::default())
}

/// [`build`], with the map images already read in `pre` taken from there (the others
/// read from the files).
pub fn build_with(dir: &Path, mut pre: Prerendered) -> anyhow::Result<Built> {
    let run = RunJson::read(dir)?;
    let maps = &run.maps;
    let legend = legend_of(&run);
    let img_dir = dir.join("report");
    files::ensure_dir(&img_dir)?;
    // the land-use and change maps' PNGs (the other sections' are in `extra`)
    let mut own = maps::Sections::default();

    let mut sections = vec![landuse_maps(dir, &img_dir, &run, &mut pre, &mut own)?];

    // carbon storage maps on one scale
    let mut extra = maps::Sections::default();
    maps::storage(dir, &img_dir, maps, &mut pre.storage, &mut extra)?;
    sections.append(&mut extra.html);

    if let Some(s) = change_maps(dir, &img_dir, maps, &mut pre, &mut own)? {
        sections.push(s);
    }

    sections.push(charts(dir, &legend, maps)?);
    let carbon = read_csv(&dir.join("carbon_storage.csv"))?;
    sections.push(scenario_table(&run, maps, &carbon));
    sections.extend(tables(dir, &legend, &run)?);
    // the validation maps right after the validation table, the coefficient maps last
    maps::validation(dir, &img_dir, &run, &legend, &mut pre, &mut extra)?;
    let after_validation = sections
        .iter()
        .position(|s| s.starts_with("<section id=\"validation\">"))
        .map_or(sections.len(), |i| i + 1);
    for (i, s) in extra.html.drain(..).enumerate() {
        sections.insert(after_validation + i, s);
    }
    maps::ensemble(dir, &img_dir, &run, &mut extra)?;
    maps::coefficients(dir, &img_dir, &run, &legend, &mut extra)?;
    sections.append(&mut extra.html);
    let mut images = std::mem::take(&mut own.images);
    images.append(&mut extra.images);
    // every PNG at once
    own.pending.append(&mut extra.pending);
    png::write_all(&own.pending)?;

    let header = header_html(&run);
    let footer = format!(
        "Made by flus {} from <code>run.json</code> of this folder; maps and tables are the files beside it. Rebuild with <code>flus report {}</code>.",
        esc(&run.versions.flus),
        esc(&dir.display().to_string())
    );
    let title = format!("{} — flus run report", run.study);
    let page = html::page(&title, &header, &sections, &footer);
    let report = dir.join("report.html");
    files::write_atomic(&report, page.as_bytes())?;
    Ok(Built { report, images })
}

/// The land-use maps' section: every map's PNG (taken from `pre` when read ahead,
/// otherwise read and downsampled several at a time), written in run order into `own`.
fn landuse_maps(
    dir: &Path,
    img_dir: &Path,
    run: &RunJson,
    pre: &mut Prerendered,
    own: &mut maps::Sections,
) -> anyhow::Result<String> {
    use rayon::prelude::*;
    let (maps, legend) = (&run.maps, legend_of(run));
    // the maps read and downsampled several at a time, written in run order
    let ready: Vec<_> = maps
        .iter()
        .map(|m| pre.take_class(&dir.join(&m.landuse)))
        .collect();
    let class_maps: Vec<_> = maps
        .par_iter()
        .zip(ready)
        .map(|(m, r)| match r {
            Some(r) => Ok(r),
            None => png::class_map(&dir.join(&m.landuse)).map(|(i, p)| (i, p, None)),
        })
        .collect::<anyhow::Result<_>>()?;
    let mut figures = Vec::new();
    for (m, (img, palette, encoded)) in maps.iter().zip(class_maps) {
        let name = format!("landuse_{}.png", m.label);
        own.png_or_encoded(img_dir.join(&name), &img, palette, encoded);
        figures.push(map_figure(
            &m.title(),
            &format!("report/{name}"),
            &img,
            &html::legend(&legend),
        ));
    }
    Ok(landuse_section(maps, &figures))
}

/// The carbon change maps' section (None without change maps): every map's PNG on its
/// own symmetric scale, written into `own`.
fn change_maps(
    dir: &Path,
    img_dir: &Path,
    maps: &[RunMap],
    pre: &mut Prerendered,
    own: &mut maps::Sections,
) -> anyhow::Result<Option<String>> {
    use rayon::prelude::*;
    let changed: Vec<(&RunMap, &String)> = maps
        .iter()
        .filter_map(|m| m.carbon_change.as_ref().map(|c| (m, c)))
        .collect();
    let ready: Vec<_> = changed
        .iter()
        .map(|(_, c)| pre.take_change(&dir.join(c)))
        .collect();
    let change_maps: Vec<_> = changed
        .par_iter()
        .zip(ready)
        .map(|((_, c), r)| match r {
            Some(r) => Ok(r),
            None => png::change_map(&dir.join(c)).map(|(i, m)| (i, m, None)),
        })
        .collect::<anyhow::Result<_>>()?;
    let mut figs = String::new();
    for ((m, _), (img, max, encoded)) in changed.iter().zip(change_maps) {
        let name = format!("carbon_change_{}.png", m.label);
        own.png_or_encoded(img_dir.join(&name), &img, png::change_palette(), encoded);
        let title = format!(
            "{} <small>{} − base year</small>",
            esc(m.scenario.as_deref().unwrap_or(&m.label)),
            m.year
        );
        figs.push_str(&map_figure(
            &title,
            &format!("report/{name}"),
            &img,
            &svg::ramp_legend(max, MAP_DISPLAY_WIDTH),
        ));
    }
    Ok((!figs.is_empty()).then(|| format!(
        "<section id=\"carbon-maps\"><h2>Carbon storage change</h2><p class=\"lead\">Change of carbon stored per cell, scenario minus base year (t C per cell; each map on its own symmetric scale).</p><div class=\"maps\">{figs}</div></section>"
    )))
}

fn map_figure(title: &str, src: &str, img: &png::MapImage, below: &str) -> String {
    let w = MAP_DISPLAY_WIDTH;
    let h = (w * img.height as f64 / img.width.max(1) as f64).round();
    format!(
        "<figure class=\"map\" style=\"width:{}px\"><figcaption>{title}</figcaption><a href=\"{src}\"><img src=\"{src}\" width=\"{w}\" height=\"{h}\" alt=\"map\"></a>{}{below}</figure>",
        w + 22.0,
        svg::scale_bar(img.ground_width, w, img.geographic)
    )
}

fn legend_color<'a>(legend: &'a [LegendEntry], name: &str) -> &'a str {
    legend
        .iter()
        .find(|e| e.name == name)
        .map_or("#999", |e| e.color.as_str())
}

fn swatch(legend: &[LegendEntry]) -> impl Fn(&str) -> String + '_ {
    move |name: &str| {
        if legend.iter().any(|e| e.name == name) {
            format!(
                "<span class=\"swatch\" style=\"background:{}\"></span>{}",
                esc(legend_color(legend, name)),
                esc(name)
            )
        } else {
            esc(name)
        }
    }
}

/// The land-use section: every map side by side; with staged years, a strip per
/// scenario (the base map, then its stages in year order).
fn landuse_section(maps: &[RunMap], figures: &[String]) -> String {
    let staged = scenario_names(maps).iter().any(|n| {
        maps.iter()
            .filter(|m| m.scenario.as_ref() == Some(n))
            .count()
            > 1
    });
    if !staged {
        return format!(
            "<section id=\"maps\"><h2>Land use</h2><p class=\"lead\">The observed base-year map and the simulated map of every scenario (class colours as in the GeoTIFFs; click a map for full resolution).</p><div class=\"maps\">{}</div></section>",
            figures.concat()
        );
    }
    let base: String = maps
        .iter()
        .zip(figures)
        .filter(|(m, _)| m.scenario.is_none())
        .map(|(_, f)| f.as_str())
        .collect();
    let mut strips = String::new();
    for name in scenario_names(maps) {
        let figs: String = maps
            .iter()
            .zip(figures)
            .filter(|(m, _)| m.scenario.as_ref() == Some(&name))
            .map(|(_, f)| f.as_str())
            .collect();
        strips.push_str(&format!(
            "<h3>{}</h3><div class=\"maps strip\">{base}{figs}</div>",
            esc(&name)
        ));
    }
    format!(
        "<section id=\"maps\"><h2>Land use</h2><p class=\"lead\">One strip per scenario: the observed base-year map, then the simulated map of every staged year, each stage starting from the one before it (class colours as in the GeoTIFFs; click a map for full resolution).</p>{strips}</section>"
    )
}

/// The scenarios of `maps`, in order of first appearance.
fn scenario_names(maps: &[RunMap]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in maps {
        if let Some(s) = &m.scenario {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
    }
    out
}

/// The carbon trajectory: total storage (`carbon_storage.csv`) against year, one line
/// per scenario from the base map through its stages; None when no scenario has more
/// than one stage.
fn trajectory_chart(maps: &[RunMap], carbon: &Csv, ensemble: &Csv) -> Option<String> {
    let (_, rows) = carbon.as_ref()?;
    // carbon_ensemble.csv: map, members, mean_t, sd_t, p2_5_t, p97_5_t, ...
    let interval = |label: &str| -> Option<(f64, f64)> {
        let (_, rows) = ensemble.as_ref()?;
        let r = rows
            .iter()
            .find(|r| r.first().map(String::as_str) == Some(label))?;
        Some((r.get(4)?.parse().ok()?, r.get(5)?.parse().ok()?))
    };
    let total = |label: &str| -> Option<f64> {
        rows.iter()
            .find(|r| r.first().map(String::as_str) == Some(label))?
            .get(1)?
            .parse()
            .ok()
    };
    let base = maps.iter().find(|m| m.scenario.is_none());
    let start = base.and_then(|b| Some((b.year as f64, total(&b.label)?)));
    let names = scenario_names(maps);
    let mut lines = Vec::new();
    for name in &names {
        let mut points: Vec<(f64, f64)> = start.into_iter().collect();
        let mut bars = Vec::new();
        for m in maps.iter().filter(|m| m.scenario.as_ref() == Some(name)) {
            if let Some(t) = total(&m.label) {
                let y = m.year;
                points.push((y as f64, t));
                if let Some((lo, hi)) = interval(&m.label) {
                    bars.push((y as f64, lo, hi));
                }
            }
        }
        lines.push(svg::Line { name, points, bars });
    }
    if !lines
        .iter()
        .any(|l| l.points.len() > 2 || !l.bars.is_empty())
    {
        return None;
    }
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (div, unit) = storage_unit(max);
    for l in &mut lines {
        l.points.iter_mut().for_each(|p| p.1 /= div);
        l.bars.iter_mut().for_each(|b| {
            b.1 /= div;
            b.2 /= div;
        });
    }
    Some(format!(
        "<div><h3>Carbon trajectory</h3>{}</div>",
        svg::lines(&lines, &format!("storage, {unit}"))
    ))
}

/// The unit a storage up to `max` t is shown in: (divisor, name).
fn storage_unit(max: f64) -> (f64, &'static str) {
    if max >= 1e6 {
        (1e6, "Mt C")
    } else if max >= 1e3 {
        (1e3, "kt C")
    } else {
        (1.0, "t C")
    }
}

fn charts(dir: &Path, legend: &[LegendEntry], maps: &[RunMap]) -> anyhow::Result<String> {
    let mut s = String::from("<section id=\"charts\"><h2>Area and carbon</h2><p class=\"lead\">Area of every class per map, and total carbon storage per map (InVEST carbon model, pools of the study).</p><div class=\"charts\">");
    if let Some((header, rows)) = read_csv(&dir.join("area_by_class.csv"))? {
        let groups: Vec<String> = header
            .iter()
            .skip(2)
            .map(|h| h.trim_end_matches(" km2").replace('_', " "))
            .collect();
        let class_rows: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| legend.iter().any(|e| Some(&e.name) == r.first()))
            .collect();
        let series: Vec<svg::Series> = class_rows
            .iter()
            .map(|r| svg::Series {
                name: &r[0],
                color: legend_color(legend, &r[0]),
            })
            .collect();
        let values: Vec<Vec<f64>> = (0..groups.len())
            .map(|g| {
                class_rows
                    .iter()
                    .map(|r| r.get(g + 2).and_then(|v| v.parse().ok()).unwrap_or(0.0))
                    .collect()
            })
            .collect();
        s.push_str("<div><h3>Area per class</h3>");
        s.push_str(&svg::grouped_bars(&groups, &series, &values, "area, km²"));
        s.push_str("</div>");
    }
    if let Some((_, rows)) = read_csv(&dir.join("carbon_storage.csv"))? {
        let totals: Vec<f64> = rows
            .iter()
            .map(|r| r.get(1).and_then(|v| v.parse().ok()).unwrap_or(0.0))
            .collect();
        let max = totals.iter().cloned().fold(0.0, f64::max);
        let (div, unit) = storage_unit(max);
        // "urbanized_2060" -> "urbanized" over "2060, -58.3 %"
        let split = |l: &str| -> (String, String) {
            match l.rsplit_once('_') {
                Some((n, y)) => (n.replace('_', " "), y.to_string()),
                None => (l.to_string(), String::new()),
            }
        };
        let labels: Vec<String> = rows.iter().map(|r| split(&r[0]).0).collect();
        let values: Vec<f64> = totals.iter().map(|t| t / div).collect();
        let notes: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let p: f64 = r.get(3).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                let year = split(&r[0]).1;
                if i == 0 {
                    "base year".into()
                } else {
                    format!(
                        "{year}, {}{:.1} %",
                        if p >= 0.0 { "+" } else { "−" },
                        p.abs()
                    )
                }
            })
            .collect();
        let colors: Vec<&str> = (0..rows.len())
            .map(|i| if i == 0 { "#7b8794" } else { "#2f7d5b" })
            .collect();
        s.push_str("<div><h3>Total carbon storage</h3>");
        s.push_str(&svg::bars(
            &labels,
            &values,
            &notes,
            &colors,
            &format!("storage, {unit}"),
        ));
        s.push_str("</div>");
    }
    let ensemble = read_csv(&dir.join("carbon_ensemble.csv"))?;
    if let Some(chart) =
        trajectory_chart(maps, &read_csv(&dir.join("carbon_storage.csv"))?, &ensemble)
    {
        s.push_str(&chart);
    }
    if let Some(chart) = contributions_chart(dir, legend)? {
        s.push_str(&chart);
    }
    s.push_str("</div></section>");
    Ok(s)
}

/// The chart of `driver_contributions.csv` (PLUS's LEAS, docs/design.md §3a) when the
/// folder has one: per driver, a bar per class that expanded, the driver's share of the
/// error growth in percent (a negative figure, from an older file of accuracy
/// decreases, is drawn as 0).
fn contributions_chart(dir: &Path, legend: &[LegendEntry]) -> anyhow::Result<Option<String>> {
    let Some((header, rows)) = read_csv(&dir.join("driver_contributions.csv"))? else {
        return Ok(None);
    };
    let drivers: Vec<String> = header.iter().skip(1).cloned().collect();
    // classes without a forest (no expansion in the period) have empty cells
    let grown: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r.iter().skip(1).any(|v| !v.is_empty()))
        .collect();
    let series: Vec<svg::Series> = grown
        .iter()
        .map(|r| svg::Series {
            name: &r[0],
            color: legend_color(legend, &r[0]),
        })
        .collect();
    let values: Vec<Vec<f64>> = (0..drivers.len())
        .map(|d| {
            grown
                .iter()
                .map(|r| {
                    let v: f64 = r.get(d + 1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                    (v * 100.0).max(0.0)
                })
                .collect()
        })
        .collect();
    Ok(Some(format!(
        "<div><h3>Driver contributions (LEAS)</h3>{}</div>",
        svg::grouped_bars(&drivers, &series, &values, "% of the error growth")
    )))
}

fn scenario_table(run: &RunJson, maps: &[RunMap], carbon: &Csv) -> String {
    let mut s = String::from("<section id=\"scenarios\"><h2>Maps and carbon storage</h2><p class=\"lead\">Every map of the run: CA iterations and whether the land demand was met, carbon storage (t C) and its change against the base year.</p><table><thead><tr><th>map</th><th>file</th><th>iterations</th><th>demand</th><th>stop reason</th><th>carbon storage, t</th><th>change, t</th><th>change, %</th></tr></thead><tbody>");
    for m in maps {
        let row = carbon
            .as_ref()
            .and_then(|(_, rows)| rows.iter().find(|r| r.first() == Some(&m.label)));
        let num = |i: usize| {
            row.and_then(|r| r.get(i))
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(String::new(), svg::fmt_num)
        };
        let (name, iters, demand, stop) = match &m.scenario {
            Some(name) => {
                // the stage of this map (staged years), else the scenario's one run
                let sc = run.scenarios.get(name).map(|scenario| {
                    scenario
                        .stages
                        .iter()
                        .find(|s| s.label == m.label)
                        .unwrap_or(&scenario.last)
                });
                let met = sc.is_some_and(|s| s.demand_met);
                let stop = sc
                    .and_then(|s| serde_json::to_value(s.stop_reason).ok())
                    .and_then(|v| v.as_str().map(|r| r.replace('_', " ")))
                    .unwrap_or_default();
                (
                    esc(name),
                    sc.map_or(0, |s| s.iterations).to_string(),
                    format!(
                        "<td class=\"{}\">{}</td>",
                        if met { "ok" } else { "bad" },
                        if met { "met" } else { "not met" }
                    ),
                    esc(&stop),
                )
            }
            None => (
                format!("base year {}", esc(&m.label)),
                "–".into(),
                "<td>observed</td>".into(),
                String::new(),
            ),
        };
        s.push_str(&format!(
            "<tr><th scope=\"row\">{name}</th><td><code>{}</code></td><td class=\"num\">{iters}</td>{demand}<td>{stop}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&m.landuse),
            num(1),
            num(2),
            num(3),
        ));
    }
    s.push_str("</tbody></table></section>");
    s
}

fn tables(dir: &Path, legend: &[LegendEntry], run: &RunJson) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    if let Some((header, rows)) = read_csv(&dir.join("demand.csv"))? {
        let header: Vec<String> = header
            .iter()
            .map(|h| {
                h.strip_prefix("cells_")
                    .map(|y| format!("{y} observed"))
                    .unwrap_or_else(|| h.replace('_', " "))
            })
            .collect();
        out.push(format!(
            "<section id=\"demand\"><h2>Land demand (cells)</h2><p class=\"lead\">Observed cells per class and the Markov demand of every scenario for the target year.</p>{}</section>",
            html::table(&header, &rows, None, swatch(legend), |_| "")
        ));
    }
    if let Some((header, rows)) = read_csv(&dir.join("unmet_demand.csv"))? {
        out.push(format!(
            "<section id=\"unmet\"><h2>Demand not met</h2><p class=\"lead\">These scenarios ran with <code>[ca] unmet = \"best_effort\"</code>: their conversion matrix and restrictions cannot reach the demand; the maps are the closest the CA got (gap = demand − cells reached).</p>{}</section>",
            html::table(&header, &rows, None, esc, |_| "")
        ));
    }
    let validation = match read_csv(&dir.join("validation_metrics.csv"))? {
        Some((header, rows)) => {
            let header: Vec<String> = header.iter().map(|h| metric_words(h)).collect();
            format!(
            "<p class=\"lead\">The CA run on the past period compared with the real map: the simulation beside the persistence baseline (no change) and a random allocation of the same demand. OA overall accuracy, FoM figure of merit.</p>{}",
            html::table(&header, &rows, Some(3), esc, |r| {
                if r.first().map(String::as_str) == Some("simulation") {
                    "hl"
                } else {
                    ""
                }
            })
        )
        }
        None => "<p class=\"lead\">Validation was not run (<code>--no-validation</code>).</p>"
            .to_string(),
    };
    let patches = patches_table(run, legend);
    out.push(format!(
        "<section id=\"validation\"><h2>Validation</h2>{validation}{patches}</section>"
    ));
    if let Some(section) =
        zones::density_section(&read_csv(&dir.join("carbon_density_by_zone.csv"))?)
    {
        out.push(section);
    }
    if let Some(section) = gwr::factor_section(
        &read_csv(&dir.join("gwr_factor_r2.csv"))?,
        legend,
        run.gwr.as_ref().map(|g| &g.analysis),
    ) {
        out.push(section);
    }
    Ok(out)
}

/// The validation's patches of new land per class (run.json `validation.patches`):
/// observed beside simulated, as PLUS reports its landscape figures; empty without them.
fn patches_table(run: &RunJson, legend: &[LegendEntry]) -> String {
    let Some(patches) = run.validation.as_ref().and_then(|v| v.patches.as_ref()) else {
        return String::new();
    };
    let header: Vec<String> = [
        "class",
        "new cells observed",
        "patches observed",
        "mean patch observed",
        "new cells simulated",
        "patches simulated",
        "mean patch simulated",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = patches
        .by_class
        .iter()
        .map(|(name, c)| {
            let mut r = vec![name.clone()];
            for side in [&c.observed, &c.simulated] {
                r.push(side.cells.to_string());
                r.push(side.patches.to_string());
                r.push(side.mean_size.map_or("n/a".into(), |x| format!("{x:.2}")));
            }
            r
        })
        .collect();
    format!(
        "<p class=\"lead\">The landscape figures PLUS is judged by: the new land of each class (cells that became it over the period), its number of 8-connected patches and their mean size in cells, observed and simulated.</p>{}",
        html::table(&header, &rows, None, swatch(legend), |_| "")
    )
}

/// A validation metric's column name in words (`producer_accuracy` -> "producer's
/// accuracy").
fn metric_words(h: &str) -> String {
    match h {
        "oa" => "overall accuracy".into(),
        "kappa" => "Kappa".into(),
        "kloc" => "Kloc".into(),
        "khisto" => "Khisto".into(),
        "fom" => "figure of merit".into(),
        "producer_accuracy" => "producer's accuracy".into(),
        "user_accuracy" => "user's accuracy".into(),
        other => other.replace('_', " "),
    }
}

fn header_html(run: &RunJson) -> String {
    let fact = |k: &str, v: String| format!("<span>{k}: <b>{}</b></span>", esc(&v));
    let facts = [
        fact("seed", run.seed.to_string()),
        fact("valid cells", svg::fmt_num(run.valid_cells as f64)),
        fact("workers", run.workers.len().to_string()),
        fact("wall time", format!("{:.1} s", run.wall_seconds)),
        fact("flus", run.versions.flus.clone()),
        fact("GDAL", run.versions.gdal.clone()),
        fact(
            "config sha256",
            run.config_sha256.chars().take(12).collect(),
        ),
    ];
    let years = run
        .target_years
        .iter()
        .map(|y| y.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "<h1>{}</h1><p>Land use {} → {} under {} scenario(s): FLUS simulation, carbon storage and driver analysis.</p><div class=\"facts\">{}</div>",
        esc(&run.study),
        run.base_year,
        if years.is_empty() {
            run.target_year.to_string()
        } else {
            years
        },
        run.scenarios.len(),
        facts.join("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_contributions_become_bars_in_percent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(contributions_chart(dir.path(), &[]).unwrap().is_none());
        std::fs::write(
            dir.path().join("driver_contributions.csv"),
            "class,dem,slope\nforest,,\nbuilt-up,0.734937,-0.0012\n",
        )
        .unwrap();
        let legend = [LegendEntry {
            name: "built-up".into(),
            color: "#d7301f".into(),
        }];
        let svg = contributions_chart(dir.path(), &legend).unwrap().unwrap();
        // a share of 0.734937 = 73.5 % (3 significant digits); a negative figure is drawn
        // as 0; forest (no expansion, empty cells) has no bar
        assert!(
            svg.contains("<title>dem: built-up 73.5 % of the error growth</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("<title>slope: built-up 0.00 % of the error growth</title>"),
            "{svg}"
        );
        assert!(svg.contains("fill=\"#d7301f\""));
        assert!(!svg.contains("forest"), "{svg}");
    }
}
