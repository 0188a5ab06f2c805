#!/usr/bin/env bash
# Runs every cargo-fuzz target of flus-cluster for a bounded time.
#   deploy/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Crashing inputs
# land in fuzz/artifacts/<target>/; after fixing the bug, copy them to
# fuzz/regressions/<target>/ where `cargo test` (shared/tests/fuzz_regressions.rs,
# worker/tests/fuzz_regressions.rs) replays them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config handlers raster_header)
fi
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "== $t: ${secs} s" >&2
  # -a: with debug assertions, so an integer overflow is a crash too;
  # -rss_limit_mb: the worker under fuzzing has 1 MiB tile limits; more is a leak
  if ! cargo +nightly fuzz run -O -a "$t" "corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1; then
    echo "== $t: FAILED (see fuzz/artifacts/$t)" >&2
    status=1
  fi
done
exit $status
