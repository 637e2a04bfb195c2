#!/usr/bin/env bash
# Regenerates the TFLite FlatBuffers reader (host/src/tflite/schema_generated.rs) from
# host/src/tflite/schema.fbs with planus-cli. Run after editing the schema; the generated file
# is committed so that builds need no code generator.
set -euo pipefail
cd "$(dirname "$0")/.."
PLANUS_VERSION=1.3.0
if ! cargo install --list | grep -q "^planus-cli v$PLANUS_VERSION:"; then
    cargo install planus-cli --version "$PLANUS_VERSION" --locked
fi
planus rust -o host/src/tflite/schema_generated.rs host/src/tflite/schema.fbs
cargo fmt -p patchbench
