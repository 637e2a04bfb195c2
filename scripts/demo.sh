#!/usr/bin/env bash
# The main job, on QEMU (qemu-m4 = mps2-an386): the default sweep (the zoo's MobileNetV2-0.35
# at 144x144, layer-wise plus 4 splits x 5 grids) -> results/mbv2-qemu-m4/, the same configs
# on every QEMU core -> results/mbv2-boards/, then the three MLPerf Tiny CNNs imported from
# their .tflite files (when ../shared/models is there) -> results/{vww,resnet8,kws}-qemu-m4/,
# and those three on every QEMU core -> results/mlperf-boards/.
# Each folder gets runs.csv, spec.toml, figures/ (SVG and PNG) and summary.md. A sweep skips
# the images its folder already measured, so running this again changes no CSV; pass
# --rerun to measure everything again. Installs what it needs first.
# Cycle columns are instructions counted by QEMU, not cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p patchbench
pb=./target/release/patchbench
$pb plan --model mbv2-w0.35-r144
$pb sweep specs/mbv2-qemu-m4.toml "$@"
$pb sweep specs/mbv2-boards.toml "$@"
# The specs name the models relative to specs/: ../../shared/models/mlperf-tiny/*.tflite.
if [ -d ../shared/models/mlperf-tiny ]; then
    for spec in vww-qemu-m4 resnet8-qemu-m4 kws-qemu-m4 mlperf-boards; do
        $pb sweep "specs/$spec.toml" "$@"
    done
else
    echo "skipped the MLPerf Tiny sweeps: ../shared/models/mlperf-tiny is not beside this checkout"
fi
$pb recommend --model mbv2-w0.35-r144 --board qemu-m4 --ram-budget 64KiB --results results/
