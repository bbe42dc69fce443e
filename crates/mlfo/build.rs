//! Compiles the Mo-Mo protocol with protox (pure Rust, no protoc).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = "../../proto";
    let file = "momo/momo.proto";
    println!("cargo:rerun-if-changed={proto_dir}/{file}");
    let fds = protox::compile([file], [proto_dir])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
