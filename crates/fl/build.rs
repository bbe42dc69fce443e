//! Compiles Flower's transport protocol with protox (pure Rust, no protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("CARGO_FEATURE_RUNTIME").is_none() {
        return Ok(());
    }
    compile()
}

#[cfg(feature = "runtime")]
fn compile() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = "../../proto";
    let file = "flwr/transport.proto";
    println!("cargo:rerun-if-changed={proto_dir}/{file}");
    let fds = protox::compile([file], [proto_dir])?;
    // Both sides of `Join` are hand-framed (src/server/service.rs,
    // src/join_stream.rs): only the messages are generated.
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .bytes(".flwr.proto.Parameters.tensors")
        .compile_fds(fds)?;
    Ok(())
}

#[cfg(not(feature = "runtime"))]
fn compile() -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
