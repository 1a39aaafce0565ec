#!/usr/bin/env bash
# Validates cloud-config files with Debian's own `cloud-init schema`, without installing
# cloud-init on this host (its boot services would act on the host): the package is
# downloaded once, unpacked under ${HEARTH_CACHE:-/var/cache/hearth-dev}/cloud-init/<version>
# and run from there. Usage: scripts/cloud-init-schema.sh FILE...   (exit 0 = all valid)
set -euo pipefail
cache=${HEARTH_CACHE:-/var/cache/hearth-dev}
version=$(apt-cache policy cloud-init | awk '/Candidate:/ {print $2}')
[ -n "$version" ] && [ "$version" != "(none)" ] || { apt-get update -qq; version=$(apt-cache policy cloud-init | awk '/Candidate:/ {print $2}'); }
dir="$cache/cloud-init/$version"
if [ ! -d "$dir/usr/lib/python3/dist-packages/cloudinit" ]; then
  mkdir -p "$dir"
  work=$(mktemp -d)
  (cd "$work" && apt-get download -qq "cloud-init=$version" 2>/dev/null)
  dpkg-deb -x "$work"/cloud-init_*.deb "$dir"
  rm -rf "$work"
fi
rc=0
for f in "$@"; do
  PYTHONPATH="$dir/usr/lib/python3/dist-packages" /usr/bin/python3 -m cloudinit.cmd.main schema --config-file "$f" || rc=1
done
exit $rc
