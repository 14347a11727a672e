#!/usr/bin/env bash
# containers.sh - the container deployment, tested by running it (needs root, podman from
# Debian, Debian's mirror for the image builds and the npm registry for the validator):
#  1. installs podman & co., builds the rssp-engine, rssp-gateway and test PostgreSQL images
#     from this repository (base image by debootstrap when there is none),
#  2. renders every kustomize overlay with `kubectl kustomize` and validates the objects
#     offline against the Kubernetes schemas (unknown fields fail),
#  3. runs the podman overlay with `podman kube play` next to a PostgreSQL pod, bootstraps an
#     admin, drives the README demo (register ... signHash, verified with openssl) from the
#     host over 127.0.0.1, checks the pod's hardening, replays the pod on the same token
#     volume (idempotent init), stops it with SIGTERM and verifies the engine's audit log,
#  4. tears everything down, Secrets and volumes included.
# Prints PASS/FAIL lines and "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"
# shellcheck source=../../deploy/containers/podman.sh
. "$ROOT/deploy/containers/podman.sh"

[ "$(id -u)" -eq 0 ] || { echo "containers.sh: run as root (rootful podman)" >&2; exit 1; }
T0=$(date +%s)
WORK=$(mktemp -d /tmp/rssp-containers.XXXXXX)
NET=rssp-test-$$
POD=rssp-pod-0                 # podman names a Deployment's pod <name>-pod-0
PGPOD=rssp-postgres            # the host name the gateway uses for PostgreSQL
SECRETS=(rssp-hsm-pin rssp-postgres)
VOLUMES=(rssp-hsm-tokens rssp-ra-keys)   # rssp-ra-keys: podman makes a volume of a ConfigMap

pass=0 fail=0
check() { # check "sentence" COMMAND...
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; pass=$((pass + 1))
  else echo "FAIL: $name"; fail=$((fail + 1)); return 1; fi
}
step() { echo "== $* ($(( $(date +%s) - T0 )) s)"; }

teardown() {
  [ -f "$WORK/play.yaml" ] && podman kube play --down "$WORK/play.yaml" >/dev/null 2>&1
  [ -f "$WORK/postgres.yaml" ] && podman kube play --down "$WORK/postgres.yaml" >/dev/null 2>&1
  podman pod rm -f "$POD" "$PGPOD" >/dev/null 2>&1
  # kube play --down leaves Secrets and their volumes behind; the next play would fail.
  local s
  for s in "${SECRETS[@]}"; do podman secret rm "$s" >/dev/null 2>&1; podman volume rm -f "$s" >/dev/null 2>&1; done
  for s in "${VOLUMES[@]}"; do podman volume rm -f "$s" >/dev/null 2>&1; done
  podman network rm -f "$NET" >/dev/null 2>&1
}
# RSSP_CONTAINERS_KEEP=1 leaves everything running for a look (then run it again to clean).
cleanup() { [ "${RSSP_CONTAINERS_KEEP:-0}" = 1 ] && { echo "kept: $WORK"; return; }; teardown; rm -rf "$WORK"; }
trap cleanup EXIT
trap "exit 1" INT TERM

step "podman"
rssp_podman_setup
teardown                       # leftovers of an interrupted earlier run
# podman-default-kube-network is podman's own: the first `kube play` on a machine creates it
# and podman keeps it by design, so it is not a leftover of this test.
inventory() {
  { podman pod ps --format '{{.Name}}'; podman volume ls --format '{{.Name}}'
    podman secret ls --format '{{.Name}}'
    podman network ls --format '{{.Name}}' | grep -vx podman-default-kube-network; } | sort
}
INVENTORY=$(inventory)

step "images"
if ! rssp_build_images latest; then
  echo "FAIL: the images build"; echo "0 passed, 1 failed"; exit 1
fi
check "the engine image runs as uid 10001" [ "$(podman image inspect -f '{{.Config.User}}' localhost/rssp-engine:latest)" = 10001:10001 ]
check "the gateway image runs as uid 10001" [ "$(podman image inspect -f '{{.Config.User}}' localhost/rssp-gateway:latest)" = 10001:10001 ]
check "the engine image starts rssp-engine directly, without a shell" \
  [ "$(podman image inspect -f '{{json .Config.Entrypoint}}' localhost/rssp-engine:latest)" = '["/usr/bin/rssp-engine"]' ]
check "the gateway image starts rssp-gateway directly, without a shell" \
  [ "$(podman image inspect -f '{{json .Config.Entrypoint}}' localhost/rssp-gateway:latest)" = '["/usr/bin/rssp-gateway"]' ]
check "the runtime images carry no compiler" \
  bash -c '! podman run --rm --entrypoint /usr/bin/test localhost/rssp-gateway:latest -e /usr/bin/gcc &&
           ! podman run --rm --entrypoint /usr/bin/test localhost/rssp-engine:latest -e /usr/bin/gcc'
check "the gateway image holds the schema in /usr/share/rssp/schema" \
  podman run --rm --entrypoint /usr/bin/test localhost/rssp-gateway:latest -f /usr/share/rssp/schema/001_accounts.sql
for img in engine gateway; do
  echo "   localhost/rssp-$img: $(podman image inspect -f '{{.Size}}' localhost/rssp-$img:latest | awk '{printf "%.0f MB", $1/1e6}')"
done

step "render and validate the manifests"
# kubectl (with kustomize built in) is not a Debian package; these machines carry it from
# the Google Cloud SDK apt repository, which is where apt finds it when it is missing.
command -v kubectl >/dev/null || rssp_install_packages kubectl || true
check "kubectl (kustomize) is available" command -v kubectl
rendered=()
for o in base overlays/dev overlays/podman overlays/podman/postgres; do
  f=$WORK/render-$(echo "$o" | tr / -).yaml
  check "kubectl kustomize renders $o" bash -c 'kubectl kustomize "$1" > "$2"' _ "$ROOT/deploy/k8s/$o" "$f"
  rendered+=("$f")
done
VALIDATOR=/var/tmp/rssp-k8s-validate
mkdir -p "$VALIDATOR"
if ! cmp -s "$ROOT/tests/deploy/validate/package.json" "$VALIDATOR/package.json" || [ ! -d "$VALIDATOR/node_modules" ]; then
  cp "$ROOT/tests/deploy/validate/package.json" "$VALIDATOR/"
  (cd "$VALIDATOR" && npm install --no-audit --no-fund --silent >/dev/null 2>&1)
fi
cp "$ROOT/tests/deploy/validate/validate.mjs" "$VALIDATOR/"
check "every rendered object validates against the Kubernetes schemas" node "$VALIDATOR/validate.mjs" "${rendered[@]}"
sed '0,/^        - serve$/s//        - serve\n        imagePullPolcy: Always/' "$WORK/render-base.yaml" > "$WORK/typo.yaml"
check "the validator refuses an unknown field (imagePullPolcy)" \
  bash -c '! node "$1" "$2" >/dev/null && grep -q imagePullPolcy "$2"' _ "$VALIDATOR/validate.mjs" "$WORK/typo.yaml"
cp "$ROOT/tests/deploy/validate/policy.mjs" "$VALIDATOR/"
check "the base follows the pod security policy (non-root, read-only, no capabilities, PIN only in the engine, NetworkPolicy, PDB, probes)" \
  node "$VALIDATOR/policy.mjs" "$WORK/render-base.yaml"

step "podman kube play"
PIN=$(openssl rand -hex 24)
DBPW=$(openssl rand -hex 24)
# Hex is also valid base64, so the Secret is well-formed for the validator; podman puts
# the text under `data` into the file as it is, and both sides read the same file.
cat > "$WORK/secrets.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata: {name: rssp-hsm-pin}
data: {pin: $PIN}
---
apiVersion: v1
kind: Secret
metadata: {name: rssp-postgres}
data: {password: $DBPW}
EOF
# The registration authority of this test: its private key stays here (rssp-ra signs with
# it), its public key is the rssp-ra-keys ConfigMap the engine container mounts.
( umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ra.key" 2>/dev/null )
{
  printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: rssp-ra-keys}\ndata:\n  local-ra.pem: |\n'
  openssl pkey -in "$WORK/ra.key" -pubout | sed 's/^/    /'
} > "$WORK/ra-keys.yaml"
check "the test's Secrets validate" node "$VALIDATOR/validate.mjs" "$WORK/secrets.yaml"
podman network create "$NET" >/dev/null
podman kube play "$WORK/secrets.yaml" >/dev/null

cp "$WORK/render-overlays-podman-postgres.yaml" "$WORK/postgres.yaml"
check "the PostgreSQL pod starts" bash -c 'podman kube play --network "$1" "$2" >/dev/null' _ "$NET" "$WORK/postgres.yaml"
for _ in $(seq 1 120); do
  podman exec "$PGPOD-postgres" pg_isready -q -d rssp -U rssp -h 127.0.0.1 2>/dev/null && break
  sleep 0.5
done
check "PostgreSQL answers on its pod's network" podman exec "$PGPOD-postgres" pg_isready -q -h 127.0.0.1

# A free port on 127.0.0.1 for the gateway, and the throw-away database's URL: a
# kustomization of this test on top of the podman overlay (secretKeyRef fails in podman).
PORT=18080
while [ -n "$(ss -ltnH "( sport = :$PORT )")" ]; do PORT=$((PORT + 1)); done
mkdir -p "$WORK/overlay"
cat > "$WORK/overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$WORK/overlay" "$ROOT/deploy/k8s/overlays/podman")
patches:
  - target: {kind: Deployment, name: rssp}
    patch: |-
      - op: replace
        path: /spec/template/spec/initContainers/1/env/0/value
        value: postgresql://rssp:$DBPW@$PGPOD:5432/rssp
      - op: replace
        path: /spec/template/spec/containers/1/env/0/value
        value: postgresql://rssp:$DBPW@$PGPOD:5432/rssp
      - op: replace
        path: /spec/template/spec/containers/1/ports/0/hostPort
        value: $PORT
EOF
kubectl kustomize "$WORK/overlay" > "$WORK/play.yaml"
cat "$WORK/ra-keys.yaml" >> "$WORK/play.yaml"   # podman takes a pod's ConfigMaps from its YAML
URL=http://127.0.0.1:$PORT
ready() { [ "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "$URL/readyz")" = 200 ]; }
wait_ready() { local i; for i in $(seq 1 240); do ready && return 0; sleep 0.5; done; return 1; }
play_rssp() { podman kube play --network "$NET" "$WORK/play.yaml" > "$WORK/play.log" 2>&1; }
show_logs() {
  local c
  cat "$WORK/play.log"
  for c in $(podman ps -a --format '{{.Names}}' | grep "^$POD-"); do
    echo "--- $c"; podman logs --tail 20 "$c" 2>&1
  done
}
check "the rssp pod starts (engine-init, migrate, engine, gateway)" play_rssp
check "the gateway answers /readyz 200 on 127.0.0.1:$PORT" wait_ready || show_logs
check "the gateway's port is published on 127.0.0.1 only" \
  bash -c '[ -z "$(ss -ltnH "( sport = :$1 )" | grep -v "127.0.0.1:$1")" ]' _ "$PORT"

step "hardening of the running pod"
inspect() { podman inspect -f "$2" "$POD-$1" 2>/dev/null; }
for c in engine gateway; do
  check "the $c runs as uid 10001" [ "$(podman exec "$POD-$c" /usr/bin/id -u)" = 10001 ]
  check "the $c's root filesystem is read-only" [ "$(inspect $c '{{.HostConfig.ReadonlyRootfs}}')" = true ]
  check "the $c has no capabilities" \
    bash -c '[ "$(podman exec "$1" /usr/bin/awk "/^CapEff/ {print \$2}" /proc/self/status)" = 0000000000000000 ]' _ "$POD-$c"
  check "the $c cannot gain privileges" \
    bash -c '[ "$(podman exec "$1" /usr/bin/awk "/^NoNewPrivs/ {print \$2}" /proc/self/status)" = 1 ]' _ "$POD-$c"
  check "the $c runs under seccomp" \
    bash -c '[ "$(podman exec "$1" /usr/bin/awk "/^Seccomp:/ {print \$2}" /proc/self/status)" = 2 ]' _ "$POD-$c"
done
check "the shared volume holds only the engine socket, in a 0750 directory" \
  [ "$(podman exec "$POD-gateway" /usr/bin/find /run/rssp -mindepth 1 -printf '%P:%y ' -name engine -printf '%m ')" = "engine:d 750 engine/engine.sock:s " ]
check "the gateway cannot see the PIN or the token" \
  podman exec "$POD-gateway" /usr/bin/test ! -e /run/rssp-pin/pin -a ! -e /var/lib/rssp/tokens -a ! -e /etc/rssp-pin-secret
check "the engine's PIN file is readable by its owner only" \
  [ "$(podman exec "$POD-engine" /usr/bin/stat -c %a /run/rssp-pin/pin)" = 400 ]
check "the gateway cannot see the RA keys" podman exec "$POD-gateway" /usr/bin/test ! -e /etc/rssp/ra-keys
check "the engine trusts the test's RA key" \
  podman exec "$POD-engine" /usr/bin/test -s /etc/rssp/ra-keys/local-ra.pem
check "the engine has no database URL" bash -c '! podman exec "$1" /usr/bin/env | grep -q RSSP_DB_URL' _ "$POD-engine"

step "the signing flow from the host"
mkdir -p "$WORK/local"
( umask 077; openssl rand -base64 24 > "$WORK/admin-password" )
check "bootstrap-admin creates the first admin inside the gateway container" \
  bash -c 'podman exec -i "$1-gateway" /usr/bin/rssp-gateway bootstrap-admin --email admin@rssp.test < "$2" >/dev/null' _ "$POD" "$WORK/admin-password"
cat > "$WORK/local/env" <<EOF
RSSP_URL=$URL
RSSP_ADMIN_USER=admin@rssp.test
RSSP_ADMIN_PASSWORD_FILE=$WORK/admin-password
RSSP_RA_KEY_FILE=$WORK/ra.key
EOF
demo=$(RSSP_LOCAL_DIR=$WORK/local "$ROOT/tests/e2e/demo.sh" 2>&1); rc=$?
check "the README demo (register ... signHash) signs in the containers and openssl verifies" \
  bash -c '[ "$1" -eq 0 ] && grep -q "Verified OK" <<<"$2" && grep -q "cert0.pem: OK" <<<"$2"' _ "$rc" "$demo"
[ "$rc" -eq 0 ] || { echo "$demo" | tail -n 30; show_logs; }
rm -rf "$(sed -n 's/^files in //p' <<<"$demo")"

step "audit log, replay on the same token volume, SIGTERM"
# The engine's audit log is its standard output (diagnostics go to standard error).
podman logs "$POD-engine" 2>/dev/null > "$WORK/audit-1.jsonl"
audit_verify() { # FILE: verified by the engine image itself
  [ -s "$1" ] && podman run --rm --network none -v "$1:/audit.jsonl:ro" localhost/rssp-engine:latest \
    audit-verify /audit.jsonl >/dev/null 2>&1
}
check "the engine's audit log (its standard output) verifies with rssp-engine audit-verify" audit_verify "$WORK/audit-1.jsonl"
check "the audit log records the activation, the approval and the signature" \
  bash -c 'grep -q "\"event\":\"authorize.activation\"" "$1" && grep -q "\"event\":\"authorize.approval\"" "$1" &&
           grep -q "\"event\":\"signhash\"" "$1"' _ "$WORK/audit-1.jsonl"
check "the audit log holds neither the PIN nor the database password" \
  bash -c '! grep -q -e "$2" -e "$3" "$1"' _ "$WORK/audit-1.jsonl" "$PIN" "$DBPW"

token_objects() { (cd "$(podman volume inspect -f '{{.Mountpoint}}' rssp-hsm-tokens)" && find . -name '*.object' | sort); }
tokens_before=$(token_objects)
check "the token volume holds the token's objects" [ -n "$tokens_before" ]
podman kube play --down "$WORK/play.yaml" >/dev/null 2>&1
podman volume rm -f rssp-hsm-pin >/dev/null 2>&1      # the Secret's volume, left by --down
check "the token volume survives kube play --down" podman volume exists rssp-hsm-tokens
# podman 4.3 refuses to play a PersistentVolumeClaim whose volume exists: replay without it
# (the Deployment's claimName still names the existing volume).
awk 'BEGIN { RS = "\n---\n"; ORS = "\n---\n" } !/kind: PersistentVolumeClaim/' "$WORK/play.yaml" > "$WORK/replay.yaml"
check "the pod starts again on the existing token (engine-init is idempotent)" \
  bash -c 'podman kube play --network "$1" "$2" > "$3" 2>&1' _ "$NET" "$WORK/replay.yaml" "$WORK/play.log" || show_logs
check "the gateway is ready again" wait_ready || show_logs
check "the replay kept the token and its keys (same token objects)" [ "$(token_objects)" = "$tokens_before" ]
admin_login() {
  printf 'user = "%s:%s"\n' admin@rssp.test "$(cat "$WORK/admin-password")" |
    curl -s -K - -m 20 -X POST -H 'Content-Type: application/json' -d '{}' "$URL/rssp/auth/login" |
    jq -e '.access_token | length > 0' >/dev/null
}
check "the admin still logs in after the replay" admin_login
t=$(date +%s)
podman pod stop -t 20 "$POD" >/dev/null 2>&1
took=$(( $(date +%s) - t ))
check "the engine and the gateway stop on SIGTERM well before the 20 s limit" [ "$took" -lt 15 ]
check "the engine exits 0 on SIGTERM" [ "$(inspect engine '{{.State.ExitCode}}')" = 0 ]
check "the gateway exits 0 on SIGTERM" [ "$(inspect gateway '{{.State.ExitCode}}')" = 0 ]
podman logs "$POD-engine" 2>/dev/null > "$WORK/audit-2.jsonl"
check "the second engine's audit log verifies" audit_verify "$WORK/audit-2.jsonl"
check "the second engine's audit log records its stop" grep -q '"event":"engine.stop"' "$WORK/audit-2.jsonl"

step "teardown"
teardown
left() {
  local now; now=$(inventory)
  [ "$now" = "$INVENTORY" ] || { diff <(echo "$INVENTORY") <(echo "$now"); return 1; }
}
check "teardown leaves no pod, Secret, volume or network behind" left
echo "container test took $(( $(date +%s) - T0 )) s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
