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
# shellcheck source=stack.sh
. "$ROOT/tests/bench/stack.sh"
bench_stack rssp-bench rssp-engine rssp-gateway rest_raw rest_engine
/usr/bin/python3 "$ROOT/tests/bench/rest_bench.py" --build "$BUILD" "$@"
