//! The global ordinary least squares model printed beside the GWR (as GWR4 does).

use serde::{Deserialize, Serialize};

use super::linalg::{cholesky, cholesky_inverse, cholesky_solve};
use super::summary::{aicc, minus_2ll, tss};
use super::{GwrData, GwrError};

/// Global OLS figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ols {
    /// Coefficients: intercept, then the factors.
    pub params: Vec<f64>,
    /// Standard errors sqrt(sigma^2 diag((X'X)^-1)), sigma^2 = RSS / (n - p).
    pub se: Vec<f64>,
    /// t-values.
    pub t: Vec<f64>,
    /// Residual sum of squares.
    pub rss: f64,
    /// Unbiased sigma sqrt(RSS / (n - p)).
    pub sigma: f64,
    /// AIC = -2LL + 2 (p + 1).
    pub aic: f64,
    /// AICc = -2LL + 2 n (p + 1) / (n - p - 2).
    pub aicc: f64,
    /// 1 - RSS / TSS.
    pub r2: f64,
    /// 1 - (1 - R2) (n - 1) / (n - p - 1): GWR4's formula (the GWR one with ENP = p;
    /// the textbook OLS divisor would be n - p).
    pub adj_r2: f64,
}

/// Fits the global OLS model of `data`.
pub fn ols(data: &GwrData) -> Result<Ols, GwrError> {
    let (n, p) = (data.n(), data.p());
    let mut a = vec![0.0; p * p];
    let mut g = vec![0.0; p];
    for i in 0..n {
        let xi = data.row(i);
        for r in 0..p {
            for c in r..p {
                a[r * p + c] += xi[r] * xi[c];
            }
            g[r] += xi[r] * data.y()[i];
        }
    }
    let mut l = vec![0.0; p * p];
    if let Err(col) = cholesky(&a, p, 1e-12, &mut l) {
        return Err(GwrError::CollinearColumns {
            columns: data.names()[..=col].to_vec(),
            column: data.names()[col].clone(),
            residual_share: 0.0,
        });
    }
    let mut beta = g;
    cholesky_solve(&l, p, &mut beta);
    let rss: f64 = (0..n)
        .map(|i| {
            let e = data.y()[i]
                - data
                    .row(i)
                    .iter()
                    .zip(&beta)
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
            e * e
        })
        .sum();
    let mut inv = vec![0.0; p * p];
    cholesky_inverse(&l, p, &mut inv);
    let (nf, pf) = (n as f64, p as f64);
    let sigma2 = rss / (nf - pf);
    let se: Vec<f64> = (0..p).map(|r| (sigma2 * inv[r * p + r]).sqrt()).collect();
    let t = beta.iter().zip(&se).map(|(b, s)| b / s).collect();
    let r2 = 1.0 - rss / tss(data.y());
    Ok(Ols {
        params: beta,
        se,
        t,
        rss,
        sigma: sigma2.sqrt(),
        aic: minus_2ll(nf, rss) + 2.0 * (pf + 1.0),
        aicc: aicc(nf, rss, pf),
        r2,
        adj_r2: 1.0 - (1.0 - r2) * (nf - 1.0) / (nf - pf - 1.0),
    })
}
