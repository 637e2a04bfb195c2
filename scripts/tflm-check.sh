#!/usr/bin/env bash
# Checks patchbench against TensorFlow Lite for Microcontrollers on a model of your own:
# random inputs in the model input's type (`patchbench random-input`) run through TFLM
# (scripts/tflm-run.py) and through `patchbench infer --dump` with the options you give (a
# patch config, say), and every op's output and the model output must be the same bytes.
#
# usage: scripts/tflm-check.sh MODEL.tflite [--seeds N] [infer options: --split S --patches NxM --input-in arena]
# Exit status 0 when every seed matches; 1 with the first op that differs otherwise; 2 when
# something else fails. PATCHBENCH_BIN and PATCHBENCH_TFLM_PYTHON override the binary and
# the Python that runs TFLM.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
model="$1"
shift
seeds=3
infer_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    *) infer_args+=("$1"); shift ;;
  esac
done
[ -f "$model" ] || { echo "no such model: $model" >&2; exit 2; }

source "$root/scripts/setup-tflm.sh"
python="${PATCHBENCH_TFLM_PYTHON:-$tflm_venv/bin/python}"
"$python" -c "import tflite_micro" 2>/dev/null || { echo "TFLM is not installed (see scripts/setup-tflm.sh)" >&2; exit 2; }
patchbench="${PATCHBENCH_BIN:-}"
if [ -z "$patchbench" ]; then
  cargo build -q --release -p patchbench --manifest-path "$root/Cargo.toml"
  patchbench="$root/target/release/patchbench"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$patchbench" plan --model "$model" >/dev/null || { echo "patchbench cannot plan $model (see above)" >&2; exit 2; }
failed=0
for seed in $(seq 1 "$seeds"); do
  case_dir="$work/seed$seed"
  mkdir -p "$case_dir"
  cp "$model" "$case_dir/model.tflite"
  # Raw bytes in the input's type (int8, uint8, or float over its QUANTIZE's range).
  "$patchbench" random-input --model "$model" --seed "$seed" --out "$case_dir/input.bin" >/dev/null
  "$python" "$root/scripts/tflm-run.py" "$case_dir"
  if [ -f "$case_dir/error.txt" ]; then
    echo "seed $seed: TFLM did not run the model: $(cat "$case_dir/error.txt")" >&2
    exit 2
  fi
  if ! "$patchbench" infer --model "$model" --input "$case_dir/input.bin" --output "$case_dir/engine.bin" \
    --dump "$case_dir/engine" "${infer_args[@]}" 2>"$case_dir/infer.log"; then
    cat "$case_dir/infer.log" >&2
    exit 2
  fi
  # Every op patchbench ran (shape arithmetic it folded at import has no file), named by
  # its operator index in the file, as TFLM's dumps are.
  ops=0
  bad=""
  for name in $(ls "$case_dir/engine" | grep '^op[0-9]*\.bin$' | sort -V); do
    ops=$((ops + 1))
    if ! cmp -s "$case_dir/$name" "$case_dir/engine/$name"; then
      n="${name#op}"
      bad="op $((10#${n%.bin}))"
      break
    fi
  done
  if [ -z "$bad" ] && ! cmp -s "$case_dir/output.bin" "$case_dir/engine.bin"; then
    bad="the model output"
  fi
  if [ -n "$bad" ]; then
    echo "seed $seed: $bad differs from TFLM" >&2
    failed=1
  else
    echo "seed $seed: $ops op outputs and the model output equal TFLM's"
  fi
done
exit "$failed"
