#!/usr/bin/env bash
# Debian packages swx and its tests use: nats-server (embedded JetStream), openssl, xmlsec1 (outside judge of XMLDSig).
set -euo pipefail
need=()
for pkg in nats-server openssl xmlsec1; do
  command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "swx needs: ${need[*]}. Run: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
