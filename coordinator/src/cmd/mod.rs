//! One module per subcommand of `flus`.

pub mod carbon;
pub mod compare;
pub mod demand;
pub mod demo;
pub mod ping;
