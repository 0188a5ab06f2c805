#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the tests: starts munged, slurmctld and
# slurmd with a generated slurm.conf (ports, state and sockets in a temporary folder;
# nothing outside this machine, no systemd), submits deploy/slurm/flus.sbatch with
# sbatch, waits for the job (bounded), stops the daemons and removes the folder.
#   deploy/slurm/test.sh BIN_DIR STUDY.toml OUT_DIR [flus run options]
# Exits 0 when the job completed; else prints the job's state and logs and exits 1.
# Needs Debian's slurm-wlm and munge (deploy/install-deps.sh) and root (slurmd).
set -euo pipefail
bin=$(readlink -f "${1:?usage: test.sh BIN_DIR STUDY.toml OUT_DIR [flus run options]}")
study=$(readlink -f "${2:?usage}")
out=$(readlink -m "${3:?usage}")
shift 3
repo=$(cd "$(dirname "$0")/../.." && pwd)
job_timeout=${FLUS_SLURM_JOB_TIMEOUT:-900}

for t in munged slurmctld slurmd sbatch squeue scontrol; do
  command -v "$t" >/dev/null 2>&1 || {
    echo "slurm test: $t not found: install Debian's slurm-wlm and munge (deploy/install-deps.sh)" >&2
    exit 1
  }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm test: slurmd must run as root here (it starts jobs as their users)" >&2
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/flus-slurm-XXXXXX")
chmod 755 "$dir"
mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
chmod 700 "$dir/munge"
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
host=$(hostname)
cpus=$(nproc)
export SLURM_CONF=$dir/slurm.conf
cat > "$SLURM_CONF" <<CONF
ClusterName=flustest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=flus Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

stop() {
  for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [ -f "$pid" ]; then
      kill "$(cat "$pid")" 2>/dev/null || true
    fi
  done
  sleep 1
  rm -rf "$dir"
}
trap stop EXIT
fail() {
  echo "slurm test: $*" >&2
  for f in "$dir"/log/*.log; do
    echo "--- $f" >&2
    tail -n 20 "$f" >&2 || true
  done
  exit 1
}

head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
  --log-file="$dir/log/munged.log" --pid-file="$dir/munge/munged.pid" \
  --seed-file="$dir/munge/seed" || fail "munged did not start"
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"
for _ in $(seq 1 60); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 1
done
[ "${state:-}" = idle ] || fail "the node is not idle after 60 s (sinfo: ${state:-nothing})"
echo "slurm test: single-node Slurm up ($host, $cpus CPUs)" >&2

mkdir -p "$out"
job=$(cd "$repo" && FLUS_BIN=$bin sbatch --parsable --output="$out/slurm-%j.log" \
  deploy/slurm/flus.sbatch "$study" "$out" "$@") || fail "sbatch refused the job"
echo "slurm test: job $job submitted" >&2
waited=0
while :; do
  state=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$state" in
    COMPLETED) break ;;
    FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
      cat "$out/slurm-$job.log" >&2 || true
      fail "job $job ended $state" ;;
  esac
  if [ "$waited" -ge "$job_timeout" ]; then
    scancel "$job" || true
    cat "$out/slurm-$job.log" >&2 || true
    fail "job $job still ${state:-unknown} after $job_timeout s ($(squeue -h -j "$job" -o %R 2>/dev/null))"
  fi
  sleep 2
  waited=$((waited + 2))
done
echo "slurm test: job $job completed" >&2
