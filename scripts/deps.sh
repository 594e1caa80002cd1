#!/usr/bin/env bash
# Installs the real peers and services the tests use, when they are missing:
# curl and openssl, strongSwan's pki (interoperability), PostgreSQL (the
# scale-out store; tests start throw-away clusters themselves), SoftHSM2 (CA
# keys in PKCS#11), Chromium (the admin dashboard's browser tests). Debian packages only. On a developer
# machine without root this warns and goes on (the tests then skip loudly);
# under CI=true a missing component is an error.
set -euo pipefail

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# pki's EST client needs the openssl plugin to load EC certificates; that
# plugin is only a Recommends of strongswan-pki, so it is named here.
if ! command -v pki >/dev/null 2>&1 || ! dpkg -s libstrongswan-standard-plugins >/dev/null 2>&1; then
  need+=(strongswan-pki libstrongswan-standard-plugins)
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
# The admin dashboard is tested in a real headless browser.
command -v chromium >/dev/null 2>&1 || need+=(chromium)

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
