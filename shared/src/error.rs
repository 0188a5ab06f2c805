//! Library errors of `flus-shared`: every variant names the file or key concerned,
//! what was found and what was expected.

use std::path::PathBuf;

/// Result alias of `flus-shared`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// GDAL could not open, read or write a raster.
    #[error("{path}: {message}")]
    Raster {
        /// The raster concerned.
        path: PathBuf,
        /// What GDAL (or the check) said.
        message: String,
    },
    /// Two layers are not on the same grid.
    #[error("{a} and {b} are not on the same grid: {difference}. {hint}")]
    GridMismatch {
        /// The reference layer.
        a: PathBuf,
        /// The layer that differs.
        b: PathBuf,
        /// What differs, with both values.
        difference: String,
        /// What the user can do ([`ALIGN_HINT`] in a study, [`WARP_HINT`] elsewhere).
        hint: &'static str,
    },
    /// An output path is a file the command reads: writing it would destroy an input.
    #[error("{output}: refusing to write: it is an input of this command ({input}); choose an output path or folder that holds none of the inputs")]
    OutputIsInput {
        /// The output path asked for.
        output: PathBuf,
        /// The input it is (as the command was given it).
        input: PathBuf,
    },
    /// The study config is wrong.
    #[error("{file}: `{key}`: {message}")]
    Config {
        /// The config file.
        file: PathBuf,
        /// The key (dotted path) concerned.
        key: String,
        /// What was found and what was expected.
        message: String,
    },
    /// A table (CSV) is wrong.
    #[error("{path}: {message}")]
    Table {
        /// The table file.
        path: PathBuf,
        /// What was found and what was expected.
        message: String,
    },
    /// OGR could not open or read a vector file, or its features cannot be used.
    #[error("{path}: {message}")]
    Vector {
        /// The vector file concerned.
        path: PathBuf,
        /// What OGR (or the check) said.
        message: String,
    },
    /// Input data that is well formed but cannot be used (empty mask, unknown codes...).
    #[error("{0}")]
    Data(String),
    /// Work stopped because another part of the same command failed (that failure is
    /// the one to report).
    #[error("stopped: {0}")]
    Stopped(String),
    /// A geographically weighted regression cannot be fitted.
    #[error(transparent)]
    Gwr(#[from] crate::gwr::GwrError),
}

impl Error {
    /// A raster error for `path` with `message`.
    pub fn raster(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Raster {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// A table error for `path` with `message`.
    pub fn table(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Table {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// A vector error for `path` with `message`.
    pub fn vector(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Vector {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// An I/O error for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// What to do about a layer of a study that is not on the land-use grid.
pub const ALIGN_HINT: &str =
    "Set `align = true` in [study] (or run `flus prepare`) to warp them onto the land-use grid";
/// What to do about two rasters on different grids given to a command without a study
/// (`flus carbon`, `flus compare`), which has no `align` setting.
pub const WARP_HINT: &str = "Warp one onto the other's grid first, e.g. `flus prepare --reference A --out DIR --warp NAME=B`";

impl Error {
    /// The error with `hint` as the advice of a [`Error::GridMismatch`] (others unchanged).
    pub fn with_grid_hint(self, hint: &'static str) -> Self {
        match self {
            Error::GridMismatch {
                a, b, difference, ..
            } => Error::GridMismatch {
                a,
                b,
                difference,
                hint,
            },
            e => e,
        }
    }
}
