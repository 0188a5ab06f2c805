//! Errors of the GWR module: each names the column, point or bandwidth concerned.

/// Why a geographically weighted regression cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GwrError {
    /// Columns of different lengths.
    #[error("GWR: column `{column}` has {found} values, expected {expected} (one per point)")]
    LengthMismatch {
        /// The column concerned.
        column: String,
        /// Its number of values.
        found: usize,
        /// The number of points.
        expected: usize,
    },
    /// A NaN or infinite value.
    #[error("GWR: column `{column}` row {row} is {value}, expected a finite number")]
    NotFinite {
        /// The column (or coordinate) concerned.
        column: String,
        /// The 0-based row.
        row: usize,
        /// The value found.
        value: f64,
    },
    /// A coordinate so large that squared distances would overflow or lose all precision.
    #[error("GWR: {axis} of row {row} is {value:e}, expected a coordinate within ±{max:e} (map units of a projected or geographic CRS)")]
    CoordinateRange {
        /// `x coordinate` or `y coordinate`.
        axis: String,
        /// The 0-based row.
        row: usize,
        /// The value found.
        value: f64,
        /// The largest magnitude accepted.
        max: f64,
    },
    /// Fewer points than the model has parameters.
    #[error("GWR: {points} points for {parameters} parameters (intercept + {factors} factors); at least {needed} points are needed")]
    TooFewPoints {
        /// Number of points.
        points: usize,
        /// Number of parameters, intercept included.
        parameters: usize,
        /// Number of factors (parameters without the intercept).
        factors: usize,
        /// The number of points needed.
        needed: usize,
    },
    /// A factor that takes one value only (collinear with the intercept).
    #[error("GWR: column `{column}` is constant (every value is {value}); it cannot be estimated beside the intercept")]
    ConstantColumn {
        /// The column concerned.
        column: String,
        /// Its only value.
        value: f64,
    },
    /// Factors that are (numerically) linear combinations of each other.
    #[error("GWR: columns {} are collinear: `{column}` is a linear combination of the others (R2 = 1 - {residual_share:.1e}); drop one of them", .columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))]
    CollinearColumns {
        /// All columns involved, in input order (the intercept as `Intercept`).
        columns: Vec<String>,
        /// The column found to be a combination of the earlier ones.
        column: String,
        /// 1 - R2 of that column on the earlier ones.
        residual_share: f64,
    },
    /// A bandwidth that cannot be used.
    #[error("GWR: bandwidth {bandwidth} is invalid: {reason}")]
    BadBandwidth {
        /// The bandwidth given.
        bandwidth: f64,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// The local weighted cross-product matrix of a point is singular.
    #[error("GWR: the local regression at point {point} (x = {x}, y = {y}) is singular at bandwidth {bandwidth}: column `{column}` has no variation among its {neighbours} weighted neighbours; use a larger bandwidth")]
    SingularLocal {
        /// The 0-based point index.
        point: usize,
        /// Its x coordinate.
        x: f64,
        /// Its y coordinate.
        y: f64,
        /// The bandwidth.
        bandwidth: f64,
        /// The column whose pivot vanished.
        column: String,
        /// Number of points with a non-zero weight.
        neighbours: usize,
    },
    /// The cluster could not compute the local fits (every worker lost, a worker's
    /// answer unusable).
    #[error("GWR on the cluster: {0}")]
    Cluster(String),
    /// Partial results that do not fit together (cluster split).
    #[error("GWR: {0}")]
    Partial(String),
    /// The bandwidth search found no bandwidth with a finite AICc.
    #[error("GWR: no bandwidth in [{lower}, {upper}] gives a finite AICc (every local fit singular or too few residual degrees of freedom)")]
    SearchFailed {
        /// Lower end of the search interval.
        lower: f64,
        /// Upper end of the search interval.
        upper: f64,
    },
}
