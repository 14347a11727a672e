# shellcheck shell=bash
# Shared by deploy/local/up and deploy/local/down: where the local state lives, who runs
# what, and how to tell whether a daemon started by `up` still runs. Source it after lib.sh.
#
# Two places:
#   $LOCAL  (RSSP_LOCAL_DIR, default <repo>/.local), the invoking user's: env, port, the
#           admin's passphrase (secrets/), the demo's files (demo/), links to the logs.
#   $SRV    (/var/lib/rssp-local/<id of $LOCAL>), root's, reachable by the service users
#           wherever the clone is (/root, a 0700 home): the binaries and schema up copied,
#           PostgreSQL's cluster (user postgres), the engine's PIN, token, configuration
#           and audit log (user rssp-engine, 0700), the socket directory (group
#           rssp-gateway), pid files, logs.
# The engine runs as rssp-engine, the gateway as rssp-gateway (system users made by up);
# the gateway reaches the engine only through the socket and PostgreSQL as its own role.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LOCAL=${RSSP_LOCAL_DIR:-$ROOT/.local}
case $LOCAL in /*) ;; *) LOCAL=$(pwd)/$LOCAL ;; esac
LOCAL=${LOCAL%/}
PG_SOCKET_PORT=5432          # only names the unix socket inside $SRV/pg/run; no TCP
ADMIN_EMAIL=${RSSP_ADMIN_EMAIL:-admin@rssp.local}
ENGINE_USER=rssp-engine
GATEWAY_USER=rssp-gateway
SRV_BASE=${RSSP_SRV_BASE:-/var/lib/rssp-local}
SRV=$SRV_BASE/$(printf '%s' "$LOCAL" | cksum | cut -d' ' -f1)
SOCKET=$SRV/sock/engine.sock

# Root's commands: directly as root, through sudo otherwise.
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
as_root() { $SUDO "$@"; }
# as_user USER CMD...: runs CMD as USER (from root, or through sudo), in / (the service
# users may not enter the directory of the clone).
as_user() { local u=$1; shift; ( cd / && $SUDO runuser -u "$u" -- "$@" ); }

# The start time of a process (field 22 of /proc/PID/stat, in clock ticks since boot);
# readable for every process, also a non-dumpable one of another user.
rssp_proc_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }              # the command name may hold spaces and parentheses
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

# rssp_pid_running FILE NAME: true when FILE ("PID STARTTIME", written by up) names a live
# process called NAME that started at STARTTIME. Works for every user: /proc/PID/exe of
# the non-dumpable engine is unreadable, /proc/PID/comm and /proc/PID/stat are not; a
# stale pid file (reboot, crash) naming a reused pid fails on the start time.
rssp_pid_running() {
  local f=$1 name=$2 pid start comm
  [ -r "$f" ] || return 1
  read -r pid start < "$f" 2>/dev/null || return 1
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  rssp_alive "$pid" || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [ "$comm" = "$name" ] || return 1
  [ -z "$start" ] || [ "$(rssp_proc_start "$pid")" = "$start" ]
}

# rssp_alive PID: the process exists and is not a zombie waiting for its parent.
rssp_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# rssp_pid_of FILE: the pid a pid file names.
rssp_pid_of() { local pid _s; read -r pid _s < "$1"; echo "$pid"; }

# rssp_stop_pid FILE NAME: SIGTERM, wait up to 20 s for a graceful drain, then SIGKILL.
rssp_stop_pid() {
  local f=$1 name=$2 pid i
  if rssp_pid_running "$f" "$name"; then
    pid=$(rssp_pid_of "$f")
    as_root kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do
      rssp_alive "$pid" || break
      sleep 0.1
    done
    if rssp_alive "$pid"; then
      echo "$name (pid $pid) did not stop within 20 s; killing it" >&2
      as_root kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do rssp_alive "$pid" || break; sleep 0.1; done
    fi
    echo "stopped $name (pid $pid)"
  fi
  as_root rm -f "$f"
}

# rssp_strays NAME: pids of processes called NAME that run the binary of this state
# (their command line names $SRV/bin): a daemon whose pid file was lost. Never matches
# another state's daemons, nor other programs.
rssp_strays() {
  local name=$1 p cmd
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = "$name" ] && rssp_alive "${p#/proc/}" || continue
    cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
    case $cmd in "$SRV/bin/$name "*) echo "${p#/proc/}" ;; esac
  done
}
