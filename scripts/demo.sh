#!/usr/bin/env bash
# The main job: install, build, start `hearth serve` on a local data dir, build a tiny
# bootable ISO from Debian's packages, upload it, create a VM that boots it, show the
# guest's serial console, then print the URL and login. The daemon keeps running.
#
#   sudo scripts/demo.sh            (data in ./var/demo; stop with: scripts/demo.sh --stop)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="$root/var/demo"
port=${HEARTH_DEMO_PORT:-8006}
pidfile="$data/hearth.pid"

stop_daemon() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    while kill -0 "$(cat "$pidfile")" 2>/dev/null; do sleep 0.1; done
  fi
}
# The CLI checks the server's certificate: pin the one this daemon logged at start.
fingerprint() { sed -n 's/.*TLS certificate SHA-256 fingerprint: //p' "$data/hearth.log" 2>/dev/null | tail -n 1; }
if [ "${1:-}" = "--stop" ]; then
  export HEARTH_URL="https://127.0.0.1:$port" HEARTH_FINGERPRINT=$(fingerprint)
  [ -f "$data/token" ] && export HEARTH_TOKEN=$(cat "$data/token")
  build/hearth vm stop 100 >/dev/null 2>&1 || true
  stop_daemon
  echo "demo stopped (data kept in $data)"
  exit 0
fi

step() { printf '\n==> %s\n' "$*"; }

step "Installing Debian packages"
scripts/install-deps.sh
step "Building hearth"
scripts/build.sh
mkdir -p "$data"

step "Starting hearth serve on https://127.0.0.1:$port"
stop_daemon
build/hearth serve --data-dir "$data" --listen "0.0.0.0:$port" >"$data/hearth.log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 100); do
  [ -s "$data/run/api-port" ] && grep -q "API ready" "$data/hearth.log" && break
  sleep 0.1
done
grep -q "API ready" "$data/hearth.log" || { cat "$data/hearth.log"; echo "hearth did not start" >&2; exit 1; }
tail -n 1 "$data/hearth.log"

step "Creating the admin user admin@pve and an API token"
if [ ! -f "$data/admin-password" ]; then
  head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$data/admin-password"
  chmod 600 "$data/admin-password"
fi
build/hearth user add admin@pve --admin --password-stdin --data-dir "$data" <"$data/admin-password"
if [ ! -f "$data/token" ]; then
  build/hearth token add 'admin@pve!demo' --data-dir "$data" 2>/dev/null >"$data/token"
  chmod 600 "$data/token"
fi
export HEARTH_URL="https://127.0.0.1:$port" HEARTH_TOKEN=$(cat "$data/token") HEARTH_FINGERPRINT=$(fingerprint)

step "Building a tiny bootable ISO from Debian's packages"
iso=$(scripts/build-tiny-iso.sh)
echo "$iso"

step "Uploading it to storage 'local'"
build/hearth storage content local --content iso | grep -q 'local:iso/tiny.iso' ||
  build/hearth storage upload "$iso" --name tiny.iso

step "Creating VM 100 and booting it from the ISO"
if build/hearth vm status 100 >/dev/null 2>&1; then
  build/hearth vm stop 100 >/dev/null 2>&1 || true
  build/hearth vm destroy 100
fi
build/hearth vm create 100 name=tiny memory=256 ide2=local:iso/tiny.iso,media=cdrom scsi0=local:1 \
  net0=virtio serial0=socket boot='order=ide2;scsi0' --start

step "The guest's serial console"
build/hearth vm serial 100 --follow --until HEARTH-TINY-READY --timeout 300
echo

cat <<DONE

==> hearth is running
    Web API:  https://$(hostname -f 2>/dev/null || hostname):$port/api2/json   (also https://127.0.0.1:$port)
    Login:    admin@pve   password: $(cat "$data/admin-password")
    Token:    export HEARTH_URL=$HEARTH_URL HEARTH_TOKEN='$(cat "$data/token")'
              export HEARTH_FINGERPRINT=$HEARTH_FINGERPRINT   # the daemon's certificate
    Try:      build/hearth vm list;  build/hearth vm serial 100 -f;  build/hearth vm shutdown 100
    Stop:     scripts/demo.sh --stop
DONE
