#!/usr/bin/env bash
# The gateway benchmark (not a ctest timed test): an authenticated read at 16 keep-alive
# connections with wrk (POST /rssp/users/status with a bearer token, and POST /rssp/info
# with a bearer token), and the cost of one login (argon2id at the default parameters).
#
#   tests/bench/gateway_bench.sh [--seconds N] [--connections N] [--threads N]
#
# The gateway runs with its defaults (RSSP_HTTP_THREADS=4) and, for the DB-bound
# users/status, also with RSSP_HTTP_THREADS=16: handlers block on PostgreSQL, so more
# HTTP threads than cores keep both cores busy.
#
# Builds (release) into $RSSP_BENCH_BUILD (default build/), uses $RSSP_TEST_DB_URL when
# set, else starts a private PostgreSQL cluster in a temp dir. Prints only what it measured.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=stack.sh
. "$ROOT/tests/bench/stack.sh"
SECONDS_RUN=10 CONNS=16 WRK_THREADS=2
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --threads) WRK_THREADS=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--connections N] [--threads N]" >&2; exit 2 ;;
  esac
done
GW_PID=
bench_cleanup_hook() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
}
bench_stack rssp-gwbench rssp-gateway
DB="gwbench_$$_$RANDOM"
psql -q "$RSSP_TEST_DB_URL" -c "CREATE DATABASE $DB"
export RSSP_DB_URL=${RSSP_TEST_DB_URL/\/postgres\?//$DB?}
GWPORT=$((20000 + RANDOM % 20000))
export RSSP_LISTEN=127.0.0.1:$GWPORT RSSP_LOG_LEVEL=warn RSSP_LOGIN_BURST=100000 RSSP_LOGIN_RATE=1000000
URL=http://127.0.0.1:$GWPORT
PASS="bench passphrase $RANDOM"
echo "$PASS" > "$WORK/pw"
GW=$BUILD/gateway/rssp-gateway
ADMIN_ID=$("$GW" bootstrap-admin --email bench@rssp.test --password-file "$WORK/pw" 2>/dev/null)
HTTP_THREADS=4
start_gw() { # extra NAME=value settings
  [ -n "$GW_PID" ] && { kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true; }
  env "$@" "$GW" serve > /dev/null 2>> "$WORK/gw.err" &
  GW_PID=$!
  for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
}
start_gw

login() {
  curl -sf "$URL/rssp/auth/login" -H 'Content-Type: application/json' \
    -d "{\"grant_type\":\"password\",\"username\":\"bench@rssp.test\",\"password\":\"$PASS\"}"
}
TOKEN=$(login | jq -r .access_token)

# the cost of one login: N sequential logins, wall time each
N=20
t0=$(date +%s%N)
for _ in $(seq $N); do login >/dev/null; done
t1=$(date +%s%N)
echo "login (argon2id m=19456 KiB t=2 p=1, sequential, $N logins): $(( (t1 - t0) / N / 1000 )) us per login"

cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = os.getenv("BENCH_BODY")
LUA

bench() { # name path body
  local out
  out=$(BENCH_BODY=$3 wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$WORK/post.lua" "$URL$2")
  local rps p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "$1: ${rps} requests/s, p99 ${p99}, non-2xx ${non2xx:-0} ($CONNS keep-alive connections, ${SECONDS_RUN}s, $HTTP_THREADS HTTP threads)"
}
bench "POST /rssp/info (bearer, token cache)" /rssp/info "{}"
bench "POST /rssp/users/status (bearer, own status)" /rssp/users/status "{\"userID\":\"$ADMIN_ID\"}"
start_gw RSSP_TOKEN_CACHE_TTL=0
bench "POST /rssp/info (bearer, no token cache: SHA-256 + indexed lookup each time)" /rssp/info "{}"
HTTP_THREADS=16
start_gw RSSP_HTTP_THREADS=16
bench "POST /rssp/users/status (bearer, own status)" /rssp/users/status "{\"userID\":\"$ADMIN_ID\"}"
bench "POST /rssp/info (bearer, token cache)" /rssp/info "{}"
