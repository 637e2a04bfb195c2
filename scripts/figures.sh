#!/usr/bin/env bash
# Regenerates every committed figure and summary.md from the committed CSVs
# (results/*/runs.csv) without running any device. With --defaults it first refits the
# default cycles models (host/cost-defaults.toml: what `recommend` uses for a board when no
# results are given) on those CSVs and rebuilds patchbench with them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release -q -p patchbench
pb=./target/release/patchbench
if [ "${1:-}" = "--defaults" ]; then
  {
    echo "# Default cycles models per board (see host/src/costmodel.rs), used by \`recommend\` where no"
    echo "# measured rows of the board are given; a board without an entry takes the one of its core."
    echo "# Written by \`scripts/figures.sh --defaults\` from the committed results (\`patchbench fit\`)."
    for board in qemu-m4 qemu-m3 qemu-m7 qemu-m33; do
      $pb fit results/ --board "$board" --toml
      echo
    done
  } > host/cost-defaults.toml.new
  mv host/cost-defaults.toml.new host/cost-defaults.toml
  cargo build --release -q -p patchbench
fi
$pb plot results/
