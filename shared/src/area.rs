//! Cell areas in square metres (DESIGN 2.6, "Cell area").
//!
//! A projected grid in metres has one area for every cell, |pixel width x pixel
//! height|. A geographic (lon/lat, degrees) grid has one area per row: the area of a
//! cell bounded by two meridians and two parallels on the CRS's ellipsoid, exactly,
//!
//! A = dlambda * b^2 / 2 * (F(phi2) - F(phi1)),
//! F(phi) = sin(phi) / (1 - e^2 sin^2(phi)) + ln((1 + e sin(phi)) / (1 - e sin(phi))) / (2e),
//!
//! with a, b the semi-axes and e the eccentricity. A CRS whose units are neither metres
//! nor degrees is refused. A grid without a CRS keeps the geotransform's units (taken
//! as metres, with a warning from [`CellAreas::of_grid`]).

use gdal::spatial_ref::SpatialRef;

use crate::error::{Error, Result};
use crate::grid::Grid;

/// The area of every cell of a grid, m2.
#[derive(Clone, Debug, PartialEq)]
pub enum CellAreas {
    /// Every cell has this area (a projected grid in metres).
    Uniform(f64),
    /// Cells of row r have area `rows[r]` (a geographic grid).
    PerRow(Vec<f64>),
}

/// An ellipsoid by its semi-axes, m.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ellipsoid {
    /// Semi-major axis a.
    pub a: f64,
    /// Semi-minor axis b.
    pub b: f64,
}

impl Ellipsoid {
    /// WGS 84 (a = 6378137 m, 1/f = 298.257223563).
    pub const WGS84: Ellipsoid = Ellipsoid {
        a: 6_378_137.0,
        b: 6_378_137.0 * (1.0 - 1.0 / 298.257_223_563),
    };

    fn eccentricity(&self) -> f64 {
        (1.0 - (self.b * self.b) / (self.a * self.a))
            .max(0.0)
            .sqrt()
    }

    /// Area (m2) of the cell between longitudes `dlambda_deg` apart and latitudes
    /// `phi1_deg` and `phi2_deg` (either order), exact on the ellipsoid.
    pub fn cell_area(&self, dlambda_deg: f64, phi1_deg: f64, phi2_deg: f64) -> f64 {
        let e = self.eccentricity();
        let (p1, p2) = (
            phi1_deg.clamp(-90.0, 90.0).to_radians(),
            phi2_deg.clamp(-90.0, 90.0).to_radians(),
        );
        let (s1, s2) = (p1.sin(), p2.sin());
        // sin(phi2) - sin(phi1) without cancellation (thin rows near the poles)
        let ds = 2.0 * ((p1 + p2) / 2.0).cos() * ((p2 - p1) / 2.0).sin();
        // F(phi2) - F(phi1), both terms rewritten as differences of ds:
        // s2/(1-e2 s2^2) - s1/(1-e2 s1^2) = ds (1 + e2 s1 s2) / ((1-e2 s1^2)(1-e2 s2^2)),
        // [ln((1+e s)/(1-e s))]/(2e) = atanh(e s)/e and atanh x - atanh y =
        // atanh((x - y)/(1 - x y))
        let df = if e < 1e-10 {
            2.0 * ds
        } else {
            let e2 = e * e;
            ds * (1.0 + e2 * s1 * s2) / ((1.0 - e2 * s1 * s1) * (1.0 - e2 * s2 * s2))
                + (e * ds / (1.0 - e2 * s1 * s2)).atanh() / e
        };
        (dlambda_deg.to_radians() * self.b * self.b / 2.0 * df).abs()
    }
}

/// What a CRS's units are, for areas and distances.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CrsKind {
    /// No CRS: the geotransform's units are taken as metres.
    Unknown,
    /// Projected, in metres.
    ProjectedMetres,
    /// Geographic, in degrees, on this ellipsoid.
    Geographic(Ellipsoid),
}

/// Classifies the CRS `wkt` of the raster `source` (named in errors): projected in
/// metres, geographic in degrees, or none; any other unit is an error naming the file,
/// the unit found and what is expected.
pub fn crs_kind(wkt: &str, source: &str) -> Result<CrsKind> {
    if wkt.trim().is_empty() {
        return Ok(CrsKind::Unknown);
    }
    let srs = SpatialRef::from_wkt(wkt)
        .map_err(|e| Error::Data(format!("{source}: unreadable CRS ({e})")))?;
    if srs.is_geographic() {
        let per_unit = srs.angular_units();
        if (per_unit - 1f64.to_radians()).abs() > 1e-12 {
            return Err(Error::Data(format!(
                "{source}: the geographic CRS's unit is {} ({per_unit} rad), expected degrees",
                srs.angular_units_name().unwrap_or_default()
            )));
        }
        let a = srs
            .semi_major()
            .map_err(|e| Error::Data(format!("{source}: CRS has no ellipsoid ({e})")))?;
        let b = srs
            .semi_minor()
            .map_err(|e| Error::Data(format!("{source}: CRS has no ellipsoid ({e})")))?;
        return Ok(CrsKind::Geographic(Ellipsoid { a, b }));
    }
    if srs.is_projected() || srs.is_local() {
        let per_unit = srs.linear_units();
        if (per_unit - 1.0).abs() > 1e-12 {
            return Err(Error::Data(format!(
                "{source}: the CRS's unit is {} ({per_unit} m), expected metres or degrees",
                srs.linear_units_name().unwrap_or_default()
            )));
        }
        return Ok(CrsKind::ProjectedMetres);
    }
    Err(Error::Data(format!(
        "{source}: the CRS is neither projected (metres) nor geographic (degrees)"
    )))
}

impl CellAreas {
    /// The cell areas of `grid`, whose CRS comes from the raster `source` (named in
    /// errors). Geographic grids must be north-up (no rotation).
    pub fn of_grid(grid: &Grid, source: &str) -> Result<CellAreas> {
        match crs_kind(&grid.crs_wkt, source)? {
            CrsKind::Unknown => {
                tracing::warn!(
                    "{source}: no CRS; cell areas taken from the geotransform as square metres"
                );
                Ok(CellAreas::Uniform(grid.cell_area()))
            }
            CrsKind::ProjectedMetres => Ok(CellAreas::Uniform(grid.cell_area())),
            CrsKind::Geographic(ell) => Self::geographic(grid, ell, source),
        }
    }

    /// Per-row areas of the lon/lat grid `grid` on `ell`.
    pub fn geographic(grid: &Grid, ell: Ellipsoid, source: &str) -> Result<CellAreas> {
        let g = &grid.geotransform;
        if g[2] != 0.0 || g[4] != 0.0 {
            return Err(Error::Data(format!(
                "{source}: a geographic grid with a rotated geotransform ({}, {}), expected north-up cells",
                g[2], g[4]
            )));
        }
        let rows = (0..grid.height)
            .map(|r| {
                let top = g[3] + r as f64 * g[5];
                ell.cell_area(g[1], top, top + g[5])
            })
            .collect();
        Ok(CellAreas::PerRow(rows))
    }

    /// Area of a cell of row `row`, m2.
    #[inline]
    pub fn row(&self, row: usize) -> f64 {
        match self {
            CellAreas::Uniform(a) => *a,
            CellAreas::PerRow(v) => v[row],
        }
    }

    /// Area of cell `i` of a row-major grid `width` cells wide, m2.
    #[inline]
    pub fn cell(&self, i: usize, width: usize) -> f64 {
        match self {
            CellAreas::Uniform(a) => *a,
            CellAreas::PerRow(v) => v[i / width.max(1)],
        }
    }

    /// The areas of the cells of a block of rows starting at row `first_row` of a grid
    /// `width` cells wide (cell 0 of the block is the first cell of that row).
    pub fn window(&self, first_row: usize, width: usize) -> AreaWindow<'_> {
        AreaWindow {
            areas: self,
            first_row,
            width: width.max(1),
        }
    }

    /// Whether areas vary by row (a geographic grid).
    pub fn is_geographic(&self) -> bool {
        matches!(self, CellAreas::PerRow(_))
    }

    /// The area of every cell when it is the same everywhere.
    pub fn uniform(&self) -> Option<f64> {
        match self {
            CellAreas::Uniform(a) => Some(*a),
            CellAreas::PerRow(_) => None,
        }
    }

    /// Total area (m2) of the cells of a row-major map `width` wide for which `keep`
    /// holds: integer counts per row times the row's area, added in row order.
    pub fn sum_where(&self, width: usize, cells: usize, keep: impl Fn(usize) -> bool) -> f64 {
        let width = width.max(1);
        (0..cells.div_ceil(width))
            .map(|r| {
                let n = (r * width..((r + 1) * width).min(cells))
                    .filter(|&i| keep(i))
                    .count();
                n as f64 * self.row(r)
            })
            .sum()
    }
}

/// The cell areas of a block of rows (see [`CellAreas::window`]).
#[derive(Clone, Copy, Debug)]
pub struct AreaWindow<'a> {
    areas: &'a CellAreas,
    first_row: usize,
    width: usize,
}

impl AreaWindow<'_> {
    /// Area of cell `i` of the block, m2.
    #[inline]
    pub fn at(&self, i: usize) -> f64 {
        match self.areas {
            CellAreas::Uniform(a) => *a,
            CellAreas::PerRow(v) => v[self.first_row + i / self.width],
        }
    }
}

/// Great-circle distance in km between two (lon, lat) points in degrees, on a sphere of
/// radius 6371 km (the radius mgwr uses for `spherical=True`), by the haversine formula.
#[inline]
pub fn great_circle_km(a: [f64; 2], b: [f64; 2]) -> f64 {
    const R_KM: f64 = 6371.0;
    let (la1, la2) = (a[1].to_radians(), b[1].to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b[0] - a[0]).to_radians() / 2.0).sin().powi(2);
    2.0 * R_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The area element of the ellipsoid, M(phi) N(phi) cos(phi) dphi dlambda with M the
    /// meridian and N the prime-vertical radius of curvature, integrated by Simpson's rule
    /// (an independent route to the closed form).
    fn integrated(ell: Ellipsoid, dlambda_deg: f64, phi1: f64, phi2: f64) -> f64 {
        let e2 = 1.0 - ell.b * ell.b / (ell.a * ell.a);
        let g = |phi: f64| {
            let w = 1.0 - e2 * phi.sin().powi(2);
            let m = ell.a * (1.0 - e2) / w.powf(1.5);
            let n = ell.a / w.sqrt();
            m * n * phi.cos()
        };
        let (p1, p2) = (phi1.to_radians(), phi2.to_radians());
        let steps = 2000;
        let h = (p2 - p1) / steps as f64;
        let mut s = g(p1) + g(p2);
        for i in 1..steps {
            s += g(p1 + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        (s * h / 3.0 * dlambda_deg.to_radians()).abs()
    }

    /// Cells bounded by parallels and meridians on WGS 84, as PROJ's geodesic library
    /// computes them (pyproj 3.7.2 / PROJ 9.5.1, `Geod(ellps="WGS84")
    /// .polygon_area_perimeter` of the cell's outline with each parallel edge cut into 200
    /// geodesic segments, so that the edges follow the parallels):
    ///
    /// ```python
    /// def cell(lon0, lat0, d, n=200):
    ///     lons = [lon0 + d*i/n for i in range(n+1)] + [lon0 + d*(n-i)/n for i in range(n+1)]
    ///     lats = [lat0]*(n+1) + [lat0 + d]*(n+1)
    ///     return abs(Geod(ellps="WGS84").polygon_area_perimeter(lons, lats)[0])
    /// ```
    #[test]
    fn wgs84_cells_match_proj_geodesic_areas() {
        let proj = [
            (0.0, 0.01, 1_230_907.201_848_272),
            (21.0, 0.01, 1_151_091.710_209_112_6),
            (45.0, 0.01, 876_163.449_140_418_3),
            (60.0, 0.01, 621_587.243_444_196_9),
            (89.99, 0.01, 108.869_670_160_114_77),
            (-33.0, 0.01, 1_036_495.427_138_041_7),
            (10.0, 1.0, 12_108_188_655.274_496),
        ];
        for (lat, d, want) in proj {
            let got = Ellipsoid::WGS84.cell_area(d, lat, lat + d);
            assert!(
                ((got - want) / want).abs() < 1e-7,
                "cell at {lat} of {d} deg: {got} vs PROJ {want}"
            );
            let num = integrated(Ellipsoid::WGS84, d, lat, lat + d);
            assert!(((got - num) / num).abs() < 1e-10, "{got} vs {num}");
        }
        // the closed form evaluated with 40 digits (mpmath), near the pole where a
        // plain F(phi2) - F(phi1) loses 8 digits to cancellation
        for (lat, want) in [
            (89.99, 108.869_668_425_369_48),
            (21.0, 1_151_091.710_208_218),
        ] {
            let got = Ellipsoid::WGS84.cell_area(0.01, lat, lat + 0.01);
            assert!(((got - want) / want).abs() < 1e-12, "{got} vs {want}");
        }
        // a 0.01-degree cell is about 1.15 km2, not 0.0001 m2
        assert!(Ellipsoid::WGS84.cell_area(0.01, 21.0, 21.01) > 1.0e6);
    }

    #[test]
    fn a_sphere_gives_the_archimedes_band_area() {
        // R = 1000 m, band 0..30 deg over 90 deg of longitude:
        // pi/2 * R^2 * (sin 30 - sin 0) = pi/2 * 1e6 * 0.5
        let s = Ellipsoid {
            a: 1000.0,
            b: 1000.0,
        };
        let got = s.cell_area(90.0, 0.0, 30.0);
        assert!((got - std::f64::consts::FRAC_PI_2 * 1e6 * 0.5).abs() < 1e-6);
    }

    #[test]
    fn geographic_grids_get_one_area_per_row_and_feet_are_refused() {
        let wkt = |epsg: u32| SpatialRef::from_epsg(epsg).unwrap().to_wkt().unwrap();
        let grid = Grid {
            width: 3,
            height: 2,
            // rows 21.02..21.01 and 21.01..21.00
            geotransform: [108.0, 0.01, 0.0, 21.02, 0.0, -0.01],
            crs_wkt: wkt(4326),
        };
        let a = CellAreas::of_grid(&grid, "lonlat.tif").unwrap();
        assert!(a.is_geographic());
        let want0 = Ellipsoid::WGS84.cell_area(0.01, 21.01, 21.02);
        assert!((a.row(0) - want0).abs() < 1e-6 && a.row(0) < a.row(1));
        assert_eq!(a.cell(4, 3), a.row(1));
        // two cells of row 0 and one of row 1
        let s = a.sum_where(3, 6, |i| i == 0 || i == 2 || i == 5);
        assert!((s - (2.0 * a.row(0) + a.row(1))).abs() < 1e-6);
        let utm = Grid {
            crs_wkt: wkt(32648),
            geotransform: [0.0, 25.0, 0.0, 0.0, 0.0, -25.0],
            ..grid.clone()
        };
        assert_eq!(
            CellAreas::of_grid(&utm, "u.tif").unwrap(),
            CellAreas::Uniform(625.0)
        );
        // NAD83 / Texas North Central (ftUS)
        let feet = Grid {
            crs_wkt: wkt(2276),
            ..utm
        };
        let e = CellAreas::of_grid(&feet, "feet.tif")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("feet.tif") && e.contains("expected metres or degrees"),
            "{e}"
        );
    }

    #[test]
    fn great_circle_distances_by_hand() {
        // a quarter of the equator: pi/2 * 6371 km
        let d = great_circle_km([0.0, 0.0], [90.0, 0.0]);
        assert!((d - std::f64::consts::FRAC_PI_2 * 6371.0).abs() < 1e-9);
        // one degree of latitude: 6371 * pi / 180 = 111.19492664 km
        let d = great_circle_km([106.0, 10.0], [106.0, 11.0]);
        assert!((d - 111.194_926_644_558_7).abs() < 1e-9, "{d}");
    }
}
