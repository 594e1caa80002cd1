#!/usr/bin/env bash
# Installs the real peers and services the tests use, when they are missing:
# curl and openssl (interoperability). Debian packages only. On a developer
# machine without root this warns and goes on (the tests then skip loudly);
# under CI=true a missing component is an error.
set -euo pipefail

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${need[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
elif [ "${CI:-}" = "true" ]; then
  echo "deps: cannot install ${need[*]} (need root and apt-get)" >&2
  exit 1
else
  echo "deps: WARNING: ${need[*]} missing and cannot be installed here; tests that need them will skip" >&2
fi
