#!/usr/bin/env bash
# Several worker processes on this machine (loopback), then `flus run` over them:
# the same as `flus run --local-workers N`, but with the workers started by hand, as on
# a real cluster. Usage: deploy/local-cluster.sh N STUDY.toml [flus run options...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: local-cluster.sh N STUDY.toml [options]}
study=${2:?usage: local-cluster.sh N STUDY.toml [options]}
shift 2
bin=${FLUS_BIN:-target/release}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/token"
addrs=()
for i in $(seq 1 "$n"); do
  "$bin/flus-worker" --listen 127.0.0.1:0 --token-file "$tmp/token" > "$tmp/worker$i.out" 2> "$tmp/worker$i.log" &
  for _ in $(seq 1 100); do
    [ -s "$tmp/worker$i.out" ] && break
    sleep 0.1
  done
  addr=$(head -n 1 "$tmp/worker$i.out")
  [ -n "$addr" ] || { echo "worker $i did not start (see $tmp/worker$i.log)" >&2; exit 1; }
  addrs+=("$addr")
done
workers=$(IFS=,; echo "${addrs[*]}")
echo "workers: $workers" >&2
"$bin/flus" run "$study" --workers "$workers" --token-file "$tmp/token" "$@"
