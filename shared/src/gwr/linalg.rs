//! Small dense linear algebra for the p x p local systems (p = parameters, small).

/// Cholesky factor L (row-major, lower triangle) of the symmetric matrix `a` whose
/// upper triangle is filled (row-major p x p). Returns the index of the first column
/// whose pivot is not positive or falls below `rel_tol` times its diagonal (the column
/// is then a numerical combination of the earlier ones under these weights).
pub(crate) fn cholesky(a: &[f64], p: usize, rel_tol: f64, l: &mut [f64]) -> Result<(), usize> {
    for v in l.iter_mut() {
        *v = 0.0;
    }
    for j in 0..p {
        let ajj = a[j * p + j];
        let mut d = ajj;
        for k in 0..j {
            d -= l[j * p + k] * l[j * p + k];
        }
        let positive = d > rel_tol * ajj && d > 0.0;
        if !positive {
            return Err(j);
        }
        let djj = d.sqrt();
        l[j * p + j] = djj;
        for i in (j + 1)..p {
            // a is symmetric with its upper triangle filled: a[j][i] = a[i][j].
            let mut s = a[j * p + i];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            l[i * p + j] = s / djj;
        }
    }
    Ok(())
}

/// Solves (L L') x = b in place.
pub(crate) fn cholesky_solve(l: &[f64], p: usize, b: &mut [f64]) {
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * p + k] * b[k];
        }
        b[i] = s / l[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = b[i];
        for k in (i + 1)..p {
            s -= l[k * p + i] * b[k];
        }
        b[i] = s / l[i * p + i];
    }
}

/// The inverse (L L')^-1 as a full row-major p x p matrix.
pub(crate) fn cholesky_inverse(l: &[f64], p: usize, inv: &mut [f64]) {
    let mut col = vec![0.0; p];
    for j in 0..p {
        col.iter_mut().for_each(|v| *v = 0.0);
        col[j] = 1.0;
        cholesky_solve(l, p, &mut col);
        for i in 0..p {
            inv[i * p + j] = col[i];
        }
    }
}

/// Copies the upper triangle of a row-major p x p matrix into its lower triangle.
pub(crate) fn symmetrize_upper(a: &mut [f64], p: usize) {
    for i in 0..p {
        for j in 0..i {
            a[i * p + j] = a[j * p + i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A = [[4, 2], [2, 3]] by hand: L = [[2, 0], [1, sqrt 2]]; A^-1 = [[3, -2], [-2, 4]] / 8.
    #[test]
    fn cholesky_solves_and_inverts_a_hand_worked_2x2_system() {
        let a = [4.0, 2.0, 0.0, 3.0];
        let mut l = [0.0; 4];
        cholesky(&a, 2, 1e-12, &mut l).unwrap();
        assert_eq!(l[0], 2.0);
        assert_eq!(l[2], 1.0);
        assert!((l[3] - 2f64.sqrt()).abs() < 1e-15);
        let mut inv = [0.0; 4];
        cholesky_inverse(&l, 2, &mut inv);
        let want = [3.0 / 8.0, -2.0 / 8.0, -2.0 / 8.0, 4.0 / 8.0];
        for (g, w) in inv.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{inv:?}");
        }
    }

    #[test]
    fn cholesky_reports_the_dependent_column() {
        // Columns 0 and 1 equal: X'X = [[1,1,0],[1,1,0],[0,0,1]].
        let a = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let mut l = [0.0; 9];
        assert_eq!(cholesky(&a, 3, 1e-12, &mut l), Err(1));
    }
}
