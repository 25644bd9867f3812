#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only those missing.
set -euo pipefail
need=()
for pkg in cmake ninja-build g++ make pkg-config libgtest-dev ccache clang-format python3-venv \
  librdkafka-dev libsimdjson-dev librocksdb-dev libpq-dev postgresql-15 kcat openjdk-17-jre-headless maven \
  openjdk-17-jdk-headless; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
