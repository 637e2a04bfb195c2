#!/usr/bin/env bash
# The main job: the default sweep on QEMU (qemu-m4 = mps2-an386): the zoo's MobileNetV2-0.35
# at 144x144, layer-wise plus 8 patch configs, appended to results/mbv2-qemu-m4/runs.csv.
# Installs what it needs first. Cycle columns are instructions counted by QEMU, not cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p patchbench
./target/release/patchbench plan --model mbv2-w0.35-r144 --sweep 6
./target/release/patchbench sweep specs/mbv2-qemu-m4.toml "$@"
