#!/usr/bin/env bash
# Installs exactly the Debian packages hearth needs to build, run and test.
# Idempotent: packages already present are skipped, so a second run takes a second.
# Must run as root (CI and the project machines are root).
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libssl-dev nlohmann-json3-dev libsqlite3-dev libspdlog-dev libfmt-dev
  libcli11-dev libexpected-dev zlib1g-dev libre2-dev libcurl4-openssl-dev libyaml-cpp-dev libpam0g-dev libnl-3-dev libnl-route-3-dev libcrypt-dev
  libzstd-dev libnbd-dev  # backup chunks and NBD reads of disks (src/backup)
  libnftables-dev  # the firewall (src/firewall): one nftables transaction per rule set
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-16 libclang-rt-16-dev llvm-16  # sanitizer and fuzzing builds (docs/hardening.md)
)
RUN_PKGS=(
  qemu-system-x86 qemu-utils ovmf xorriso iproute2 iputils-ping sqlite3
  mmdebstrap extlinux syslinux-common fdisk e2fsprogs util-linux
  btrfs-progs  # the btrfs storage driver (subvolumes, snapshots, send/receive)
  nftables  # `nft`, for looking at hearth's tables (tests, bench: the peer `nft -f`)
  iperf3  # bench/firewall_throughput_bench.py
)
# The tiny demo ISO is made from Debian's packages: a kernel (downloaded, not installed),
# a static busybox for the initramfs and isolinux to boot it.
DEMO_PKGS=( busybox-static isolinux syslinux-common cpio gzip )
TEST_PKGS=( python3 python3-pytest python3-requests python3-proxmoxer ansible wrk procps openssh-client
  python3-yaml python3-jsonschema python3-jinja2 python3-configobj python3-jsonpatch python3-netifaces python3-oauthlib )

want=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${DEMO_PKGS[@]}" "${TEST_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all ${#want[@]} packages present"
fi

# QEMU runs as this unprivileged user (-runas), never as root.
if ! getent passwd hearth-qemu >/dev/null; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hearth-qemu
  echo "install-deps: created system user hearth-qemu"
fi
