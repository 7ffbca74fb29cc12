//! Sets `cfg(wasm_threads)` for the WASM build with threads (`wasm32-wasip1-threads`): its
//! atomics and shared memory are not visible to `cfg(target_feature = "atomics")` on a stable
//! compiler (an unstable target feature is left out of `cfg`), and nothing else in `cfg` tells
//! that target from `wasm32-wasip1`. The engine then runs on several threads there
//! (`engine::schedule`) and the WASM allocator takes a lock (`wasm_alloc`).
fn main() {
    println!("cargo:rustc-check-cfg=cfg(wasm_threads)");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("wasm32-") && target.ends_with("-threads") {
        println!("cargo:rustc-cfg=wasm_threads");
    }
}
