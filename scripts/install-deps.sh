#!/usr/bin/env bash
# Installs the Debian 12 packages blocksnap needs, and only those missing (idempotent).
#   scripts/install-deps.sh build   # compile and run blocksnapd
#   scripts/install-deps.sh test    # + every tool the test suite drives
set -euo pipefail

build_pkgs=(meson ninja-build pkg-config g++ liburing-dev libnbd-dev libsystemd-dev
  libyaml-cpp-dev librocksdb-dev libspdlog-dev libcli11-dev nlohmann-json3-dev libssl-dev
  tzdata)
test_pkgs=(libgtest-dev libgmock-dev libnbd-bin python3-libnbd python3-pytest
  python3-pytest-timeout nbdkit nbd-client qemu-utils fio e2fsprogs fuse3 nbdfuse dbus
  systemd util-linux procps clang openssl
  debhelper dpkg-dev scdoc lintian bash-completion rpm python3-seccomp)

want=("${build_pkgs[@]}")
[[ "${1:-build}" == test ]] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
