#!/usr/bin/env bash
# Installs the Debian tools the tests use (shellcheck, Go, python3 with NumPy) when they are missing and this machine can (root with apt-get);
# otherwise says which command installs them. Run by `npm test` (pretest) and by .ci/run.
set -euo pipefail

missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
# The mesh extension is Go (standard library only, Go 1.19 or newer: Debian's golang-go).
command -v go >/dev/null 2>&1 || missing+=(golang-go)
# The example model handler (lib/model-handler) is tested with python3 and NumPy (Debian's python3-numpy serves
# Debian's python3; a python3 from elsewhere on PATH needs NumPy from its own installer).
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import numpy' >/dev/null 2>&1 || missing+=(python3-numpy)

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: installing ${missing[*]} (Debian packages)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "ensure-tools: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
exit 1
