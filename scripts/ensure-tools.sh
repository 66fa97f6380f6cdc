#!/usr/bin/env bash
# Installs the Debian tools the tests use (shellcheck, Go) when they are missing and this machine can (root with apt-get);
# otherwise says which command installs them. Run by `npm test` (pretest) and by .ci/run.
set -euo pipefail

missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
# The mesh extension is Go (standard library only, Go 1.19 or newer: Debian's golang-go).
command -v go >/dev/null 2>&1 || missing+=(golang-go)

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
