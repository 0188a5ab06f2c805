#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the shipped
# Ben Cat example study end to end (local workers on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --workspace
exec ./target/release/flus demo "$@"
