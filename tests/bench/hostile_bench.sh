#!/usr/bin/env bash
# The hostile-load benchmark (issue 10; not a ctest timed test): signatures/signHash p50/p99
# idle and under a login flood, a long-poll flood, a key-generation flood and a connection
# flood, and another tenant's login latency idle and under the long-poll flood. About
# 1-2 minutes. See hostile_bench.py.
#
#   tests/bench/hostile_bench.sh [--seconds 6] [--keygen 6]
#
# Builds into $RSSP_BENCH_BUILD (default build/), uses $RSSP_TEST_DB_URL when set, else
# starts a private PostgreSQL cluster in a temp dir for the run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"
rssp_install_packages
BUILD=${RSSP_BENCH_BUILD:-$ROOT/build}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target rssp-engine rssp-gateway >/dev/null

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
/usr/bin/python3 "$ROOT/tests/bench/hostile_bench.py" --build "$BUILD" "$@"
