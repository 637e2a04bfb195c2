#!/usr/bin/env bash
# Installs TensorFlow Lite for Microcontrollers (the tflite-micro Python package, reference
# kernels) into target/tflm-venv: the oracle the differential tests compare the engine with.
# Pinned, because the oracle must not change under the tests. Sourced by scripts/test.sh;
# safe to run again. Without Python or PyPI it says so, and those tests report SKIPPED
# (or fail, under PATCHBENCH_REQUIRE_TFLM).
TFLM_VERSION="0.dev20261023182759"
tflm_venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/tflm-venv"
if ! "$tflm_venv/bin/python" -c "import tflite_micro" >/dev/null 2>&1; then
  if ! { python3 -m venv "$tflm_venv" && "$tflm_venv/bin/pip" install -q --disable-pip-version-check \
    "tflite-micro==$TFLM_VERSION"; }; then
    echo "warning: could not install tflite-micro==$TFLM_VERSION into $tflm_venv (needs python3 with venv and PyPI)" >&2
  fi
fi
