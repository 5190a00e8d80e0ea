#!/usr/bin/env bash
# Installs the Debian packages pinas needs, only those missing; safe to run again and again.
set -euo pipefail
PKGS=(build-essential cmake pkg-config libtorch-dev libgloo-dev libopenblas-dev libcjson-dev libgsl-dev
      libcunit1-dev libssl-dev libcairo2-dev python3
      zlib1g-dev libturbojpeg0-dev libpng-dev dataset-fashion-mnist)
# The fuzz harnesses (tests/fuzz/, `make fuzz`, the fuzz_* ctest entries) need libFuzzer:
# clang -fsanitize=fuzzer, Debian 12's clang 14 and its runtime.
PKGS+=(clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
