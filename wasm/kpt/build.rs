//! Go's js/wasm glue (which kpt's nodejs runtime embeds) reads the module's memory from the export
//! `mem`; wasm-ld names it `memory` unless told otherwise.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--export-memory=mem");
    }
}
