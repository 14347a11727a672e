# shellcheck shell=bash
# Shared by deploy/local/up and tests/run: install packages, run a private PostgreSQL
# cluster, prepare a SoftHSM2 configuration. Source it; every function is idempotent.

# What deploy/local/up needs to build and run the service (and the demo: curl, jq, rssp-sic).
RSSP_PACKAGES=(
  build-essential cmake pkg-config
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev
  libp11-dev libp11-kit-dev libssl-dev openssl softhsm2
  libmicrohttpd-dev libjansson-dev libpq-dev libsodium-dev libcurl4-openssl-dev
  check libsubunit-dev
  postgresql-15 postgresql-client-15
  python3 python3-requests python3-cryptography
  curl jq procps iproute2 util-linux
)
# What tests/run needs on top of them (one package or group per line: easy to merge).
RSSP_TEST_PACKAGES=(
  opensc
  python3-grpcio python3-grpc-tools
  valgrind
  wrk
  chromium chromium-driver python3-selenium
  clang libclang-rt-14-dev
)
PG_BIN=/usr/lib/postgresql/15/bin

# rssp_install_packages [PKG...]: installs those of RSSP_PACKAGES and PKG... that are missing
# (apt-get update first). With RSSP_INSTALL_LOG=FILE, apt's output goes to FILE and only
# its tail is shown on failure.
rssp_install_packages() {
  local missing=() p
  for p in "${RSSP_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${#missing[@]} packages: ${missing[*]}" >&2
  local sudo="" log=${RSSP_INSTALL_LOG:-/dev/stderr} rc=0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  {
    $sudo apt-get update -qq &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } >>"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && [ "$log" != /dev/stderr ]; then
    echo "package installation failed; the end of $log:" >&2
    tail -n 25 "$log" >&2
  fi
  return "$rc"
}

# Runs a command as the unprivileged owner of the cluster (initdb and postgres refuse root).
_rssp_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# rssp_pg_init DIR: creates a cluster in DIR/data (trust auth on a unix socket in DIR/run).
# A half-made cluster (no PG_VERSION) is removed and made again.
rssp_pg_init() {
  local dir=$1
  mkdir -p "$dir"
  if [ -d "$dir/data" ] && [ ! -f "$dir/data/PG_VERSION" -o ! -f "$dir/data/.rssp-complete" ]; then
    echo "removing half-initialised cluster in $dir/data" >&2
    rm -rf "$dir/data"
  fi
  mkdir -p "$dir/run"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir" "$dir/run"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    _rssp_pg_as "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-instructions >/dev/null
    touch "$dir/data/.rssp-complete"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/data/.rssp-complete"; fi
  fi
}

# rssp_pg_start DIR PORT: starts the cluster (unix socket only) unless it runs already.
rssp_pg_start() {
  local dir=$1 port=$2
  if _rssp_pg_as "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then return 0; fi
  _rssp_pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir/run' -p $port -c max_connections=200 -c fsync=off" >/dev/null
}

rssp_pg_stop() {
  local dir=$1
  _rssp_pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# rssp_pg_url DIR PORT [DB]: the libpq URL of the cluster.
rssp_pg_url() {
  echo "postgresql://postgres@/${3:-postgres}?host=$1/run&port=$2"
}

# rssp_softhsm_conf DIR: writes DIR/softhsm2.conf with its token directory DIR/tokens.
rssp_softhsm_conf() {
  local dir=$1
  mkdir -p "$dir/tokens"
  chmod 0700 "$dir" "$dir/tokens"
  printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$dir" > "$dir/softhsm2.conf"
}
RSSP_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so

# rssp_ra_key KEY PUBDIR: the local registration authority. Makes the RA private key KEY
# (EC P-256, PEM, mode 0600) once, and writes its public key to PUBDIR/local-ra.pem, the
# directory the engine trusts (RSSP_RA_KEYS). rssp-ra signs with KEY (RSSP_RA_KEY_FILE).
rssp_ra_key() {
  local key=$1 pubdir=$2
  if [ ! -s "$key" ]; then
    ( umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$key.tmp" 2>/dev/null && mv -f "$key.tmp" "$key" )
  fi
  mkdir -p "$pubdir"; chmod 0755 "$pubdir"
  openssl pkey -in "$key" -pubout -out "$pubdir/local-ra.pem.tmp" 2>/dev/null &&
    mv -f "$pubdir/local-ra.pem.tmp" "$pubdir/local-ra.pem"
}
