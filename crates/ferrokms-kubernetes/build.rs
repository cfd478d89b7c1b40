//! Generates the KMS v2 gRPC service from proto/kms_v2.proto with protox, a protobuf
//! compiler in Rust, so that building needs no protoc on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/kms_v2.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
