#!/usr/bin/env bash
# OS packages the integration tests drive for real: Slurm (slurmctld/slurmd + munge) and shellcheck.
# Idempotent; needs root (CI and the dev machines run as root). Without root it says what is missing and stops.
set -euo pipefail
need=()
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v slurmctld >/dev/null || need+=(slurm-wlm)
command -v munged >/dev/null || need+=(munge)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install_test_deps: need root to apt-get install ${need[*]}" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
