//! PNG maps of the report: a class map with its GeoTIFF colour table, a carbon change
//! map on a diverging ramp; large grids downsampled (majority for classes, nearest for
//! values) to at most [`MAX_WIDTH`] pixels wide; written with GDAL's PNG driver
//! (CreateCopy of a MEM dataset) to a temporary name renamed on success.

use std::path::Path;

use anyhow::Context;
use flus_shared::carbon::CARBON_NODATA;
use flus_shared::files;
use flus_shared::raster;
use gdal::raster::{Buffer, ColorEntry, ColorTable, PaletteInterpretation, RasterCreationOptions};
use gdal::DriverManager;

/// Widest PNG map written, pixels.
pub const MAX_WIDTH: usize = 1200;

/// A palette of up to 256 RGBA colours, index = pixel value.
pub type Palette = Vec<[u8; 4]>;

/// A map as written: pixels (palette indices), size, and the ground size of a pixel.
#[derive(Clone, Debug)]
pub struct MapImage {
    /// Pixels, row-major.
    pub pixels: Vec<u8>,
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// Ground width of the whole map, in the CRS unit (m for projected grids).
    pub ground_width: f64,
    /// Whether the CRS is geographic (degrees) rather than projected.
    pub geographic: bool,
}

/// The downsampling factor that brings `width` to at most [`MAX_WIDTH`].
pub fn factor_for(width: usize) -> usize {
    width.div_ceil(MAX_WIDTH).max(1)
}

/// Majority of each `f` x `f` block of `values` (`w` x `h`); ties go to the smaller
/// value; `nodata` counts only when the whole block is nodata. Rows of blocks are
/// computed in parallel; each block counts and clears only its own values (a whole
/// 256-entry histogram per block cost more than the block itself at small factors).
pub fn downsample_majority(
    values: &[u8],
    w: usize,
    h: usize,
    f: usize,
    nodata: Option<u8>,
) -> (Vec<u8>, usize, usize) {
    use rayon::prelude::*;
    if f <= 1 {
        return (values.to_vec(), w, h);
    }
    let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
    let mut out = vec![0u8; ow * oh];
    out.par_chunks_mut(ow).enumerate().for_each(|(by, row)| {
        let mut counts = [0u32; 256];
        let rows = by * f..((by + 1) * f).min(h);
        for (bx, px) in row.iter_mut().enumerate() {
            let cols = bx * f..((bx + 1) * f).min(w);
            let block = || {
                rows.clone()
                    .flat_map(|y| values[y * w + cols.start..y * w + cols.end].iter().copied())
            };
            block().for_each(|v| counts[v as usize] += 1);
            let mut best: Option<(u8, u32)> = None;
            for v in block() {
                let n = counts[v as usize];
                if Some(v) == nodata {
                    continue;
                }
                if best.is_none_or(|(bv, bn)| n > bn || (n == bn && v < bv)) {
                    best = Some((v, n));
                }
            }
            block().for_each(|v| counts[v as usize] = 0);
            *px = best.map(|(v, _)| v).or(nodata).unwrap_or(0);
        }
    });
    (out, ow, oh)
}

/// The value at the centre of each `f` x `f` block (nearest neighbour).
pub fn downsample_nearest<T: Copy>(
    values: &[T],
    w: usize,
    h: usize,
    f: usize,
) -> (Vec<T>, usize, usize) {
    if f <= 1 {
        return (values.to_vec(), w, h);
    }
    let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
    let mut out = Vec::with_capacity(ow * oh);
    for by in 0..oh {
        let y = (by * f + f / 2).min(h - 1);
        for bx in 0..ow {
            let x = (bx * f + f / 2).min(w - 1);
            out.push(values[y * w + x]);
        }
    }
    (out, ow, oh)
}

/// A class GeoTIFF (Byte with colour table) as a downsampled image and its palette
/// (the colour table; nodata transparent).
pub fn class_map(path: &Path) -> anyhow::Result<(MapImage, Palette)> {
    let (info, values) = raster::read_band::<u8>(path, 1)?;
    let ds = raster::open(path)?;
    let band = ds
        .rasterband(1)
        .with_context(|| format!("{}: band 1", path.display()))?;
    let table = band.color_table().with_context(|| {
        format!(
            "{}: no colour table, expected a flus land-use map",
            path.display()
        )
    })?;
    let mut palette: Palette = vec![[0, 0, 0, 0]; 256];
    for (i, p) in palette
        .iter_mut()
        .enumerate()
        .take(table.entry_count().min(256))
    {
        if let Some(e) = table.entry_as_rgb(i) {
            *p = [e.r as u8, e.g as u8, e.b as u8, e.a as u8];
        }
    }
    let nodata = info
        .nodata
        .filter(|v| (0.0..=255.0).contains(v))
        .map(|v| v as u8);
    if let Some(n) = nodata {
        palette[n as usize] = [0, 0, 0, 0];
    }
    let f = factor_for(info.grid.width);
    let (pixels, width, height) =
        downsample_majority(&values, info.grid.width, info.grid.height, f, nodata);
    Ok((image(pixels, width, height, &info), palette))
}

fn image(pixels: Vec<u8>, width: usize, height: usize, info: &raster::RasterInfo) -> MapImage {
    MapImage {
        pixels,
        width,
        height,
        ground_width: info.grid.cell_width() * info.grid.width as f64,
        geographic: is_geographic(&info.grid.crs_wkt),
    }
}

fn is_geographic(wkt: &str) -> bool {
    let w = wkt.trim_start();
    w.starts_with("GEOGCS") || w.starts_with("GEOGCRS")
}

/// Colour stops of the diverging ramp (ColorBrewer BrBG, 7 classes): loss brown, no
/// change light grey, gain blue-green.
pub const RAMP: [[u8; 3]; 7] = [
    [0x8c, 0x51, 0x0a],
    [0xd8, 0xb3, 0x65],
    [0xf6, 0xe8, 0xc3],
    [0xf5, 0xf5, 0xf5],
    [0xc7, 0xea, 0xe5],
    [0x5a, 0xb4, 0xac],
    [0x01, 0x66, 0x5e],
];

/// The ramp's colour at `t` in [-1, 1] (-1 = largest loss, 1 = largest gain).
pub fn ramp(t: f64) -> [u8; 3] {
    let x = (t.clamp(-1.0, 1.0) + 1.0) / 2.0 * (RAMP.len() - 1) as f64;
    let i = (x.floor() as usize).min(RAMP.len() - 2);
    let u = x - i as f64;
    let mut c = [0u8; 3];
    for (k, v) in c.iter_mut().enumerate() {
        *v = (RAMP[i][k] as f64 * (1.0 - u) + RAMP[i + 1][k] as f64 * u).round() as u8;
    }
    c
}

/// Palette of the change map: index 0 transparent (no data), 1..=255 the ramp from -1
/// to 1 (index 128 = no change).
pub fn change_palette() -> Palette {
    let mut p = vec![[0, 0, 0, 0]; 256];
    for (i, e) in p.iter_mut().enumerate().skip(1) {
        let [r, g, b] = ramp((i as f64 - 128.0) / 127.0);
        *e = [r, g, b, 255];
    }
    p
}

/// Palette index of change `v` on a scale of +-`max` (0 for no data).
pub fn change_index(v: f32, max: f64) -> u8 {
    if v == CARBON_NODATA || !v.is_finite() {
        return 0;
    }
    let t = if max > 0.0 { v as f64 / max } else { 0.0 };
    (128.0 + 127.0 * t.clamp(-1.0, 1.0)).round() as u8
}

/// A carbon change GeoTIFF as an image on the ramp, with the scale's bound (largest
/// absolute change, t per cell).
pub fn change_map(path: &Path) -> anyhow::Result<(MapImage, f64)> {
    diverging_band(path, 1)
}

/// Colour stops of the sequential ramp of carbon storage (ColorBrewer YlGn, 5 classes):
/// pale yellow (none) to dark green (most).
pub const STORAGE_RAMP: [[u8; 3]; 5] = [
    [0xff, 0xff, 0xcc],
    [0xc2, 0xe6, 0x99],
    [0x78, 0xc6, 0x79],
    [0x31, 0xa3, 0x54],
    [0x00, 0x68, 0x37],
];

/// The storage ramp's colour at `t` in [0, 1].
pub fn storage_ramp(t: f64) -> [u8; 3] {
    let x = t.clamp(0.0, 1.0) * (STORAGE_RAMP.len() - 1) as f64;
    let i = (x.floor() as usize).min(STORAGE_RAMP.len() - 2);
    let u = x - i as f64;
    let mut c = [0u8; 3];
    for (k, v) in c.iter_mut().enumerate() {
        *v = (STORAGE_RAMP[i][k] as f64 * (1.0 - u) + STORAGE_RAMP[i + 1][k] as f64 * u).round()
            as u8;
    }
    c
}

/// Palette of the storage maps: index 0 transparent (no data), 1..=255 the storage ramp
/// from 0 to the scale's maximum.
pub fn storage_palette() -> Palette {
    let mut p = vec![[0, 0, 0, 0]; 256];
    for (i, e) in p.iter_mut().enumerate().skip(1) {
        let [r, g, b] = storage_ramp((i as f64 - 1.0) / 254.0);
        *e = [r, g, b, 255];
    }
    p
}

/// Palette index of storage `v` on a scale from 0 to `max` (0 for no data).
pub fn storage_index(v: f32, max: f64) -> u8 {
    if v == CARBON_NODATA || !v.is_finite() {
        return 0;
    }
    let t = if max > 0.0 { v as f64 / max } else { 0.0 };
    (1.0 + 254.0 * t.clamp(0.0, 1.0)).round() as u8
}

/// A carbon storage GeoTIFF read once: its largest cell (0 if none) and its values
/// downsampled to the report's width (nearest), to be coloured with [`StorageValues::image`]
/// once the scale of all maps is known.
pub struct StorageValues {
    /// The largest finite storage of any cell (not only of the kept ones).
    pub max: f64,
    small: Vec<f32>,
    width: usize,
    height: usize,
    info: raster::RasterInfo,
}

impl StorageValues {
    /// Reads `path` (band 1).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let (info, values) = raster::read_band::<f32>(path, 1)?;
        let max = values
            .iter()
            .filter(|&&v| v != CARBON_NODATA && v.is_finite())
            .fold(0.0f64, |m, &v| m.max(v as f64));
        let f = factor_for(info.grid.width);
        let (small, width, height) =
            downsample_nearest(&values, info.grid.width, info.grid.height, f);
        Ok(Self {
            max,
            small,
            width,
            height,
            info,
        })
    }

    /// The map on the storage ramp from 0 to `max`.
    pub fn image(&self, max: f64) -> MapImage {
        let pixels = self.small.iter().map(|&v| storage_index(v, max)).collect();
        image(pixels, self.width, self.height, &self.info)
    }
}

/// An ensemble frequency GeoTIFF (a share of members in [0, 1] per cell, no data
/// below 0: [`flus_shared::ensemble::FREQUENCY_NODATA`]) as an image on the storage ramp
/// ([`storage_palette`]) from 0 to 1.
pub fn frequency_map(path: &Path) -> anyhow::Result<MapImage> {
    let (info, values) = raster::read_band::<f32>(path, 1)?;
    let f = factor_for(info.grid.width);
    let (small, width, height) = downsample_nearest(&values, info.grid.width, info.grid.height, f);
    let pixels = small
        .iter()
        .map(|&v| {
            if v.is_finite() && v >= 0.0 {
                (1.0 + 254.0 * (v as f64).min(1.0)).round() as u8
            } else {
                0
            }
        })
        .collect();
    Ok(image(pixels, width, height, &info))
}

/// Band `band` (1-based) of a Float32 GeoTIFF whose no-data is `f32::MIN` (carbon
/// change, GWR coefficients) as an image on the diverging ramp, symmetric about 0 with
/// the band's largest absolute value as bound (returned).
pub fn diverging_band(path: &Path, band: usize) -> anyhow::Result<(MapImage, f64)> {
    let (info, values) = raster::read_band::<f32>(path, band)?;
    let max = values
        .iter()
        .filter(|&&v| v != CARBON_NODATA && v.is_finite())
        .fold(0.0f64, |m, &v| m.max((v as f64).abs()));
    let f = factor_for(info.grid.width);
    let (small, width, height) = downsample_nearest(&values, info.grid.width, info.grid.height, f);
    let pixels = small.iter().map(|&v| change_index(v, max)).collect();
    Ok((image(pixels, width, height, &info), max))
}

/// A PNG to write: its path, and its image with palette or its bytes encoded ahead.
pub enum Pending {
    /// To encode.
    Image(std::path::PathBuf, MapImage, Palette),
    /// Encoded ahead ([`encode`]).
    Encoded(std::path::PathBuf, Vec<u8>),
}

/// Writes every PNG of `pngs`, several at a time.
pub fn write_all(pngs: &[Pending]) -> anyhow::Result<()> {
    use rayon::prelude::*;
    pngs.par_iter().try_for_each(|p| match p {
        Pending::Image(path, img, palette) => write_png(path, img, palette),
        Pending::Encoded(path, bytes) => write_bytes(path, bytes),
    })
}

/// Writes `img` with `palette` as a paletted PNG (alpha where a colour is transparent),
/// under a temporary name renamed at the end.
pub fn write_png(path: &Path, img: &MapImage, palette: &Palette) -> anyhow::Result<()> {
    let bytes = encode(img, palette).with_context(|| path.display().to_string())?;
    write_bytes(path, &bytes)
}

/// Writes the bytes of a PNG under a temporary name renamed at the end, not synced
/// ([`files::write_atomic_nosync`]): the report's images are made again by `flus report`.
fn write_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    files::write_atomic_nosync(path, bytes)
        .with_context(|| format!("{}: writing the PNG", path.display()))
}

/// `img` with `palette` as the bytes of a paletted PNG (alpha where a colour is
/// transparent), encoded in GDAL's memory file system.
pub fn encode(img: &MapImage, palette: &Palette) -> anyhow::Result<Vec<u8>> {
    let mem = DriverManager::get_driver_by_name("MEM").context("no GDAL MEM driver")?;
    let png = DriverManager::get_driver_by_name("PNG").context("no GDAL PNG driver")?;
    let ds = mem
        .create_with_band_type::<u8, _>("", img.width, img.height, 1)
        .context("MEM dataset")?;
    {
        let mut band = ds.rasterband(1).context("MEM band")?;
        let mut buf = Buffer::new((img.width, img.height), img.pixels.clone());
        band.write((0, 0), (img.width, img.height), &mut buf)
            .context("writing pixels")?;
        let mut table = ColorTable::new(PaletteInterpretation::Rgba);
        for (i, c) in palette.iter().enumerate() {
            table.set_color_entry(
                i as u16,
                &ColorEntry::rgba(c[0] as i16, c[1] as i16, c[2] as i16, c[3] as i16),
            );
        }
        band.set_color_table(&table);
    }
    // a name of its own per image: images are encoded on several threads at once
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("/vsimem/flus-report-{}-{n}.png", std::process::id());
    let copied = ds
        .create_copy(&png, &name, &RasterCreationOptions::new())
        .map(drop)
        .context("PNG CreateCopy");
    let bytes = copied.and_then(|()| {
        gdal::vsi::get_vsi_mem_file_bytes_owned(&name).context("reading the encoded PNG")
    });
    // the PNG driver's side file of the palette's alpha, if any
    let _ = gdal::vsi::unlink_mem_file(format!("{name}.aux.xml"));
    let _ = gdal::vsi::unlink_mem_file(&name);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_downsampling_keeps_the_commonest_class_and_skips_nodata() {
        // 4 x 2 grid, blocks of 2 x 2:
        // [1 1 | 0 0]
        // [2 1 | 0 3]   -> left block: 1 (three times); right: 3 (0 is nodata)
        let v = [1, 1, 0, 0, 2, 1, 0, 3];
        assert_eq!(
            downsample_majority(&v, 4, 2, 2, Some(0)),
            (vec![1, 3], 2, 1)
        );
        // a tie (2 and 1 twice each) goes to the smaller value
        let v = [2, 1, 1, 2];
        assert_eq!(downsample_majority(&v, 2, 2, 2, None), (vec![1], 1, 1));
        // an all-nodata block stays nodata
        assert_eq!(
            downsample_majority(&[0, 0, 0, 0], 2, 2, 2, Some(0)).0,
            vec![0]
        );
    }

    #[test]
    fn majority_downsampling_equals_a_full_histogram_per_block() {
        // a 23 x 17 grid of classes 0..5 (ragged last blocks for f = 3 and 4), each
        // block's majority counted the plain way: a histogram of all 256 values
        let (w, h) = (23usize, 17usize);
        let v: Vec<u8> = (0..w * h).map(|i| ((i * 7 + i / 5) % 6) as u8).collect();
        for f in [2, 3, 4] {
            for nodata in [None, Some(0), Some(5)] {
                let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
                let mut want = Vec::new();
                for by in 0..oh {
                    for bx in 0..ow {
                        let mut hist = [0u32; 256];
                        for y in by * f..((by + 1) * f).min(h) {
                            for x in bx * f..((bx + 1) * f).min(w) {
                                hist[v[y * w + x] as usize] += 1;
                            }
                        }
                        let mut best = (nodata.unwrap_or(0), 0);
                        for (c, &n) in hist.iter().enumerate() {
                            if Some(c as u8) != nodata && n > best.1 {
                                best = (c as u8, n);
                            }
                        }
                        want.push(best.0);
                    }
                }
                assert_eq!(downsample_majority(&v, w, h, f, nodata), (want, ow, oh));
            }
        }
    }

    #[test]
    fn nearest_downsampling_takes_block_centres() {
        // 5 x 1 with f = 2: blocks {0,1},{2,3},{4}; centres at x = 1, 3, min(5, 4) = 4
        let v = [10, 11, 12, 13, 14];
        assert_eq!(downsample_nearest(&v, 5, 1, 2), (vec![11, 13, 14], 3, 1));
    }

    #[test]
    fn grids_wider_than_the_limit_are_reduced_to_it() {
        assert_eq!(factor_for(1004), 1);
        assert_eq!(factor_for(1200), 1);
        assert_eq!(factor_for(1201), 2);
        assert_eq!(factor_for(12_000), 10);
    }

    #[test]
    fn change_scale_maps_loss_zero_and_gain_to_the_ramp_ends_and_centre() {
        assert_eq!(change_index(CARBON_NODATA, 10.0), 0);
        assert_eq!(change_index(-10.0, 10.0), 1);
        assert_eq!(change_index(0.0, 10.0), 128);
        assert_eq!(change_index(10.0, 10.0), 255);
        assert_eq!(ramp(-1.0), RAMP[0]);
        assert_eq!(ramp(0.0), RAMP[3]);
        assert_eq!(ramp(1.0), RAMP[6]);
        // halfway between stops 3 and 4: (0xf5 + 0xc7) / 2 = 222, (0xf5 + 0xea) / 2 = 239.5
        assert_eq!(ramp(1.0 / 6.0), [222, 240, 237]);
    }

    #[test]
    fn storage_scale_maps_zero_and_max_to_the_ramp_ends() {
        assert_eq!(storage_index(CARBON_NODATA, 10.0), 0);
        assert_eq!(storage_index(0.0, 10.0), 1);
        assert_eq!(storage_index(10.0, 10.0), 255);
        assert_eq!(storage_index(20.0, 10.0), 255);
        // halfway: 1 + 127 = 128, the middle stop of YlGn
        assert_eq!(storage_index(5.0, 10.0), 128);
        assert_eq!(storage_ramp(0.5), STORAGE_RAMP[2]);
        assert_eq!(storage_palette()[1], [0xff, 0xff, 0xcc, 255]);
        assert_eq!(storage_palette()[255], [0x00, 0x68, 0x37, 255]);
    }
}
