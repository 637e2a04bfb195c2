#!/usr/bin/env bash
# The main job: plan the zoo's MobileNetV2 layer-wise and over a sweep of patch configs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q
./target/release/patchbench plan --model mbv2-w0.35-r144 --sweep 8
