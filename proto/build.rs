//! Generates the camtrail.v1 prost messages and tonic services, plus a file descriptor set
//! for gRPC server reflection. `protoc` comes from the `protoc-bin-vendored` crate, so a
//! fresh machine needs nothing installed.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "camtrail/v1/detection.proto",
    "camtrail/v1/ingest.proto",
    "camtrail/v1/query.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY-free: build scripts are single-threaded; prost-build reads PROTOC from the env.
    // https://docs.rs/prost-build/latest/prost_build/#sourcing-protoc
    unsafe_env_set("PROTOC", protoc.as_os_str());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // Undecodable requests are INVALID_ARGUMENT, not INTERNAL (src/wire.rs).
        .codec_path("crate::wire::StrictCodec")
        .file_descriptor_set_path(out_dir.join("camtrail_v1_descriptor.bin"))
        .compile_protos(PROTOS, &["."])?;
    lenient_ingest_server(&out_dir);
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}

/// `std::env::set_var` is `unsafe` in edition 2024 because other threads may read the
/// environment; a build script has no other threads.
#[allow(unsafe_code)]
fn unsafe_env_set(key: &str, value: &std::ffi::OsStr) {
    // SAFETY: build scripts run single-threaded before any other code reads the environment.
    unsafe { std::env::set_var(key, value) };
}

/// A second server for `camtrail.v1.Ingest` (same routes) whose request type is the
/// lenient mirror in `src/wire.rs`, so invalid UTF-8 becomes a per-event rejection instead
/// of failing the whole batch; `wire::IngestCodec` bounds the event count before decoding.
/// Written to `OUT_DIR/camtrail.v1.Ingest.rs`.
fn lenient_ingest_server(out_dir: &std::path::Path) {
    use tonic_build::manual::{Builder, Method, Service};
    let method = |name: &str, route: &str| {
        Method::builder()
            .name(name)
            .route_name(route)
            .input_type("crate::wire::RawEventBatch")
            .output_type("crate::v1::BatchAck")
            .codec_path("crate::wire::IngestCodec")
    };
    let service = Service::builder()
        .name("Ingest")
        .package("camtrail.v1")
        .method(
            method("publish", "Publish")
                .client_streaming()
                .server_streaming()
                .build(),
        )
        .method(method("publish_batch", "PublishBatch").build())
        .build();
    Builder::new()
        .build_client(false)
        .out_dir(out_dir)
        .compile(&[service]);
}
