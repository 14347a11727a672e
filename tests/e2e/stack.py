"""The real rssp stack for end-to-end tests and the REST benchmark: a SoftHSM2 token,
`rssp-engine init` + `serve` on a unix socket in a 0750 directory, a fresh PostgreSQL
database, `rssp-gateway migrate`, `bootstrap-admin` and `serve` on loopback. Nothing
mocked. Plus a small JSON client for the REST API.

Environment (tests/run sets these): RSSP_TEST_WORK, RSSP_TEST_DB_URL, RSSP_TEST_ROOT,
RSSP_TEST_PKCS11_MODULE (default /usr/lib/softhsm/libsofthsm2.so).
"""
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("RSSP_TEST_ROOT") or os.path.dirname(os.path.dirname(HERE))
SIC = os.path.join(ROOT, "tests", "sic", "rssp-sic")
RA = os.path.join(ROOT, "tests", "sic", "rssp-ra")


def b64e(b):
    return base64.b64encode(b).decode("ascii")


def b64d(s):
    return base64.b64decode(s, validate=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def db_url_with_name(url, name):
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


class HttpError(AssertionError):
    def __init__(self, path, r):
        try:
            body = r.json()
        except ValueError:
            body = r.text[:300]
        super().__init__("POST %s -> %d %s" % (path, r.status_code, body))
        self.status = r.status_code
        self.body = body


class Client:
    """JSON calls to /rssp/... with an optional bearer token. Login honours 429
    Retry-After (the gateway rate-limits logins per address; tests log in often)."""

    def __init__(self, url, token=None):
        self.url = url.rstrip("/")
        self.token = token
        self.s = requests.Session()

    def raw(self, path, body=None, auth=None, token=None, headers=None):
        h = dict(headers or {})
        tok = token or self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        for _ in range(10):
            r = self.s.post(self.url + "/rssp/" + path, json={} if body is None else body,
                            headers=h, auth=auth, timeout=90)
            if r.status_code != 429:
                return r
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 10))
        return r

    def post(self, path, body=None, expect=200, **kw):
        r = self.raw(path, body, **kw)
        if r.status_code != expect:
            raise HttpError(path, r)
        return r.json() if r.status_code != 204 and r.content else {}

    def login(self, user, password, digest=False):
        auth = requests.auth.HTTPDigestAuth(user, password) if digest else (user, password)
        tok = self.post("auth/login", {}, auth=auth)
        assert tok.get("token_type", "").lower() == "bearer", tok
        return Client(self.url, tok["access_token"])


class Stack:
    def __init__(self, build, name="e2e", workers=2, gateway_env=None):
        self.build = build
        self.engine_bin = os.path.join(build, "engine", "rssp-engine")
        self.gateway_bin = os.path.join(build, "gateway", "rssp-gateway")
        base = os.environ.get("RSSP_TEST_WORK") or tempfile.gettempdir()
        self.work = tempfile.mkdtemp(prefix="rssp-%s." % name, dir=base)
        os.chmod(self.work, 0o755)
        self.name = name
        self.workers = workers
        self.gateway_env = gateway_env or {}
        self.procs = []
        self.dbname = None
        self.pin = "e2e-user-pin-%d" % os.getpid()
        self.admin_email = "admin@%s.test" % name
        self.admin_password = "admin passphrase %d" % os.getpid()
        self.module = os.environ.get("RSSP_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")

    # -- pieces --------------------------------------------------------------------
    def _run(self, cmd, env, **kw):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
        if r.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode,
                                                              r.stdout[-2000:], r.stderr[-3000:]))
        return r.stdout

    def start_hsm(self):
        hsm = os.path.join(self.work, "hsm")
        os.makedirs(os.path.join(hsm, "tokens"), mode=0o700)
        self.softhsm_conf = os.path.join(hsm, "softhsm2.conf")
        with open(self.softhsm_conf, "w") as f:
            f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n" % hsm)
        self.pin_file = os.path.join(self.work, "pin")
        fd = os.open(self.pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.pin + "\n")
        env = dict(os.environ, SOFTHSM2_CONF=self.softhsm_conf)
        self._run(["softhsm2-util", "--init-token", "--free", "--label", "rssp-" + self.name,
                   "--pin", self.pin, "--so-pin", "so-" + self.pin], env)

    def ra_keygen(self):
        """The local registration authority: its key (0600) and its public key, which
        the engine trusts (RSSP_RA_KEYS). The gateway is not given it: the engine alone
        decides, as in the Kubernetes deployment."""
        self.ra_key = os.path.join(self.work, "ra.key")
        self.ra_pub = os.path.join(self.work, "ra.pem")
        self.ra_state = os.path.join(self.work, "ra-state")
        if not os.path.exists(self.ra_key):
            self.ra("keygen", "--pub", self.ra_pub)

    def engine_env(self):
        self.ra_keygen()
        run = os.path.join(self.work, "run")
        os.makedirs(run, mode=0o750, exist_ok=True)
        os.chmod(run, 0o750)
        self.socket = os.path.join(run, "engine.sock")
        self.audit_file = os.path.join(self.work, "audit.log")
        return dict(os.environ, SOFTHSM2_CONF=self.softhsm_conf, RSSP_PKCS11_MODULE=self.module,
                    RSSP_TOKEN_LABEL="rssp-" + self.name, RSSP_PIN_FILE=self.pin_file,
                    RSSP_ENGINE_SOCKET=self.socket, RSSP_AUDIT_FILE=self.audit_file,
                    RSSP_ENGINE_WORKERS=str(self.workers), RSSP_LOG_LEVEL="warn",
                    RSSP_RA_KEYS=self.ra_pub)

    def start_engine(self):
        env = self.engine_env()
        self._run([self.engine_bin, "init", "--ca-subject", "CN=rssp %s CA,O=rssp" % self.name],
                  env, timeout=120)
        self.engine_log = open(os.path.join(self.work, "engine.stderr"), "w")
        self.engine = subprocess.Popen([self.engine_bin, "serve"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=self.engine_log)
        self.procs.append(self.engine)
        deadline = time.time() + 60
        while not os.path.exists(self.socket):
            if self.engine.poll() is not None or time.time() > deadline:
                raise AssertionError("engine did not start:\n" + self.tail("engine.stderr"))
            time.sleep(0.05)

    def create_db(self):
        url = os.environ["RSSP_TEST_DB_URL"]
        self.dbname = "rssp_%s_%d_%d" % (self.name, os.getpid(), int(time.time()))
        self._run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                   "CREATE DATABASE %s" % self.dbname], dict(os.environ))
        self.db_url = db_url_with_name(url, self.dbname)

    def gw_env(self):
        self.port = getattr(self, "port", None) or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ, RSSP_DB_URL=self.db_url, RSSP_LISTEN="127.0.0.1:%d" % self.port,
                   RSSP_ENGINE_SOCKET=self.socket, RSSP_SCHEMA_DIR=os.path.join(ROOT, "schema"),
                   RSSP_ARGON2_OPSLIMIT="1", RSSP_ARGON2_MEMLIMIT_KIB="8192",
                   RSSP_LOG_LEVEL="warn", RSSP_SERVICE_NAME="rssp-" + self.name,
                   # many logins from 127.0.0.1 in a few seconds: not what the limiter is for
                   RSSP_LOGIN_BURST="100")
        env.update(self.gateway_env)
        return env

    def start_gateway(self):
        env = self.gw_env()
        self._run([self.gateway_bin, "migrate"], env, timeout=120)
        pw = os.path.join(self.work, "admin.pass")
        with open(os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(self.admin_password + "\n")
        self.admin_password_file = pw
        self._run([self.gateway_bin, "bootstrap-admin", "--email", self.admin_email,
                   "--password-file", pw], env, timeout=60)
        self.gw_log = open(os.path.join(self.work, "gateway.stderr"), "w")
        self.gw_access = open(os.path.join(self.work, "gateway.access"), "w")
        self.gateway = subprocess.Popen([self.gateway_bin, "serve"], env=env,
                                        stdout=self.gw_access, stderr=self.gw_log)
        self.procs.append(self.gateway)
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.gateway.poll() is not None or time.time() > deadline:
                raise AssertionError("gateway not ready:\n" + self.tail("gateway.stderr"))
            time.sleep(0.1)

    def start(self):
        self.start_hsm()
        self.start_engine()
        self.create_db()
        self.start_gateway()
        return self

    # -- helpers -------------------------------------------------------------------
    def tail(self, name, n=3000):
        try:
            with open(os.path.join(self.work, name)) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def print_tails(self, names=("gateway.stderr", "engine.stderr"), n=2500):
        """Prints the end of each of the stack's logs (a failed suite shows why)."""
        for name in names:
            print("---- %s (tail)\n%s" % (name, self.tail(name, n)), flush=True)

    def client(self):
        return Client(self.url)

    def admin(self):
        return self.client().login(self.admin_email, self.admin_password)

    def outbox(self, admin, recipient, kind):
        msgs = admin.post("admin/outbox/list", {"recipient": recipient, "kind": kind})["messages"]
        assert msgs, "no %s message for %s in the outbox" % (kind, recipient)
        return msgs[0]["data"]

    def sic(self, state, *args, check=True):
        """Runs rssp-sic --json with a state directory; returns its parsed output."""
        r = subprocess.run(["/usr/bin/python3", SIC, "--state", state, "--json", *args],
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("rssp-sic %s failed (%d): %s" % (args[0], r.returncode, r.stderr))
        if not check:
            return r
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def ra(self, *args, check=True):
        """Runs rssp-ra --json with the stack's RA key and state; returns its parsed output."""
        r = subprocess.run(["/usr/bin/python3", RA, "--state", self.ra_state, "--key", self.ra_key,
                            "--json", *args], capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("rssp-ra %s failed (%d): %s" % (args[0], r.returncode, r.stderr))
        if not check:
            return r
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def vouch(self, sic_state):
        """The registration officer (the admin here) vouches for the device of an
        rssp-sic state directory, after rssp-ra checked the bytes against the display."""
        if not getattr(self, "ra_logged_in", False):
            self.ra("login", "--url", self.url, "--user", self.admin_email,
                    "--password-file", self.admin_password_file)
            self.ra_logged_in = True
        with open(os.path.join(sic_state, "config.json")) as f:
            device = json.load(f)["deviceUUID"]
        res = self.ra("vouch", device, "--yes")
        assert res.get("status") == "VOUCHED", res
        return device

    def stop(self, sig_timeout=30):
        """SIGTERM to the gateway then the engine; returns {name: exit status}."""
        codes = {}
        for name in ("gateway", "engine"):
            p = getattr(self, name, None)
            if p is None or p.poll() is not None:
                codes[name] = None if p is None else p.returncode
                continue
            p.send_signal(signal.SIGTERM)
            try:
                codes[name] = p.wait(sig_timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        return codes

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.dbname:
            subprocess.run(["psql", "-q", os.environ["RSSP_TEST_DB_URL"], "-c",
                            "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.dbname],
                           capture_output=True)


def build_dir_from_argv():
    if len(sys.argv) > 1 and os.path.isdir(sys.argv[1]):
        return sys.argv.pop(1)
    return os.environ.get("RSSP_TEST_BUILD") or os.path.join(ROOT, "build")


def enrol_signer(st, rp, admin, tag, kak_algo="ec-p256", sha="sha256"):
    """register -> confirm (token from the outbox) -> SIC activation code from the outbox ->
    rssp-sic login, keygen, activate -> rssp-ra vouch. Returns (userID, fullName, rssp-sic state dir)."""
    email = "signer-%s-%d@%s.test" % (tag, os.getpid(), st.name)
    full_name = "Signer %s" % tag.upper()
    u = rp.post("users/register", {"email": email, "mobile": "+336%08d" % (os.getpid() % 10**8),
                                   "fullName": full_name}, expect=201)
    token = st.outbox(admin, email, "confirmation")["token"]
    passphrase = "correct horse battery %s" % tag
    st.client().post("users/confirm", {"token": token, "passphrase": passphrase})
    rp.post("sic/activationCode", {"userID": u["userID"], "channel": "email"}, expect=202)
    code = st.outbox(admin, email, "sic_activation_code")["code"]
    state = os.path.join(st.work, "sic-" + tag)
    pw = os.path.join(st.work, "pw-" + tag)
    with open(os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(passphrase + "\n")
    st.sic(state, "login", "--url", st.url, "--user", email, "--password-file", pw)
    st.sic(state, "keygen", "--algo", kak_algo, "--sha", sha)
    st.sic(state, "activate", "--code", code, "--name", "device " + tag)
    st.vouch(state)
    return u["userID"], full_name, state


def load_sic_module():
    """rssp-sic as a module: its KAK handling and its authData checks, in process."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("rssp_sic", SIC)
    spec = importlib.util.spec_from_loader("rssp_sic", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class FastSigner:
    """The app's approval step without a process per request (benchmarks): rssp-sic's own
    decoder and checks, a cached KAK, a keep-alive session. Thread-safe enough for
    one instance per thread."""

    def __init__(self, st, state):
        self.sic = load_sic_module()
        self.state = self.sic.State(state)
        self.kak = self.state.load_kak()
        self.dev = self.state.cfg["deviceUUID"]
        self.app = Client(st.url, self.state.cfg["accessToken"])

    def approve(self, rp, cred, digests, hash_oid, num, description="bench"):
        a = rp.post("credentials/authorize", {
            "credentialID": cred, "numSignatures": num, "hashes": [b64e(d) for d in digests],
            "hashAlgorithmOID": hash_oid, "description": description}, expect=202)
        info = self.app.post("requests/info", {"requestID": a["requestID"]})
        ad = b64d(info["authData"])
        purpose, fields = self.sic.decode_authdata(ad)
        assert purpose == self.sic.PURPOSE_APPROVAL
        self.sic.check_approval(info, fields, device_uuid=self.dev, kak_spki=self.kak.spki,
                                owner_id=self.state.cfg.get("userID"))
        self.app.post("requests/confirm", {"requestID": a["requestID"], "deviceUUID": self.dev,
                                           "authorizeSignature": b64e(self.kak.sign(ad))})
        chk = rp.post("credentials/authorizeCheck", {"requestID": a["requestID"]})
        assert chk["status"] == "CONFIRMED", chk
        return chk["SAD"]
