#!/usr/bin/env bash
# Installs what patchbench needs on a fresh machine, only where it is missing: the Rust
# components and thumb targets (rust-toolchain.toml), qemu-system-arm, libudev and
# pkg-config (probe-rs talks to USB debug probes through them), and a TrueType font (DejaVu
# Sans) for the text of the PNG figures (`PATCHBENCH_FONT` names another one).
# Sourced by the other scripts; safe to run again.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "patchbench needs Rust: install it from https://rustup.rs and run this again" >&2
  exit 1
fi
# rustup reads rust-toolchain.toml and installs the listed components and targets.
(cd "$(dirname "${BASH_SOURCE[0]}")/.." && rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install)
for t in thumbv7em-none-eabihf thumbv7m-none-eabi thumbv8m.main-none-eabihf thumbv6m-none-eabi; do
  rustup target list --installed 2>/dev/null | grep -qx "$t" || rustup target add "$t"
done
packages=()
command -v qemu-system-arm >/dev/null 2>&1 || packages+=(qemu-system-arm)
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists libudev; then
  packages+=(pkg-config libudev-dev)
fi
if [ -z "${PATCHBENCH_FONT:-}" ] && [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  packages+=(fonts-dejavu-core)
fi
if [ ${#packages[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${packages[@]}" >/dev/null
fi
