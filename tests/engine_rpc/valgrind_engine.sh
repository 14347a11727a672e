#!/usr/bin/env bash
# rssp-engine under valgrind: a short serve, a few calls of every kind (the benchmark
# client with tiny durations: activations, approvals, SignHash, unknown methods),
# SIGTERM; fails on any memory error or definite leak.
# usage: valgrind_engine.sh RSSP_ENGINE_BIN BENCH_BIN
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../deploy/local/lib.sh
. "$HERE/../../deploy/local/lib.sh"
ENGINE=$1
BENCH=$2
MODULE=${RSSP_TEST_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
WORK=$(mktemp -d "${RSSP_TEST_WORK:-/tmp}/rpc-valgrind.XXXXXX")
VG_PID=
cleanup() {
  if [ -n "$VG_PID" ]; then kill -KILL "$VG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

rssp_softhsm_conf "$WORK/hsm"
export SOFTHSM2_CONF="$WORK/hsm/softhsm2.conf"
PIN="vg-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
(umask 077; printf '%s\n' "$PIN" > "$WORK/pin")
softhsm2-util --init-token --free --label vg --pin "$PIN" --so-pin "so-$PIN" >/dev/null
export RSSP_PKCS11_MODULE="$MODULE" RSSP_TOKEN_LABEL=vg RSSP_PIN_FILE="$WORK/pin"
# the registration authority whose vouchers the benchmark presents
(umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ra.key" 2>/dev/null)
openssl pkey -in "$WORK/ra.key" -pubout -out "$WORK/ra.pem"
export RSSP_RA_KEYS="$WORK/ra.pem"
export RSSP_ENGINE_SOCKET="$WORK/run/engine.sock" RSSP_AUDIT_FILE="$WORK/audit.log"
export RSSP_ENGINE_WORKERS=2 RSSP_LOG_LEVEL=warn
"$ENGINE" init >/dev/null

valgrind --quiet --leak-check=full --error-exitcode=1 --errors-for-leak-kinds=definite \
  --suppressions="$HERE/valgrind.supp" --log-file="$WORK/valgrind.log" \
  "$ENGINE" serve &
VG_PID=$!
"$BENCH" --socket "$RSSP_ENGINE_SOCKET" --module "$MODULE" --token vg --pin-file "$WORK/pin" --ra-key "$WORK/ra.key" \
  --seconds 0.02 --keys ec --timeout-ms 120000 >/dev/null
kill -TERM "$VG_PID"
rc=0
wait "$VG_PID" || rc=$?
VG_PID=
if [ "$rc" -ne 0 ] || grep -q "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]" "$WORK/valgrind.log"; then
  echo "rssp-engine under valgrind: exit $rc" >&2
  cat "$WORK/valgrind.log" >&2
  exit 1
fi
grep -q '"event":"engine.stop"' "$WORK/audit.log"
echo "valgrind clean"; cat "$WORK/valgrind.log"
