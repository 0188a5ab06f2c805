//! One module per subcommand of `flus`.

pub mod bench;
pub mod bench_kernels;
pub mod carbon;
pub mod carbon_json;
pub mod carbon_stream;
pub mod common;
pub mod compare;
pub mod demand;
pub mod demo;
pub mod gwr;
pub mod make_study;
pub mod ping;
pub mod prepare;
pub mod report;
pub mod run;
pub mod simulate;
pub mod validate;
