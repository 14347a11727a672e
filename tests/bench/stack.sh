# stack.sh - sourced by the REST benchmarks (rest_bench.sh, hostile_bench.sh,
# gateway_bench.sh): what they run on before their own work starts.
#
#   bench_stack NAME TARGET...
#
# Installs the test packages, builds TARGET... (release) into $BUILD ($RSSP_BENCH_BUILD,
# default build/), makes $WORK (/tmp/NAME.XXXXXX, mode 0755), and exports
# RSSP_TEST_DB_URL (the caller's when set, else a private PostgreSQL cluster started in
# $WORK/pg), RSSP_TEST_WORK=$WORK, RSSP_TEST_ROOT and RSSP_TEST_PKCS11_MODULE. On exit
# it runs bench_cleanup_hook (when the caller defines one: its own processes), stops the
# private cluster and removes $WORK. Needs $ROOT (the repository) set by the caller.
# shellcheck shell=bash
# shellcheck source=../../deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"

bench_cleanup() {
  if declare -F bench_cleanup_hook >/dev/null; then bench_cleanup_hook || true; fi
  [ -d "$WORK/pg/data" ] && rssp_pg_stop "$WORK/pg"
  rm -rf "$WORK"
}

bench_stack() {
  local name=$1 port
  shift
  rssp_install_packages "${RSSP_TEST_PACKAGES[@]}"
  BUILD=${RSSP_BENCH_BUILD:-$ROOT/build}
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target "$@" >/dev/null
  WORK=$(mktemp -d "/tmp/$name.XXXXXX")
  chmod 0755 "$WORK"
  trap bench_cleanup EXIT
  if [ -z "${RSSP_TEST_DB_URL:-}" ]; then
    rssp_pg_init "$WORK/pg"
    port=$((20000 + RANDOM % 20000))
    rssp_pg_start "$WORK/pg" "$port"
    RSSP_TEST_DB_URL=$(rssp_pg_url "$WORK/pg" "$port")
  fi
  export RSSP_TEST_DB_URL RSSP_TEST_WORK="$WORK" RSSP_TEST_ROOT="$ROOT"
  export RSSP_TEST_PKCS11_MODULE=${RSSP_TEST_PKCS11_MODULE:-$RSSP_PKCS11_MODULE}
}
