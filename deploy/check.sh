#!/usr/bin/env bash
# Offline checks of the deploy files: shellcheck on the scripts, and the Kubernetes
# manifests rendered with kustomize and validated against the Kubernetes schemas
# (PyPI kubernetes-validate, --strict). Installs what it needs (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
if ((${#need[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

shellcheck deploy/*.sh deploy/slurm/flus.sbatch .ci/run
echo "shellcheck: ok"

venv=${FLUS_CHECK_VENV:-${TMPDIR:-/tmp}/flus-deploy-check-venv}
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kubernetes-validate
fi
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
for k in deploy/k8s deploy/k8s-urls; do
  kubectl kustomize "$k" > "$rendered"
  "$venv/bin/kubernetes-validate" --strict "$rendered"
  echo "kubernetes manifests of $k: ok"
done
# the study of the URL overlay is a valid study (its rasters are not fetched)
grep -q '^path = "/vsis3/' deploy/k8s-urls/study.example.toml
