//! Wires in the image the host generated for one (model, patch config, board):
//! `$PATCHBENCH_GEN/model.rs` (model, plan and board constants), the weight and input blobs
//! it includes, and `memory.x` (the board's memory layout plus a stack reserve).

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=PATCHBENCH_GEN");
    // Armv6-M (Cortex-M0+): no DWT cycle counter, no caches, no atomic read-modify-write.
    println!("cargo::rustc-check-cfg=cfg(armv6m)");
    if std::env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv6m")) {
        println!("cargo::rustc-cfg=armv6m");
    }
    let Some(gen) = std::env::var_os("PATCHBENCH_GEN") else {
        panic!(
            "PATCHBENCH_GEN is not set: firmware images are generated and built by the host, \
             e.g. `patchbench run --board qemu-m4 --model tiny`, or `patchbench gen --out DIR` \
             followed by `PATCHBENCH_GEN=DIR cargo build --release`"
        );
    };
    let gen = PathBuf::from(gen).canonicalize().expect("PATCHBENCH_GEN names an existing directory");
    for f in ["model.rs", "memory.x", "weights.bin", "input.bin"] {
        let p = gen.join(f);
        assert!(p.is_file(), "{} is missing: regenerate the image with `patchbench gen`", p.display());
        println!("cargo::rerun-if-changed={}", p.display());
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::copy(gen.join("memory.x"), out.join("memory.x")).unwrap();
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rustc-env=PATCHBENCH_MODEL_RS={}", gen.join("model.rs").display());
}
