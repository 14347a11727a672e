#!/usr/bin/env bash
# fresh.sh - deploy/local on a fresh Debian 12 machine, as a newcomer does it: a minimal
# debootstrap container (the base image of tests/deploy/containers.sh), the committed tree
# copied in (git archive HEAD: what a clone gives, nothing uncommitted), then
#  1. as a non-root user with sudo, the clone in a 0700 home: deploy/local/up (first run:
#     time and disk use measured), tests/e2e/demo.sh, the README's by-hand block (taken
#     from README.md itself, pasted twice), the gateway's user denied the PIN and the token,
#     down, up again (data kept), down --purge (no rssp process, no state, nothing in /tmp);
#  2. the same as root with the clone in /root (0700), in another fresh container.
# The host's apt cache is bind-mounted, so packages are downloaded once per machine.
# Needs root (rootful podman; podman is installed when missing). Prints PASS/FAIL lines
# and "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"
# shellcheck source=../../deploy/containers/podman.sh
. "$ROOT/deploy/containers/podman.sh"

[ "$(id -u)" -eq 0 ] || { echo "fresh.sh: run as root (rootful podman)" >&2; exit 1; }
T0=$(date +%s)
C=
WORK=$(mktemp -d /var/tmp/rssp-fresh.XXXXXX)
pass=0 fail=0
check() { # check "sentence" COMMAND...
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; pass=$((pass + 1))
  else echo "FAIL: $name"; fail=$((fail + 1)); return 1; fi
}
step() { echo "== $* ($(( $(date +%s) - T0 )) s)"; }
cleanup() { podman rm -f -i -t 0 "rssp-fresh-$$-user" "rssp-fresh-$$-root" >/dev/null 2>&1; rm -rf "$WORK"; }
trap cleanup EXIT
trap "exit 1" INT TERM

# in_c USER DIR CMD...: CMD in the container as USER in DIR, bounded in time, with the PATH
# a login shell of that user has (no /usr/sbin for a user), output into $WORK/last.
in_c() {
  local u=$1 d=$2 path=/usr/local/bin:/usr/bin:/bin; shift 2
  [ "$u" = root ] && path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  timeout 900 podman exec -i -u "$u" -w "$d" -e PATH="$path" -e HOME="$(home_of "$u")" "$C" "$@" \
    > "$WORK/last" 2>&1
}
home_of() { [ "$1" = root ] && echo /root || echo "/home/$1"; }
export C WORK; export -f in_c home_of
show_tail() { echo "---- last output:"; tail -n "${1:-30}" "$WORK/last"; echo "----"; }

step "podman, base image"
rssp_podman_setup >/dev/null
rssp_base_image || { echo "FAIL: the base image"; echo "0 passed, 1 failed"; exit 1; }

# new_container NAME: a fresh Debian 12 container with sudo and a user alice (sudo, 0700
# home), the committed tree in /home/alice/rssp and /root/rssp; $C names it.
new_container() {
  C=$1; export C
  step "a fresh Debian 12 container ($C)"
  podman rm -f -t 0 "$C" >/dev/null 2>&1
  mkdir -p /var/cache/apt/archives/partial
  podman run -d --init --name "$C" -v /var/cache/apt/archives:/var/cache/apt/archives \
    "$RSSP_BASE_IMAGE" sleep infinity >/dev/null || { echo "FAIL: the container starts"; exit 1; }
  # The base image empties apt's cache after each installation (small image layers); here
  # that cache is the host's: keep it.
  in_c root / sh -c 'rm -f /etc/apt/apt.conf.d/99rssp-slim; apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sudo ca-certificates' ||
    { show_tail; echo "FAIL: sudo installs"; exit 1; }
  in_c root / sh -c 'useradd -m -s /bin/bash alice && chmod 0700 /home/alice &&
    echo "alice ALL=(ALL) NOPASSWD: ALL" > /etc/sudoers.d/alice && chmod 0440 /etc/sudoers.d/alice'
  # The committed tree, as a clone gives it, in the user's 0700 home and in /root.
  git -C "$ROOT" archive --prefix=rssp/ HEAD | podman exec -i -u alice "$C" tar -x -C /home/alice
  git -C "$ROOT" archive --prefix=rssp/ HEAD | podman exec -i "$C" tar -x -C /root
  if [ "${2:-}" = services ]; then
    # A machine whose init starts services when a package is installed (as systemd does):
    # invoke-rc.d asks /sbin/runlevel, which a container without init cannot answer, and
    # blocks every start without a policy-rc.d that allows it.
    in_c root / sh -c 'rm -f /sbin/runlevel; printf "#!/bin/sh\necho N 2\n" > /sbin/runlevel; chmod 0755 /sbin/runlevel
      printf "#!/bin/sh\nexit 0\n" > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d'
  fi
  check "the clones are in a 0700 home and in /root" \
    in_c root / sh -c '[ "$(stat -c %a /home/alice)" = 700 ] && [ "$(stat -c %a /root)" = 700 ] &&
      [ -x /home/alice/rssp/deploy/local/up ] && [ -x /root/rssp/deploy/local/up ]'
}

# The by-hand block of the README, as a reader copies it.
awk '/^The same steps by hand/ { f = 1 } f && /^```bash$/ { g = 1; next } g && /^```$/ { exit } g' \
  "$ROOT/README.md" > "$WORK/by-hand.sh"
check "the README's by-hand block is fenced as bash" [ -s "$WORK/by-hand.sh" ]

run_as() { # run_as USER: the whole newcomer's sequence
  local u=$1 home r t1
  home=$(home_of "$u"); r=$home/rssp
  step "$u: deploy/local/up (first run)"
  if [ "$u" = alice ]; then in_c root / du -sxm /; DISK0=$(awk '{print $1}' "$WORK/last"); fi
  t1=$(date +%s)
  in_c "$u" "$r" deploy/local/up; rc=$?
  FIRST_RUN=$(( $(date +%s) - t1 ))
  cp "$WORK/last" "$WORK/up-$u.out"
  check "$u: the first up succeeds ($FIRST_RUN s)" [ "$rc" -eq 0 ] || show_tail 40
  check "$u: up prints one line per phase (under 40 lines)" [ "$(wc -l < "$WORK/up-$u.out")" -lt 40 ] ||
    show_tail 60
  check "$u: up prints no dpkg output" bash -c '! grep -qE "^(Unpacking|Setting up|Selecting previously)" "$1"' _ "$WORK/up-$u.out"
  check "$u: up prints no error or warning" bash -c '! grep -qiE "denied|warning|error|fatal" "$1"' _ "$WORK/up-$u.out" ||
    grep -iE "denied|warning|error|fatal" "$WORK/up-$u.out"
  if [ "$u" = alice ]; then
    in_c root / du -sxm /; DISK1=$(awk '{print $1}' "$WORK/last")
    in_c root / du -sm "$r/build"; BUILDMB=$(awk '{print $1}' "$WORK/last")
    echo "   first run: $FIRST_RUN s; disk: $((DISK1 - DISK0)) MB more (of which build/ $BUILDMB MB)"
    in_c "$u" "$r" grep -hE "^(Need to get|After this operation)" .local/up.log
    APT_LINES=$(tr '\n' ' ' < "$WORK/last"); echo "   apt: $APT_LINES"
    check "$u: up installs none of the test tools (valgrind, clang, wrk)" \
      in_c root / sh -c '! dpkg-query -W -f="\${Status}\n" valgrind clang wrk 2>/dev/null | grep -q "install ok installed"'
    grep "cluster 15/main" "$WORK/up-$u.out"
    check "$u: Debian's system PostgreSQL cluster is not left running by up's installation" \
      in_c root / sh -c '! pg_lsclusters -h | grep -q online' 
  fi
  if [ "$u" = root ]; then
    check "$u: Debian's cluster 15/main, started by up's installation of postgresql-15, is stopped and up says so" \
      bash -c 'grep -q "started Debian.s cluster 15/main on port 5432; rssp does not use it: stopped" "$1" &&
               in_c root / sh -c "pg_lsclusters -h | grep -q \"^15 *main\" && ! pg_lsclusters -h | grep -q online"' _ "$WORK/up-$u.out" ||
      { grep -n "15/main" "$WORK/up-$u.out"; in_c root / pg_lsclusters; show_tail 5; }
  fi
  local srv
  in_c "$u" "$r" bash -c '. .local/env && echo "$RSSP_SRV_DIR"'; srv=$(cat "$WORK/last")
  check "$u: the service's state is outside the clone ($srv)" bash -c '[[ "$1" == /var/lib/rssp-local/* ]]' _ "$srv"
  in_c root / ps -o user:20=,comm= -C rssp-engine,rssp-gateway
  check "$u: the engine runs as rssp-engine and the gateway as rssp-gateway (one of each)" \
    bash -c 'grep -qx "rssp-engine *rssp-engine" "$1" && grep -qx "rssp-gateway *rssp-gateway" "$1" && [ "$(wc -l < "$1")" = 2 ]' _ "$WORK/last" ||
    show_tail
  check "$u: the gateway's user cannot read the PIN file" \
    bash -c '! in_c root / runuser -u rssp-gateway -- cat "$1/engine/hsm-pin"' _ "$srv"
  check "$u: the gateway's user cannot read the token" \
    bash -c 'in_c root / find "$1/engine/tokens" -type f -name "*.object"; f=$(head -n 1 "$WORK/last")
             [ -n "$f" ] && ! in_c root / runuser -u rssp-gateway -- cat "$f" &&
             ! in_c root / runuser -u rssp-gateway -- ls "$1/engine/tokens"' _ "$srv"
  check "$u: the invoking user cannot read the PIN file either" \
    bash -c '[ "$2" = root ] || ! in_c "$2" / cat "$1/engine/hsm-pin"' _ "$srv" "$u"

  step "$u: tests/e2e/demo.sh"
  in_c "$u" "$r" tests/e2e/demo.sh; rc=$?
  check "$u: the demo succeeds and its last line is Verified OK" \
    bash -c '[ "$1" -eq 0 ] && [ "$(tail -n 1 "$2")" = "Verified OK" ]' _ "$rc" "$WORK/last" || show_tail
  step "$u: the README's by-hand block, pasted twice"
  local i
  for i in 1 2; do
    in_c "$u" "$r" bash < "$WORK/by-hand.sh"
    check "$u: the by-hand block verifies (paste $i)" [ "$(tail -n 1 "$WORK/last")" = "Verified OK" ] || show_tail
  done
  admin_users() { # the number of accounts the admin sees
    in_c "$u" "$r" bash -c '. .local/env
      T=$(printf "user = \"%s:%s\"\n" "$RSSP_ADMIN_USER" "$(cat "$RSSP_ADMIN_PASSWORD_FILE")" |
          curl -s -K - -X POST -H "Content-Type: application/json" -d "{}" "$RSSP_URL/rssp/auth/login" | jq -r .access_token)
      curl -s -X POST -H "Authorization: Bearer $T" -H "Content-Type: application/json" -d "{\"maxResults\":100}" \
        "$RSSP_URL/rssp/admin/users/list" | jq ".users | length"'
    cat "$WORK/last"
  }
  local n1 n2
  n1=$(admin_users)

  step "$u: down, up"
  in_c "$u" "$r" deploy/local/down; rc=$?
  check "$u: down stops engine and gateway" \
    bash -c '[ "$1" -eq 0 ] && ! in_c root / ps -C rssp-engine,rssp-gateway' _ "$rc" || show_tail
  in_c "$u" "$r" deploy/local/up
  check "$u: up after down succeeds" [ $? -eq 0 ] || show_tail
  n2=$(admin_users)
  check "$u: the accounts are kept across down and up ($n1 = $n2, 4 or more)" \
    bash -c '[ "$1" = "$2" ] && [ "$1" -ge 4 ]' _ "$n1" "$n2"
  in_c root / runuser -u rssp-engine -- "$srv/bin/rssp-engine" audit-verify "$srv/engine/audit.jsonl"
  check "$u: the audit log verifies" grep -q "^ok " "$WORK/last" || show_tail

  step "$u: down --purge"
  in_c "$u" "$r" deploy/local/down --purge
  check "$u: down --purge succeeds" [ $? -eq 0 ] || show_tail
  check "$u: no rssp process is left (engine, gateway, its PostgreSQL)" \
    bash -c '! in_c root / ps -C rssp-engine,rssp-gateway && ! in_c root / sh -c "ps -eo args | grep -q ^/usr/lib/postgresql/15/bin/postgres.*rssp-local"'
  check "$u: nothing of the demo is left (.local, /var/lib/rssp-local, /tmp)" \
    in_c root / sh -c "[ ! -e '$r/.local' ] && [ ! -e /var/lib/rssp-local ] && [ -z \"\$(ls -A /tmp)\" ]" ||
    { in_c root / ls -la /tmp "$r"; show_tail; }
  check "$u: down --purge removed the service users" \
    bash -c '! in_c root / getent passwd rssp-engine && ! in_c root / getent passwd rssp-gateway'
}

new_container "rssp-fresh-$$-user"
run_as alice
ALICE_FIRST=$FIRST_RUN
podman rm -f -t 0 "$C" >/dev/null 2>&1
new_container "rssp-fresh-$$-root" services
run_as root

step "done"
echo "first run as a non-root user on a fresh machine: ${ALICE_FIRST} s, $((DISK1 - DISK0)) MB of disk (build/ ${BUILDMB} MB); apt: $APT_LINES"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
