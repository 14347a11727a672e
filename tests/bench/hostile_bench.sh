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
# shellcheck source=stack.sh
. "$ROOT/tests/bench/stack.sh"
bench_stack rssp-bench rssp-engine rssp-gateway
/usr/bin/python3 "$ROOT/tests/bench/hostile_bench.py" --build "$BUILD" "$@"
