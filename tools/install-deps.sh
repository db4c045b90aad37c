#!/usr/bin/env bash
# Installs every Debian package yjlink's build, demo and tests need.
# Idempotent: installs only what is missing, so a second run is quick.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config git
  libzmq3-dev liblmdb-dev lmdb-utils libprotobuf-c-dev protobuf-c-compiler
  libconfig-dev libcmocka-dev libsystemd-dev libcurl4-openssl-dev
  libcjson-dev libmicrohttpd-dev libsodium-dev
  python3 python3-zmq python3-aiosmtpd python3-prometheus-client
  systemd tzdata curl clang libclang-rt-14-dev
  chromium   # headless: test_digest_html.py loads the digest HTML in a real browser
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
