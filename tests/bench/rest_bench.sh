#!/usr/bin/env bash
# The REST benchmark (not a ctest timed test): raw PKCS#11, engine SignHash and REST
# signatures/signHash side by side on one SoftHSM2 token, plus the full approval flow.
# See rest_bench.py for what each phase measures.
#
#   tests/bench/rest_bench.sh [--seconds N] [--keys rsa2048,ecp256] [--connections 16] ...
#
# Builds (release) into $RSSP_BENCH_BUILD (default build/), uses $RSSP_TEST_DB_URL when
# set, else starts a private PostgreSQL cluster in a temp dir for the run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"
rssp_install_packages "${RSSP_TEST_PACKAGES[@]}"
BUILD=${RSSP_BENCH_BUILD:-$ROOT/build}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target rssp-engine rssp-gateway rest_raw rest_engine >/dev/null

WORK=$(mktemp -d /tmp/rssp-bench.XXXXXX)
chmod 0755 "$WORK"
cleanup() {
  [ -d "$WORK/pg/data" ] && rssp_pg_stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ -z "${RSSP_TEST_DB_URL:-}" ]; then
  rssp_pg_init "$WORK/pg"
  port=$((20000 + RANDOM % 20000))
  rssp_pg_start "$WORK/pg" "$port"
  RSSP_TEST_DB_URL=$(rssp_pg_url "$WORK/pg" "$port")
fi
export RSSP_TEST_DB_URL RSSP_TEST_WORK="$WORK" RSSP_TEST_ROOT="$ROOT"
export RSSP_TEST_PKCS11_MODULE=${RSSP_TEST_PKCS11_MODULE:-$RSSP_PKCS11_MODULE}
/usr/bin/python3 "$ROOT/tests/bench/rest_bench.py" --build "$BUILD" "$@"
