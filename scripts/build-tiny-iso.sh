#!/usr/bin/env bash
# Builds a tiny bootable ISO from Debian's packages: the cloud kernel (downloaded, not
# installed), an initramfs with a static busybox, and isolinux. It boots in seconds under
# TCG, prints HEARTH-TINY-READY on the serial console and powers off on ACPI shutdown.
#
# Usage: scripts/build-tiny-iso.sh [OUTPUT]   (prints the ISO's path)
# Cached under ${HEARTH_CACHE:-/var/cache/hearth-dev}/tiny-iso/<recipe hash>/: rebuilding an
# unchanged recipe is instant.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${HEARTH_CACHE:-/var/cache/hearth-dev}
kernel_meta=linux-image-cloud-amd64

resolve_kernel() {
  apt-cache depends "$kernel_meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
kpkg=$(resolve_kernel)
if [ -z "$kpkg" ]; then
  apt-get update -qq
  kpkg=$(resolve_kernel)
fi
[ -n "$kpkg" ] || { echo "build-tiny-iso: cannot resolve $kernel_meta (apt-get update?)" >&2; exit 1; }
kver=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')

# The recipe: this script, the kernel package and version, busybox's version.
bbver=$(dpkg-query -W -f='${Version}' busybox-static)
recipe=$(printf '%s\n' "$(sha256sum "$0" | cut -d' ' -f1)" "$kpkg=$kver" "busybox-static=$bbver" | sha256sum | cut -c1-16)
dir="$cache_root/tiny-iso/$recipe"
iso="$dir/tiny.iso"
if [ -s "$iso" ]; then
  [ $# -gt 0 ] && cp "$iso" "$1"
  echo "${1:-$iso}"
  exit 0
fi

echo "build-tiny-iso: building $iso ($kpkg $kver)" >&2
mkdir -p "$dir"
work=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq "$kpkg=$kver" 2>/dev/null) || (cd "$work" && apt-get download "$kpkg=$kver")
dpkg-deb -x "$work"/"$kpkg"_*.deb "$work/kernel"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-*)
moddir=$(ls -d "$work"/kernel/lib/modules/*)

# initramfs
root="$work/initramfs"
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$moddir/kernel/drivers/input/evdev.ko" "$moddir/kernel/drivers/acpi/button.ko" "$root/lib/modules/"
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
insmod /lib/modules/evdev.ko
insmod /lib/modules/button.ko
# Power off when the ACPI power button is pressed (hearth vm shutdown). The device is
# opened before READY is printed, so a shutdown sent right after READY is never lost.
for ev in /sys/class/input/event*; do
  if grep -q "Power Button" "$ev/device/name" 2>/dev/null; then
    exec 3<"/dev/input/$(basename "$ev")"
    (dd bs=24 count=1 of=/dev/null <&3 2>/dev/null; echo "HEARTH-TINY-POWEROFF"; poweroff -f) &
  fi
done
echo
echo "HEARTH-TINY-READY kernel=$(uname -r)"
echo "This tiny guest was booted by hearth from an ISO built out of Debian's packages."
n=0
while :; do
  sleep 10
  n=$((n + 10))
  echo "hearth tiny guest: up ${n}s"
done
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$work/initrd.gz"

# ISO with isolinux
iso_root="$work/iso"
mkdir -p "$iso_root/isolinux" "$iso_root/boot"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso_root/isolinux/"
cp "$vmlinuz" "$iso_root/boot/vmlinuz"
cp "$work/initrd.gz" "$iso_root/boot/initrd.gz"
cat > "$iso_root/isolinux/isolinux.cfg" <<'CFG'
SERIAL 0 115200
DEFAULT hearth
PROMPT 0
TIMEOUT 1
LABEL hearth
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.gz
  APPEND console=ttyS0,115200 quiet panic=-1
CFG
xorriso -as mkisofs -quiet -o "$work/tiny.iso" -V HEARTH_TINY -J -r \
  -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
  "$iso_root" 2>/dev/null
mv "$work/tiny.iso" "$iso"
echo "build-tiny-iso: $(du -h "$iso" | cut -f1) in $SECONDS s" >&2
[ $# -gt 0 ] && cp "$iso" "$1"
echo "${1:-$iso}"
