//! Generates the gRPC server stubs and the descriptor set served by reflection.
//! Message types come from `infrad-client` (one definition on both sides of the wire);
//! protox compiles the .proto, so no system `protoc` is needed.
use std::{env, path::PathBuf};

use prost::Message;

const PROTO: &str = "proto/infrad/v1/infrad.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], ["proto"])?;
    // compile_fds does not write file_descriptor_set_path, so the set is written here.
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("infrad_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(false)
        .extern_path(".infrad.v1", "::infrad_client::proto")
        .compile_fds(fds)?;
    Ok(())
}
