#!/usr/bin/env bash
# The test command: formatting, lints (host and firmware, -D warnings), all tests, including
# the end-to-end tests on QEMU and the differential tests against TFLM. Installs what it
# needs first (scripts/setup.sh, scripts/setup-tflm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/setup-tflm.sh

cargo fmt --all -- --check
(cd firmware && cargo fmt --all -- --check)
cargo clippy --workspace --all-targets --all-features -- -D warnings
# The engine as the firmware sees it: no_std, on a thumb target.
cargo clippy -p harness --target thumbv7em-none-eabihf --features record -- -D warnings
# ... with the DSP kernels' inline assembly, as images for Cortex-M4/M7/M33 build it.
cargo clippy -p harness --target thumbv7em-none-eabihf --features record,dsp -- -D warnings
# The firmware needs generated sources; lint it against the tiny model's.
cargo run -q -p patchbench -- gen --model tiny --out target/gen-lint >/dev/null
(cd firmware && PATCHBENCH_GEN=../target/gen-lint cargo clippy --release --locked -- -D warnings)
(cd firmware && PATCHBENCH_GEN=../target/gen-lint cargo clippy --release --locked --features dsp -- -D warnings)
cargo test --workspace --all-features
