#!/usr/bin/env bash
# The main job, on QEMU (qemu-m4 = mps2-an386): the default sweep (the zoo's MobileNetV2-0.35
# at 144x144, layer-wise plus 4 splits x 5 grids) -> results/mbv2-qemu-m4/, the same configs
# on every QEMU core -> results/mbv2-boards/, then the three MLPerf Tiny CNNs imported from
# their .tflite files (when ../shared/models is there) -> results/{vww,resnet8,kws}-qemu-m4/,
# and those three on every QEMU core -> results/mlperf-boards/, then the deployed models of
# ../shared/models/{mcunet,tflm} -> results/{mcunet-vww1,mcunetv2-se-large,mcunet-detection,
# person-detect}-qemu-m4/.
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
# The deployed models (float boundaries, SE blocks, a detection head, a depth multiplier).
if [ -d ../shared/models/mcunet ] && [ -d ../shared/models/tflm ]; then
    for spec in mcunet-vww1-qemu-m4 mcunetv2-se-large-qemu-m4 mcunet-detection-qemu-m4 person-detect-qemu-m4; do
        $pb sweep "specs/$spec.toml" "$@"
    done
else
    echo "skipped the deployed-model sweeps: ../shared/models/{mcunet,tflm} are not beside this checkout"
fi
$pb recommend --model mbv2-w0.35-r144 --board qemu-m4 --ram-budget 64KiB --results results/
