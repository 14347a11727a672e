#!/usr/bin/env bash
# The engine benchmark: a fresh SoftHSM2 token, `rssp-engine init`, an engine serving
# on a private socket, then rssp-bench-engine against it (same token for the raw rate).
# usage: tests/bench/engine.sh [--smoke] [--seconds S] [RSSP_ENGINE_BIN BENCH_BIN]
#   defaults: build/engine/rssp-engine and build/tests/bench/rssp-bench-engine
# --smoke runs every phase for a few milliseconds (checks that it runs; numbers are
# meaningless). Prints the table rssp-bench-engine measured.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"
SECONDS_PER=3
if [ "${1:-}" = "--smoke" ]; then SECONDS_PER=0.05; shift; fi
if [ "${1:-}" = "--seconds" ]; then SECONDS_PER=$2; shift 2; fi
ENGINE=${1:-$ROOT/build/engine/rssp-engine}
BENCH=${2:-$ROOT/build/tests/bench/rssp-bench-engine}
MODULE=${RSSP_TEST_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

WORK=$(mktemp -d "${RSSP_TEST_WORK:-/tmp}/rssp-bench-engine.XXXXXX")
ENGINE_PID=
cleanup() {
  if [ -n "$ENGINE_PID" ]; then kill -TERM "$ENGINE_PID" 2>/dev/null || true; wait "$ENGINE_PID" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

rssp_softhsm_conf "$WORK/hsm"
export SOFTHSM2_CONF="$WORK/hsm/softhsm2.conf"
PIN="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
(umask 077; printf '%s\n' "$PIN" > "$WORK/pin")
softhsm2-util --init-token --free --label bench --pin "$PIN" --so-pin "so-$PIN" >/dev/null

export RSSP_PKCS11_MODULE="$MODULE" RSSP_TOKEN_LABEL=bench RSSP_PIN_FILE="$WORK/pin"
# the registration authority whose vouchers the benchmark presents
(umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ra.key" 2>/dev/null)
openssl pkey -in "$WORK/ra.key" -pubout -out "$WORK/ra.pem"
export RSSP_RA_KEYS="$WORK/ra.pem"
export RSSP_ENGINE_SOCKET="$WORK/run/engine.sock" RSSP_AUDIT_FILE="$WORK/audit.log"
export RSSP_ENGINE_WORKERS=${RSSP_ENGINE_WORKERS:-4} RSSP_LOG_LEVEL=warn
"$ENGINE" init >/dev/null
"$ENGINE" serve &
ENGINE_PID=$!
for _ in $(seq 100); do [ -S "$RSSP_ENGINE_SOCKET" ] && break; sleep 0.1; done

# BENCH_ARGS: more options for rssp-bench-engine, e.g. "--keys rsa"
# shellcheck disable=SC2086
${BENCH_WRAPPER:-} "$BENCH" --socket "$RSSP_ENGINE_SOCKET" --module "$MODULE" --token bench --pin-file "$WORK/pin" --ra-key "$WORK/ra.key" ${BENCH_ARGS:-} \
  --engine-pid "$ENGINE_PID" --seconds "$SECONDS_PER"

kill -TERM "$ENGINE_PID"
wait "$ENGINE_PID"
ENGINE_PID=
[ -n "${KEEP_AUDIT:-}" ] && cp "$WORK/audit.log" "$KEEP_AUDIT"
"$ENGINE" audit-verify "$WORK/audit.log" 2>/dev/null
