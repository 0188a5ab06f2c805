#!/usr/bin/env bash
# Installs what flus-cluster needs to build and run on Debian 12 (bookworm) / Ubuntu:
# GDAL (library, headers, command-line tools), pkg-config and Chromium (the headless
# browser that checks report.html in the tests). Idempotent: packages that
# are already there are left alone. The protocol is compiled with protox (pure Rust), so
# no protoc is needed. Rust itself comes from rustup when cargo is missing.
set -euo pipefail

packages=(libgdal-dev gdal-bin python3-gdal nginx-light pkg-config ca-certificates chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "cargo is in ~/.cargo/bin: add it to PATH (source ~/.cargo/env)" >&2
  else
    echo "installing Rust with rustup" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  fi
fi
