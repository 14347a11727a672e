# shellcheck shell=bash
# Shared by deploy/local/up and deploy/local/down: where the local state lives, and
# how to tell whether a daemon started by `up` still runs. Source it after lib.sh.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LOCAL=${RSSP_LOCAL_DIR:-$ROOT/.local}
case $LOCAL in /*) ;; *) LOCAL=$(pwd)/$LOCAL ;; esac
LOCAL=${LOCAL%/}
PG_SOCKET_PORT=5432          # only names the unix socket inside $LOCAL/pg/run; no TCP
ADMIN_EMAIL=${RSSP_ADMIN_EMAIL:-admin@rssp.local}

# The engine socket: inside $LOCAL/run unless that path is too long for a unix socket
# (108 bytes with the terminating NUL), then in a per-state directory under /tmp.
rssp_local_socket() {
  local s="$LOCAL/run/engine.sock"
  if [ ${#s} -gt 100 ]; then
    s="/tmp/rssp-$(id -u)-$(printf '%s' "$LOCAL" | cksum | cut -d' ' -f1)/engine.sock"
  fi
  echo "$s"
}

# rssp_pid_running FILE NAME: true when FILE names a live process whose executable is NAME
# (a stale pid file after a reboot may name an unrelated process).
rssp_pid_running() {
  local f=$1 name=$2 pid exe
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [ "$(basename "$exe")" = "$name" ]
}

# rssp_stop_pid FILE NAME: SIGTERM, wait up to 20 s for a graceful drain, then SIGKILL.
rssp_stop_pid() {
  local f=$1 name=$2 pid i
  if rssp_pid_running "$f" "$name"; then
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name (pid $pid) did not stop within 20 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}
