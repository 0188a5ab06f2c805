//! The study grid: size, geotransform and CRS, and the comparison of two grids.

use serde::{Deserialize, Serialize};

/// A north-up raster grid: `width` x `height` cells placed by a GDAL geotransform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// GDAL geotransform: x0, pixel width, row rotation, y0, column rotation, pixel height.
    pub geotransform: [f64; 6],
    /// Coordinate reference system as WKT ("" when the raster has none).
    pub crs_wkt: String,
}

impl Grid {
    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.width * self.height
    }

    /// Area of one cell in the units of the CRS squared (m2 for projected CRSs in metres).
    pub fn cell_area(&self) -> f64 {
        let g = &self.geotransform;
        (g[1] * g[5] - g[2] * g[4]).abs()
    }

    /// Cell size along x (absolute).
    pub fn cell_width(&self) -> f64 {
        self.geotransform[1].abs()
    }

    /// Cell size along y (absolute).
    pub fn cell_height(&self) -> f64 {
        self.geotransform[5].abs()
    }

    /// Map coordinates of the centre of cell (`col`, `row`).
    pub fn cell_centre(&self, col: usize, row: usize) -> (f64, f64) {
        let g = &self.geotransform;
        let (c, r) = (col as f64 + 0.5, row as f64 + 0.5);
        (g[0] + c * g[1] + r * g[2], g[3] + c * g[4] + r * g[5])
    }

    /// Describes how `other` differs in size or placement from `self`, or `None` when
    /// they are the same grid within `tolerance` (a fraction of a cell, e.g. 0.01).
    ///
    /// The CRS is compared separately (see [`crate::raster::same_crs`]), since that needs GDAL.
    pub fn placement_difference(&self, other: &Grid, tolerance: f64) -> Option<String> {
        if self.width != other.width || self.height != other.height {
            return Some(format!(
                "size {} x {} cells vs {} x {} cells",
                self.width, self.height, other.width, other.height
            ));
        }
        let (a, b) = (&self.geotransform, &other.geotransform);
        let cw = self.cell_width().max(f64::MIN_POSITIVE);
        let ch = self.cell_height().max(f64::MIN_POSITIVE);
        // Cell sizes: the accumulated drift across the grid must stay within tolerance.
        let extent = self.width.max(self.height) as f64;
        for (i, what, scale) in [
            (1usize, "cell width", cw),
            (2, "row rotation", cw),
            (4, "column rotation", ch),
            (5, "cell height", ch),
        ] {
            if (a[i] - b[i]).abs() * extent > tolerance * scale {
                return Some(format!("{what} {} vs {}", a[i], b[i]));
            }
        }
        if (a[0] - b[0]).abs() > tolerance * cw {
            return Some(format!(
                "origin x {} vs {} (off by {:.4} cells, tolerance {tolerance})",
                a[0],
                b[0],
                (a[0] - b[0]).abs() / cw
            ));
        }
        if (a[3] - b[3]).abs() > tolerance * ch {
            return Some(format!(
                "origin y {} vs {} (off by {:.4} cells, tolerance {tolerance})",
                a[3],
                b[3],
                (a[3] - b[3]).abs() / ch
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            width: 10,
            height: 5,
            geotransform: [1000.0, 25.0, 0.0, 5000.0, 0.0, -25.0],
            crs_wkt: String::new(),
        }
    }

    #[test]
    fn cell_area_and_centre_follow_the_geotransform() {
        let g = grid();
        assert_eq!(g.cells(), 50);
        assert_eq!(g.cell_area(), 625.0);
        assert_eq!(g.cell_centre(0, 0), (1012.5, 4987.5));
        assert_eq!(g.cell_centre(9, 4), (1237.5, 4887.5));
    }

    #[test]
    fn grids_off_by_a_fraction_of_a_cell_differ() {
        let g = grid();
        let mut h = grid();
        h.geotransform[0] += 0.1; // 0.004 cell: within 1 %
        assert_eq!(g.placement_difference(&h, 0.01), None);
        h.geotransform[0] += 5.0; // 0.2 cell
        let d = g.placement_difference(&h, 0.01).unwrap();
        assert!(d.contains("origin x"), "{d}");
        let mut s = grid();
        s.width = 11;
        assert!(g.placement_difference(&s, 0.01).unwrap().contains("10 x 5"));
        let mut c = grid();
        c.geotransform[1] = 24.9;
        assert!(g
            .placement_difference(&c, 0.01)
            .unwrap()
            .contains("cell width"));
    }
}
