#!/usr/bin/env bash
# The main job, on QEMU (qemu-m4 = mps2-an386): the default sweep (the zoo's MobileNetV2-0.35
# at 144x144, layer-wise plus 8 patch configs) -> results/mbv2-qemu-m4/runs.csv, then the
# three MLPerf Tiny CNNs imported from their .tflite files (when ../shared/models is there)
# -> results/{vww,resnet8,kws}-qemu-m4/runs.csv. Installs what it needs first.
# Cycle columns are instructions counted by QEMU, not cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p patchbench
./target/release/patchbench plan --model mbv2-w0.35-r144 --sweep 6
./target/release/patchbench sweep specs/mbv2-qemu-m4.toml "$@"
# The specs name the models relative to specs/: ../../shared/models/mlperf-tiny/*.tflite.
if [ -d ../shared/models/mlperf-tiny ]; then
    for spec in vww resnet8 kws; do
        ./target/release/patchbench sweep "specs/$spec-qemu-m4.toml" "$@"
    done
else
    echo "skipped the MLPerf Tiny sweeps: ../shared/models/mlperf-tiny is not beside this checkout"
fi
