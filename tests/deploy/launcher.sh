#!/usr/bin/env bash
# launcher.sh BUILD_DIR - deploy/local/up and down, run for real in a temporary
# RSSP_LOCAL_DIR on a free port: an interrupted first run (initdb killed, token init
# interrupted) is repaired, the service comes up, the admin logs in, the README demo
# signs and verifies, a second `up` changes nothing, a busy port is reported, `down` then
# `up` keeps users and credentials, `down --purge` removes everything.
set -uo pipefail
ROOT=${RSSP_TEST_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${1:-${RSSP_TEST_BUILD:?build directory}}
# shellcheck source=../../deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"

BASE=$(mktemp -d "${RSSP_TEST_WORK:-/tmp}/launcher.XXXXXX")
chmod 0755 "$BASE"                 # PostgreSQL runs as the postgres user when we are root
export RSSP_LOCAL_DIR=$BASE/local
# shellcheck source=../../deploy/local/launch.sh
. "$ROOT/deploy/local/launch.sh"       # $SRV, $SOCKET, as_root, as_user, rssp_pid_running
export SUDO; export -f as_root as_user
export RSSP_BUILD_DIR=$BUILD RSSP_SKIP_INSTALL=1 RSSP_SKIP_BUILD=1
# A free port on 127.0.0.1, and the up/down commands.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    [ -z "$(ss -ltnH "( sport = :$p )")" ] && { echo "$p"; return; }
  done
}
export RSSP_PORT
RSSP_PORT=$(free_port)
UP=$ROOT/deploy/local/up
DOWN=$ROOT/deploy/local/down
L=$RSSP_LOCAL_DIR
LISTENER=

cleanup() {
  [ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null
  "$DOWN" --purge >/dev/null 2>&1
  rm -rf "$BASE"
}
trap cleanup EXIT

pass=0 fail=0
check() { # check "sentence" COMMAND...
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; pass=$((pass + 1))
  else echo "FAIL: $name"; fail=$((fail + 1)); return 1; fi
}
ready() { [ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$RSSP_PORT/readyz")" = 200 ]; }
admin_token() {
  printf 'user = "%s:%s"\n' admin@rssp.local "$(cat "$L/secrets/admin-password")" |
    curl -s -K - -m 20 -X POST -H 'Content-Type: application/json' -d '{}' \
      "http://127.0.0.1:$RSSP_PORT/rssp/auth/login" | jq -r '.access_token // empty'
}
api() { # api PATH JSON
  curl -s -m 20 -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "$2" "http://127.0.0.1:$RSSP_PORT/rssp/$1"
}
pid_of() { cut -d' ' -f1 "$SRV/run/$1.pid" 2>/dev/null; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# -- an interrupted first run -------------------------------------------------------
# initdb killed half-way: a data directory without PG_VERSION or without the marker.
as_root install -d -m 0755 "$SRV_BASE" "$SRV"
as_root install -d -m 0755 -o postgres -g postgres "$SRV/pg"
as_user postgres timeout -s KILL 0.3 "$PG_BIN/initdb" -D "$SRV/pg/data" -U postgres >/dev/null 2>&1
# then a run that dies right after the token was created, before `rssp-engine init`.
out=$(RSSP_UP_TEST_INTERRUPT=token "$UP" 2>&1); rc=$?
check "an up interrupted after token init exits with an error" [ "$rc" -ne 0 ]
check "the half-initialised cluster is detected and made again" grep -q "removing half-initialised cluster" <<<"$out"
check "the token of the interrupted run has no completion marker" as_root test ! -f "$SRV/engine/.token-complete"

out=$("$UP" 2>&1); rc=$?
echo "$out" | tail -n 12
check "up repairs the interrupted first run and comes up" [ "$rc" -eq 0 ]
check "the half-made token is removed and made again" grep -q "removing the token of an interrupted first run" <<<"$out"
check "readyz answers 200 on the chosen port" ready
check "up prints the URL, the admin user and where the passphrase is" \
  grep -q "http://127.0.0.1:$RSSP_PORT" <<<"$out"
check "up says that it serves plain HTTP on 127.0.0.1" grep -q "plain HTTP on 127.0.0.1" <<<"$out"
env_has_all() {
  local v
  for v in RSSP_URL RSSP_ENGINE_SOCKET RSSP_ADMIN_USER RSSP_ADMIN_PASSWORD_FILE RSSP_DB_URL SOFTHSM2_CONF; do
    grep -q "^export $v=" "$L/env" || return 1
  done
  ( . "$L/env" && [ "$RSSP_URL" = "http://127.0.0.1:$RSSP_PORT" ] && as_root test -S "$RSSP_ENGINE_SOCKET" )
}
check "the env file names the URL, socket, admin, passphrase file, database and SoftHSM configuration" env_has_all
mode_is() { [ "$(as_root stat -c '%a %U' "$1")" = "$2" ]; }
check "the PIN file is rssp-engine's, readable by it only" mode_is "$SRV/engine/hsm-pin" "600 rssp-engine"
check "the token directory is rssp-engine's only" mode_is "$SRV/engine/tokens" "700 rssp-engine"
check "the engine's directory (PIN, configuration, audit log) is rssp-engine's only" mode_is "$SRV/engine" "700 rssp-engine"
check "the admin passphrase file is readable by its owner only" mode_is "$L/secrets/admin-password" "600 $(id -un)"
check "the local RA private key is readable by its owner only" mode_is "$L/secrets/ra.key" "600 $(id -un)"
check "the env file names the local RA private key as RSSP_RA_KEY_FILE" \
  bash -c '. "$1/env" && [ "$(realpath "$RSSP_RA_KEY_FILE")" = "$(realpath "$1/secrets/ra.key")" ]' _ "$L"
check "the engine writes its audit log" as_root test -s "$SRV/engine/audit.jsonl"
user_of() { ps -o user:20= -p "$(pid_of "$1")" | tr -d ' '; }
check "the engine runs as rssp-engine" [ "$(user_of engine)" = rssp-engine ]
check "the gateway runs as rssp-gateway" [ "$(user_of gateway)" = rssp-gateway ]
check "the gateway's user cannot read the PIN file" bash -c '! as_user rssp-gateway cat "$1" >/dev/null 2>&1' _ "$SRV/engine/hsm-pin"
check "the gateway's user cannot list the token directory" bash -c '! as_user rssp-gateway ls "$1" >/dev/null 2>&1' _ "$SRV/engine/tokens"
check "the gateway's user cannot read the audit log" bash -c '! as_user rssp-gateway cat "$1" >/dev/null 2>&1' _ "$SRV/engine/audit.jsonl"
check "the engine allows exactly the gateway's uid on its socket" \
  as_root grep -qx "RSSP_ENGINE_ALLOWED_UIDS=$(id -u rssp-gateway)" "$SRV/engine/engine.conf"
check "the socket is the engine's, mode 0660 (read-write for its group)" mode_is "$SOCKET" "660 rssp-engine"
check "the socket's group is rssp-gateway" [ "$(as_root stat -c %G "$SOCKET")" = rssp-gateway ]
psql_pg() { as_user postgres psql -X -qtA -h "$SRV/pg/run" -p "$PG_SOCKET_PORT" -d postgres -c "$1"; }
check "the gateway's database role is not a superuser" [ "$(psql_pg "select rolsuper from pg_roles where rolname = 'rssp-gateway'")" = f ]
check "the gateway's role owns the rssp database" \
  [ "$(psql_pg "select pg_get_userbyid(datdba) from pg_database where datname = 'rssp'")" = rssp-gateway ]
check "the gateway's user cannot log in to PostgreSQL as postgres" \
  bash -c '! as_user rssp-gateway psql -X -h "$1" -p "$2" -U postgres -d rssp -c "select 1" >/dev/null 2>&1' _ "$SRV/pg/run" "$PG_SOCKET_PORT"

TOKEN=$(admin_token)
check "the bootstrap admin logs in with the generated passphrase" [ -n "$TOKEN" ]

# -- the README demo: register ... signHash, verified with openssl ----------------------
demo=$("$ROOT/tests/e2e/demo.sh" 2>&1); rc=$?
check "the README demo signs and the signature verifies" \
  bash -c '[ "$1" -eq 0 ] && grep -q "Verified OK" <<<"$2"' _ "$rc" "$demo"
[ "$rc" -eq 0 ] || echo "$demo" | tail -n 30

# -- a second up while everything runs ------------------------------------------------
epid=$(pid_of engine) gpid=$(pid_of gateway)
sums() { (cd "$L" && find . -path ./pg -prune -o -path ./log -prune -o -type f -print0 | sort -z | xargs -0 sha256sum); }
before=$(sums)
out=$("$UP" 2>&1); rc=$?
check "a second up while running exits 0" [ "$rc" -eq 0 ]
check "a second up while running says nothing changed" grep -q "nothing changed" <<<"$out"
check "a second up keeps the same engine and gateway processes" \
  [ "$(pid_of engine)" = "$epid" -a "$(pid_of gateway)" = "$gpid" ]
check "a second up rewrites no file of the state" [ "$before" = "$(sums)" ]

# What must survive a restart: the accounts, and the signer's credential with its certificate.
snapshot() {
  local users signer
  users=$(api admin/users/list '{"maxResults":100}' | jq -c '[.users[] | {userID, email, status}] | sort_by(.userID)')
  signer=$(jq -r '[.[] | select((.email // "") | startswith("alice."))][0].userID // empty' <<<"$users")
  [ -n "$signer" ] || return 1
  printf '%s\n' "$users"
  api credentials/list "$(jq -nc --arg u "$signer" '{userID:$u}')" |
    jq -ce '[.credentials[] | {credentialID, status, subjectDN, validTo}] | select(length > 0)'
}
snap1=$(snapshot)
token_made=$(as_root cat "$SRV/engine/.token-complete")
pin_sum=$(as_root sha256sum < "$SRV/engine/hsm-pin")

# -- down, a busy port, up again -------------------------------------------------------
out=$("$DOWN" 2>&1); rc=$?
check "down exits 0" [ "$rc" -eq 0 ]
gone() { local p; for p in "$@"; do ! rssp_alive "$p" || return 1; done; }   # a zombie is gone
check "down stops the engine and the gateway" gone "$epid" "$gpid"
check "down keeps the data" bash -c 'as_root test -f "$1/engine/.token-complete" -a -f "$1/pg/data/PG_VERSION" -a -f "$2/secrets/admin-password"' _ "$SRV" "$L"

python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(120)' "$RSSP_PORT" &
LISTENER=$!
for _ in $(seq 1 50); do [ -n "$(ss -ltnH "( sport = :$RSSP_PORT )")" ] && break; sleep 0.1; done
out=$("$UP" 2>&1); rc=$?
check "up refuses a port that another program holds" [ "$rc" -eq 2 ]
check "up names the busy port and how to choose another" \
  bash -c 'grep -q "port $1 is already in use" <<<"$2" && grep -q "RSSP_PORT=" <<<"$2"' _ "$RSSP_PORT" "$out"
check "up with a busy port starts nothing" [ ! -f "$SRV/run/engine.pid" -a ! -f "$SRV/run/gateway.pid" ]
kill "$LISTENER" 2>/dev/null; wait "$LISTENER" 2>/dev/null; LISTENER=

out=$("$UP" 2>&1); rc=$?
check "up after down starts the existing state again" [ "$rc" -eq 0 ]
check "up after down keeps the token and its PIN" \
  [ "$(as_root cat "$SRV/engine/.token-complete")" = "$token_made" -a "$(as_root sha256sum < "$SRV/engine/hsm-pin")" = "$pin_sum" ]
TOKEN=$(admin_token)
check "the admin still logs in after down and up" [ -n "$TOKEN" ]
snap2=$(snapshot)
echo "state before down: $snap1"
check "the users and the signer's credentials are the same after down and up" \
  bash -c '[ -n "$1" ] && [ "$1" = "$2" ] && grep -q "\"status\":\"ACTIVE\",\"subjectDN\"" <<<"$1"' _ "$snap1" "$snap2"
verify=$(as_user rssp-engine "$SRV/bin/rssp-engine" audit-verify "$SRV/engine/audit.jsonl" 2>&1)
check "the audit log kept across restarts verifies" grep -q "^ok " <<<"$verify"

# -- a crash or power loss: every process killed, stale pid files and sockets left ------
as_root kill -KILL "$(pid_of gateway)" "$(pid_of engine)" "$(as_root head -n 1 "$SRV/pg/data/postmaster.pid")" 2>/dev/null
sleep 0.5
out=$("$UP" 2>&1); rc=$?
check "up after every process was killed starts the existing state again" bash -c '[ "$1" -eq 0 ]' _ "$rc" ||
  echo "$out" | tail -n 20
TOKEN=$(admin_token)
check "the admin logs in after the crash" [ -n "$TOKEN" ]
check "the users and the signer's credentials survive the crash" [ "$(snapshot)" = "$snap1" ]

# -- a lost pid file: up adopts the running engine, never starts a second one ---------------
epid=$(pid_of engine)
as_root rm -f "$SRV/run/engine.pid"
out=$("$UP" 2>&1); rc=$?
engines() { rssp_strays rssp-engine | wc -l; }
check "up with the engine's pid file lost keeps the running engine" \
  bash -c '[ "$1" -eq 0 ] && grep -q "running without its pid file" <<<"$2" && [ "$3" = "$4" ]' _ "$rc" "$out" "$(pid_of engine)" "$epid"
check "up never starts a second engine" [ "$(engines)" -eq 1 ]
verify=$(as_user rssp-engine "$SRV/bin/rssp-engine" audit-verify "$SRV/engine/audit.jsonl" 2>&1)
check "the audit log still verifies (one engine wrote it)" grep -q "^ok " <<<"$verify"
# down finds an engine by its command line when its pid file is lost
as_root rm -f "$SRV/run/engine.pid"
out=$("$DOWN" 2>&1)
check "down stops an engine whose pid file is lost" gone "$epid" || echo "$out"

# -- purge --------------------------------------------------------------------------------
"$UP" >/dev/null 2>&1
demo=$("$ROOT/tests/e2e/demo.sh" 2>&1)
check "the demo's last line is Verified OK" [ "$(tail -n 1 <<<"$demo")" = "Verified OK" ]
check "the demo keeps its files in the local state directory" [ -n "$(ls "$L/demo")" ]
"$DOWN" --purge >/dev/null 2>&1
check "down --purge deletes the state directory" [ ! -e "$L" ]
check "down --purge deletes the service's state" [ ! -e "$SRV" ]
check "no rssp process of this state is left after down --purge" [ -z "$(rssp_strays rssp-engine; rssp_strays rssp-gateway)" ]
check "nothing listens on the port after down --purge" [ -z "$(ss -ltnH "( sport = :$RSSP_PORT )")" ]

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
