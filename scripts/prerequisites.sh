#!/usr/bin/env bash
# Debian packages swx and its tests use: nats-server (embedded JetStream), openssl, xmlsec1 (outside judge of
# XMLDSig), curl (the tests run the curl commands `swx sign` prints), python3 (runs the check.py that evidence
# bundles carry, as an auditor would), python3-zeep and python3-xmlsec (the stock SOAP client with WS-Security
# that the query-service tests ask the hub with), faketime (the suite runs the certificate, CRL and time-stamp tests again
# with the clock a year ahead), xmllint (libxml2-utils: validates the AS4 and ebMS signals swx writes against the OASIS
# schemas, offline), OpenSSH's sftp client and sshd (the stock client and server the SFTP connector is judged against),
# chromium with CJK fonts (the console's pages are driven and screenshot in both languages by playwright-core).
set -euo pipefail
need=()
for pair in nats-server:nats-server openssl:openssl xmlsec1:xmlsec1 python3:python3 curl:curl xmllint:libxml2-utils sftp:openssh-client; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
/usr/bin/python3 -c 'import zeep, xmlsec' >/dev/null 2>&1 || need+=(python3-zeep python3-xmlsec)
/usr/bin/python3 -c 'import cryptography, lxml' >/dev/null 2>&1 || need+=(python3-cryptography python3-lxml)
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -d /usr/share/fonts/opentype/noto ] || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "swx needs: ${need[*]}. Run: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
