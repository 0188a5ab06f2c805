//! One module per subcommand of `flus`.

pub mod compare;
pub mod demand;
pub mod demo;
pub mod gwr;
pub mod ping;
