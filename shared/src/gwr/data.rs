//! The regression data of a GWR: y, the factors (with an intercept in front) and the
//! point coordinates, checked once when built.

use super::GwrError;

/// Name given to the intercept column.
pub const INTERCEPT: &str = "Intercept";

/// Checked regression data: `n` points, `p` = 1 + factors parameters.
#[derive(Debug, Clone)]
pub struct GwrData {
    y_name: String,
    names: Vec<String>,
    n: usize,
    p: usize,
    /// Row-major n x p design matrix, column 0 is the intercept (1).
    x: Vec<f64>,
    y: Vec<f64>,
    coords: Vec<[f64; 2]>,
    /// Coordinates are (longitude, latitude) in degrees, distances great-circle km.
    spherical: bool,
}

impl GwrData {
    /// Builds and checks the data: `factors` are (name, values) columns in input order,
    /// an intercept is put in front. Errors: columns of different lengths, NaN or
    /// infinite values (named with their row), fewer points than parameters + 1, a
    /// constant factor, collinear factors (all columns involved are named).
    pub fn new(
        y_name: &str,
        y: Vec<f64>,
        factors: Vec<(String, Vec<f64>)>,
        coords: Vec<[f64; 2]>,
    ) -> Result<Self, GwrError> {
        let n = y.len();
        let p = factors.len() + 1;
        check_finite(y_name, &y)?;
        for (name, col) in &factors {
            if col.len() != n {
                return Err(GwrError::LengthMismatch {
                    column: name.clone(),
                    found: col.len(),
                    expected: n,
                });
            }
            check_finite(name, col)?;
        }
        if coords.len() != n {
            return Err(GwrError::LengthMismatch {
                column: "coordinates".into(),
                found: coords.len(),
                expected: n,
            });
        }
        check_coords(&coords)?;
        // n - p - 2 > 0 keeps the AICc of the global model finite; n > p is the minimum
        // for any residual variance.
        if n < p + 3 {
            return Err(GwrError::TooFewPoints {
                points: n,
                parameters: p,
                factors: p - 1,
                needed: p + 3,
            });
        }
        for (name, col) in &factors {
            if col.iter().all(|v| *v == col[0]) {
                return Err(GwrError::ConstantColumn {
                    column: name.clone(),
                    value: col[0],
                });
            }
        }
        check_collinear(&factors)?;
        let mut x = Vec::with_capacity(n * p);
        for i in 0..n {
            x.push(1.0);
            for (_, col) in &factors {
                x.push(col[i]);
            }
        }
        let mut names = vec![INTERCEPT.to_string()];
        names.extend(factors.into_iter().map(|(name, _)| name));
        Ok(Self {
            y_name: y_name.to_string(),
            names,
            n,
            p,
            x,
            y,
            coords,
            spherical: false,
        })
    }

    /// Data from a ready design matrix (row-major n x p, column 0 the intercept, as
    /// [`Self::design`] gives it), e.g. received by a cluster worker from a coordinator
    /// that checked it with [`Self::new`]. Checks the lengths and that every value is
    /// finite; the values are kept exactly.
    pub fn from_design(
        y_name: &str,
        names: Vec<String>,
        x: Vec<f64>,
        y: Vec<f64>,
        coords: Vec<[f64; 2]>,
    ) -> Result<Self, GwrError> {
        let n = y.len();
        let p = names.len();
        if p == 0 {
            return Err(GwrError::LengthMismatch {
                column: "parameter names".into(),
                found: 0,
                expected: 1,
            });
        }
        for (column, found, expected) in [
            ("design matrix", x.len(), n * p),
            ("coordinates", coords.len(), n),
        ] {
            if found != expected {
                return Err(GwrError::LengthMismatch {
                    column: column.into(),
                    found,
                    expected,
                });
            }
        }
        check_finite(y_name, &y)?;
        if let Some(k) = x.iter().position(|v| !v.is_finite()) {
            return Err(GwrError::NotFinite {
                column: names[k % p].clone(),
                row: k / p,
                value: x[k],
            });
        }
        check_coords(&coords)?;
        if n < p + 3 {
            return Err(GwrError::TooFewPoints {
                points: n,
                parameters: p,
                factors: p - 1,
                needed: p + 3,
            });
        }
        Ok(Self {
            y_name: y_name.to_string(),
            names,
            n,
            p,
            x,
            y,
            coords,
            spherical: false,
        })
    }

    /// The points `rows` (each below n), in the order given, with their values kept
    /// exactly (no second standardisation).
    pub fn subset(&self, rows: &[usize]) -> Self {
        let p = self.p;
        Self {
            y_name: self.y_name.clone(),
            names: self.names.clone(),
            n: rows.len(),
            p,
            x: rows
                .iter()
                .flat_map(|&i| self.row(i).iter().copied())
                .collect(),
            y: rows.iter().map(|&i| self.y[i]).collect(),
            coords: rows.iter().map(|&i| self.coords[i]).collect(),
            spherical: self.spherical,
        }
    }

    /// The same data with coordinates read as (longitude, latitude) in degrees and
    /// distances as great-circle kilometres (mgwr's `spherical=True`) when `spherical`.
    pub fn with_spherical(mut self, spherical: bool) -> Self {
        self.spherical = spherical;
        self
    }

    /// Whether distances are great-circle kilometres between (lon, lat) coordinates.
    pub fn spherical(&self) -> bool {
        self.spherical
    }

    /// Standardises every factor to mean 0 and standard deviation 1 (population
    /// standard deviation, divisor n, as numpy's default used in mgwr's examples); y and
    /// the intercept are left as they are.
    pub fn standardize_factors(&mut self) {
        let (n, p) = (self.n, self.p);
        for c in 1..p {
            let col: Vec<f64> = (0..n).map(|i| self.x[i * p + c]).collect();
            for (i, v) in standardized(&col).into_iter().enumerate() {
                self.x[i * p + c] = v;
            }
        }
    }

    /// Number of points.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Number of parameters (intercept + factors).
    pub fn p(&self) -> usize {
        self.p
    }
    /// Name of the dependent variable.
    pub fn y_name(&self) -> &str {
        &self.y_name
    }
    /// Parameter names: `Intercept`, then the factors in input order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
    /// The dependent variable.
    pub fn y(&self) -> &[f64] {
        &self.y
    }
    /// Row `i` of the design matrix (1, factors...).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.p..(i + 1) * self.p]
    }
    /// The row-major n x p design matrix.
    pub fn design(&self) -> &[f64] {
        &self.x
    }
    /// The point coordinates.
    pub fn coords(&self) -> &[[f64; 2]] {
        &self.coords
    }
}

/// `col` standardised to mean 0 and standard deviation 1 (divisor n), exactly as
/// [`GwrData::standardize_factors`] does it to each factor.
pub fn standardized(col: &[f64]) -> Vec<f64> {
    let n = col.len() as f64;
    let mean = col.iter().sum::<f64>() / n;
    let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    col.iter().map(|v| (v - mean) / sd).collect()
}

/// Largest coordinate magnitude accepted: squared distances between such points stay
/// finite and precise to well under a map unit.
pub const MAX_COORDINATE: f64 = 1e15;

/// Every coordinate finite and within ±[`MAX_COORDINATE`]; the error names the row.
fn check_coords(coords: &[[f64; 2]]) -> Result<(), GwrError> {
    for (row, c) in coords.iter().enumerate() {
        for (axis, &value) in ["x coordinate", "y coordinate"].iter().zip(c) {
            if !value.is_finite() {
                return Err(GwrError::NotFinite {
                    column: axis.to_string(),
                    row,
                    value,
                });
            }
            if value.abs() > MAX_COORDINATE {
                return Err(GwrError::CoordinateRange {
                    axis: axis.to_string(),
                    row,
                    value,
                    max: MAX_COORDINATE,
                });
            }
        }
    }
    Ok(())
}

fn check_finite(name: &str, col: &[f64]) -> Result<(), GwrError> {
    match col.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(GwrError::NotFinite {
            column: name.to_string(),
            row,
            value: col[row],
        }),
        None => Ok(()),
    }
}

/// 1 - R2 below which a factor counts as a linear combination of the earlier ones
/// (with the intercept).
const COLLINEAR_SHARE: f64 = 1e-10;

/// Modified Gram-Schmidt on the centred factors (centring removes the intercept): a
/// factor whose residual after projection on the earlier ones keeps less than
/// `COLLINEAR_SHARE` of its centred sum of squares is collinear; the earlier factors
/// with a non-negligible share in that projection are named with it.
fn check_collinear(factors: &[(String, Vec<f64>)]) -> Result<(), GwrError> {
    let mut basis: Vec<Vec<f64>> = Vec::new(); // orthonormal residual columns
                                               // coefficients of each basis column in terms of the original centred factors
    let mut basis_in_factors: Vec<Vec<f64>> = Vec::new();
    for (j, (name, col)) in factors.iter().enumerate() {
        let n = col.len() as f64;
        let mean = col.iter().sum::<f64>() / n;
        let mut r: Vec<f64> = col.iter().map(|v| v - mean).collect();
        let ss0: f64 = r.iter().map(|v| v * v).sum();
        let mut coef_basis = Vec::with_capacity(basis.len());
        for q in &basis {
            let c: f64 = q.iter().zip(&r).map(|(a, b)| a * b).sum();
            r.iter_mut().zip(q).for_each(|(v, qv)| *v -= c * qv);
            coef_basis.push(c);
        }
        let ss: f64 = r.iter().map(|v| v * v).sum();
        let share = ss / ss0;
        if share < COLLINEAR_SHARE {
            // projection = sum_b c_b q_b, q_b = sum_f basis_in_factors[b][f] * centred f.
            let mut coef = vec![0.0; j];
            for (b, c) in coef_basis.iter().enumerate() {
                for (f, v) in basis_in_factors[b].iter().enumerate() {
                    coef[f] += c * v;
                }
            }
            let scale = ss0.sqrt();
            let mut columns: Vec<String> = Vec::new();
            for (f, cf) in coef.iter().enumerate() {
                let fs = centred_norm(&factors[f].1);
                if (cf * fs).abs() > 1e-6 * scale {
                    columns.push(factors[f].0.clone());
                }
            }
            columns.push(name.clone());
            return Err(GwrError::CollinearColumns {
                columns,
                column: name.clone(),
                residual_share: share,
            });
        }
        let norm = ss.sqrt();
        // q_new = (centred col_j - sum_b c_b q_b) / norm in terms of factors.
        let mut in_factors = vec![0.0; j + 1];
        in_factors[j] = 1.0 / norm;
        for (b, c) in coef_basis.iter().enumerate() {
            for (f, v) in basis_in_factors[b].iter().enumerate() {
                in_factors[f] -= c * v / norm;
            }
        }
        basis.push(r.into_iter().map(|v| v / norm).collect());
        basis_in_factors.push(in_factors);
    }
    Ok(())
}

fn centred_norm(col: &[f64]) -> f64 {
    let mean = col.iter().sum::<f64>() / col.len() as f64;
    col.iter().map(|v| (v - mean).powi(2)).sum::<f64>().sqrt()
}
