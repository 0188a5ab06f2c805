//! Compiles `proto/flus/v1/*.proto` with protox (a pure-Rust protobuf compiler, so no
//! system `protoc` is needed) and generates the tonic/prost code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "flus/v1/health.proto",
        "flus/v1/worker.proto",
        "flus/v1/gwr.proto",
        "flus/v1/train.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
