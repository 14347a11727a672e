#!/usr/bin/python3
"""The fault suite: an operator's bad day on a running service, under signing load.

Starts its own stack (real engine on SoftHSM2, real gateway) against a PRIVATE PostgreSQL
cluster (so that stopping it disturbs no other suite) with the engine's audit log on a
small tmpfs the test mounts itself (root), runs signing clients, and injects one fault
after the other, each bounded in time:

  engine kill -9 (then restarted), engine SIGSTOP/SIGCONT, PostgreSQL stop/start (and a
  restart while the service is quiet: the first request after it must succeed), gateway
  kill -9 (then restarted), audit log on a full disk, audit log unwritable.

For each it asserts: during the fault only 503s with a named code (engine_unavailable,
database_unavailable, audit_unavailable) or refused connections (gateway down); /readyz
says 503 with the right code within 2 s of the fault and 200 within 2 s of the repair;
recovery without restarting the other processes; calls that need no engine never wait
for a hung one. At the end, nothing lost or double-spent:
  signatures returned <= signhash signatures in the audit log <= count spent in
  PostgreSQL <= returned + those of calls whose outcome the client could not know (503
  or cut connection), and no SAD has more audited signatures than its count.
Equality (returned = audited = spent) holds only when no call was cut mid-way; a kill
-9 or SIGSTOP may cut a call after the engine signed and audited, and then the
signature is in the log and spent, but never delivered.

It also asserts the engine half of issue 11, unconditionally: a confirm retried after a
cut call or a lost answer ends CONFIRMED with a usable SAD, "audit log unavailable" spends
nothing, used-up SADs are refused by a restarted engine (counts rebuilt from the audit
log), and audit-verify accepts the log written through all of it.

usage: test_fault.py [BUILD_DIR]
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import stack  # noqa: E402
from stack import b64d, b64e  # noqa: E402

SHA256_OID = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
K = 40                       # signatures per SAD
CLIENTS = 6
NAMED_503 = {"engine_unavailable", "database_unavailable", "audit_unavailable"}
PG_BIN = "/usr/lib/postgresql/15/bin"
T0 = time.time()


def log(msg):
    print("[%6.1f] %s" % (time.time() - T0, msg), flush=True)


# ---- a private PostgreSQL cluster --------------------------------------------------------
class PrivatePG:
    def __init__(self, base):
        self.dir = os.path.join(base, "pg")
        os.makedirs(os.path.join(self.dir, "run"))
        self.port = stack.free_port()
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(os.path.join(self.dir, "run"), "postgres", "postgres")
        self.as_pg([PG_BIN + "/initdb", "-D", self.dir + "/data", "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--no-instructions"])

    def as_pg(self, cmd, check=True):
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        if check and r.returncode != 0:
            raise AssertionError("%s: %s %s" % (" ".join(cmd), r.stdout, r.stderr))
        return r

    def start(self):
        self.as_pg([PG_BIN + "/pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/postgres.log",
                    "-w", "-t", "60", "start", "-o",
                    "-c listen_addresses='' -c unix_socket_directories='%s/run' -p %d "
                    "-c max_connections=100 -c fsync=off" % (self.dir, self.port)])

    def stop(self):
        self.as_pg([PG_BIN + "/pg_ctl", "-D", self.dir + "/data", "-m", "fast", "-w", "stop"],
                   check=False)

    def url(self, db="postgres"):
        return "postgresql://postgres@/%s?host=%s/run&port=%d" % (db, self.dir, self.port)


# ---- the stack with its audit log on a tmpfs ---------------------------------------------
class FaultStack(stack.Stack):
    def engine_env(self):
        env = super().engine_env()
        self.auditfs = os.path.join(self.work, "auditfs")
        self.audit_file = os.path.join(self.auditfs, "audit.log")
        env["RSSP_AUDIT_FILE"] = self.audit_file
        return env

    def mount_auditfs(self):
        self.auditfs = os.path.join(self.work, "auditfs")
        os.makedirs(self.auditfs, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0755", "rssp-fault-audit",
                        self.auditfs], check=True)
        self.mounted = True

    def start_engine_process(self):
        """`serve` only (the token is initialised): a restart."""
        env = self.engine_env()
        self.engine = subprocess.Popen([self.engine_bin, "serve"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=self.engine_log)
        self.procs.append(self.engine)
        deadline = time.time() + 30
        while True:
            if os.path.exists(self.socket) and probe_engine(self.socket):
                return
            if self.engine.poll() is not None or time.time() > deadline:
                raise AssertionError("engine did not restart:\n" + self.tail("engine.stderr"))
            time.sleep(0.02)

    def start_gateway_process(self):
        self.gateway = subprocess.Popen([self.gateway_bin, "serve"], env=self.gw_env(),
                                        stdout=self.gw_access, stderr=self.gw_log)
        self.procs.append(self.gateway)

    def audit_files(self):
        """Every audit file (current, rotated, moved away by the test), in chain order."""
        def first_seq(fn):
            with open(fn, "rb") as f:
                o = parse_line(f.readline())
            return o.get("seq", 0) if o else 0
        d = self.auditfs
        files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("audit.log")]
        return sorted((f for f in files if os.path.isfile(f)), key=first_seq)


def probe_engine(sock):
    """True when the engine answers an unknown method (UNIMPLEMENTED) within 1 s."""
    import grpc
    ch = grpc.insecure_channel("unix:" + sock)
    try:
        ch.unary_unary("/rssp.engine.v1.Engine/LivenessProbe")(b"", timeout=1)
        return True
    except grpc.RpcError as e:
        return e.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        ch.close()


def parse_line(line):
    """An audit line as JSON; a line glued to the fragment of a torn one is read from its
    own start (so a torn log does not hide the whole lines after it)."""
    try:
        return json.loads(line)
    except ValueError:
        i = line.rfind(b'{"time":')
        try:
            return json.loads(line[i:]) if i > 0 else None
        except ValueError:
            return None


def pb_bytes(field, b):
    n = len(b)
    v = bytearray()
    while True:
        if n < 0x80:
            v.append(n)
            break
        v.append((n & 0x7f) | 0x80)
        n >>= 7
    return bytes([field << 3 | 2]) + bytes(v) + b


def signhash_direct(sock, cred, sad, digest):
    """SignHash straight to the engine (no gateway, no PostgreSQL): the status code name."""
    import grpc
    req = pb_bytes(1, b"fault-direct") + pb_bytes(2, cred.encode()) + pb_bytes(3, sad) + \
        bytes([4 << 3, 1, 5 << 3, 3]) + pb_bytes(6, digest)
    ch = grpc.insecure_channel("unix:" + sock)
    try:
        ch.unary_unary("/rssp.engine.v1.Engine/SignHash")(req, timeout=5)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name
    finally:
        ch.close()


# ---- signing clients ---------------------------------------------------------------------
def sign_once(rp, load, cred, sad, digest):
    """signHash of one digest with an approved SAD (base64), as the rp; the SAD is counted
    with the load's (returned) and kept (load.sads) for the checks of spent SADs."""
    r = rp.post("signatures/signHash", {"credentialID": cred, "SAD": sad,
                "hashes": [b64e(digest)], "hashAlgorithmOID": SHA256_OID,
                "signAlgo": ECDSA_SHA256})
    assert len(r["signatures"]) == 1
    load.sads[b64d(sad)[11:27].hex()] = (b64d(sad), digest)
    load.returned += 1


class Load:
    """CLIENTS threads, each: get a SAD (authorize -> confirm -> authorizeCheck, K
    signatures of one hash), then signHash one at a time until it is used up. Every answer
    is recorded with the fault window it fell in."""

    def __init__(self, st, rp_id, rp_secret, state, cred):
        self.st, self.cred = st, cred
        self.rp_id, self.rp_secret, self.state = rp_id, rp_secret, state
        self.lock = threading.Lock()
        self.phase = "baseline"
        self.allow = set()       # what a non-200 may be in this phase
        self.returned = 0
        self.in_doubt = 0
        self.bad = []            # (phase, what) not allowed
        self.seen = {}           # phase -> {outcome: count}
        self.sads = {}           # sad_id hex -> (sad bytes, digest)
        self.returned_by_sad = {}
        self.stop = False
        self.paused = threading.Event()
        self.paused.set()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(CLIENTS)]

    def set_phase(self, phase, allow=()):
        with self.lock:
            self.phase = phase
            self.allow = set(allow)

    def note(self, outcome, ok):
        with self.lock:
            d = self.seen.setdefault(self.phase, {})
            d[outcome] = d.get(outcome, 0) + 1
            if not ok and outcome not in self.allow and \
                    not any(a.endswith("*") and outcome.startswith(a[:-1]) for a in self.allow):
                self.bad.append((self.phase, outcome))

    def outcome_of(self, r):
        try:
            code = r.json().get("error", "")
        except ValueError:
            code = ""
        return "%d %s" % (r.status_code, code)

    def login(self):
        while not self.stop:
            try:
                rp = self.st.client().login(self.rp_id, self.rp_secret)
                signer = stack.FastSigner(self.st, self.state)
                return rp, signer
            except (requests.RequestException, AssertionError) as e:
                self.note("login: %s" % str(e)[:60], False)
                time.sleep(0.2)
        return None, None

    def run(self, i):
        rp, signer = self.login()
        digest = hashlib.sha256(b"fault-%d-%d" % (os.getpid(), i)).digest()
        sad, left, doubt = None, 0, 0
        while not self.stop:
            self.paused.wait()
            if sad is None or left == 0:
                try:
                    sad_b64 = signer.approve(rp, self.cred, [digest], SHA256_OID, K, "fault")
                    sad = b64d(sad_b64)
                    left, doubt = K, 0
                    with self.lock:
                        self.sads[sad[11:27].hex()] = (sad, digest)
                except stack.HttpError as e:
                    self.note("approve %d %s" % (e.status, (e.body or {}).get("error", "")
                                                  if isinstance(e.body, dict) else ""),
                              e.status == 503 and isinstance(e.body, dict) and
                              e.body.get("error") in NAMED_503)
                    time.sleep(0.05)
                except (requests.RequestException, AssertionError, KeyError, ValueError) as e:
                    self.note("approve: %s" % type(e).__name__, False)
                    time.sleep(0.05)
                continue
            try:
                r = rp.s.post(self.st.url + "/rssp/signatures/signHash", json={
                    "credentialID": self.cred, "SAD": b64e(sad), "hashes": [b64e(digest)],
                    "hashAlgorithmOID": SHA256_OID, "signAlgo": ECDSA_SHA256},
                    headers={"Authorization": "Bearer " + rp.token}, timeout=15)
            except requests.RequestException as e:
                with self.lock:
                    self.in_doubt += 1
                doubt += 1
                self.note("signHash connection: %s" % type(e).__name__, False)
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                with self.lock:
                    self.returned += 1
                    sid = sad[11:27].hex()
                    self.returned_by_sad[sid] = self.returned_by_sad.get(sid, 0) + 1
                left -= 1
                self.note("200", True)
                continue
            out = self.outcome_of(r)
            if r.status_code == 503:
                code = r.json().get("error")
                with self.lock:
                    self.in_doubt += 1
                doubt += 1
                self.note(out, code in NAMED_503 and r.headers.get("Retry-After") is not None)
                time.sleep(0.05)
            elif r.status_code == 401:
                self.note(out, False)
                rp, signer = self.login()
            else:
                # A call whose outcome was unknown kept its count spent (it may have been
                # signed): the SAD runs out before the client's own count of it.
                desc = r.json().get("error_description", "")
                used_up = r.status_code == 403 and "allows 0 more" in desc
                self.note(out + " " + desc[:60] + (" (after %d in doubt)" % doubt
                                                   if used_up and doubt else ""),
                          used_up and 0 < left <= doubt)
                sad, left = None, 0

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop = True
        self.paused.set()
        for t in self.threads:
            t.join(30)


# ---- helpers -----------------------------------------------------------------------------
def readyz(st):
    try:
        r = requests.get(st.url + "/readyz", timeout=3)
        return r.status_code, (r.json().get("error") if r.status_code != 200 else None)
    except requests.RequestException:
        return None, None


def await_ready(st, want_status, want_code=None, within=2.0, what=""):
    t = time.time()
    while True:
        s, c = readyz(st)
        if s == want_status and (want_code is None or c == want_code):
            return time.time() - t
        if time.time() - t > within:
            raise AssertionError("%s: /readyz is %s %s after %.1f s, wanted %d %s"
                                 % (what, s, c, time.time() - t, want_status, want_code or ""))
        time.sleep(0.05)


def await_signing(load, within=5.0, what=""):
    n0 = load.returned
    t = time.time()
    while load.returned <= n0:
        if time.time() - t > within:
            raise AssertionError("%s: no signature within %.0f s of the repair" % (what, within))
        time.sleep(0.05)


def main():
    build = stack.build_dir_from_argv()
    base = os.environ.get("RSSP_TEST_WORK") or tempfile.gettempdir()
    pgbase = tempfile.mkdtemp(prefix="rssp-fault-pg.", dir=base)
    os.chmod(pgbase, 0o755)
    pg = PrivatePG(pgbase)
    pg.start()
    os.environ["RSSP_TEST_DB_URL"] = pg.url()
    st = FaultStack(build, name="fault", workers=2,
                    gateway_env={"RSSP_ENGINE_TIMEOUT_MS": "5000", "RSSP_DB_POOL": "24",
                                 "RSSP_LOG_LEVEL": os.environ.get("FAULT_GW_LOG", "warn")})
    st.mounted = False
    ran, load = [], None
    try:
        st.start_hsm()
        st.mount_auditfs()
        st.start_engine()
        st.create_db()
        st.start_gateway()
        admin = st.admin()
        c = admin.post("admin/clients/create", {"name": "Fault RP"}, expect=201)
        rp = st.client().login(c["clientID"], c["secretKey"])
        user_id, _, state = stack.enrol_signer(st, rp, admin, "fault", "ec-p256")
        cr = rp.post("credentials/create", {"userID": user_id, "keyAlgo": "ecp256"}, expect=201)
        st.sic(state, "credential-activate", cr["credentialID"], "--yes")
        cred = cr["credentialID"]
        log("stack up")

        load = Load(st, c["clientID"], c["secretKey"], state, cred)
        load.start()
        await_signing(load, 20, "baseline")
        time.sleep(2)
        gw_pid, eng_pid = st.gateway.pid, st.engine.pid
        E503 = {"503 engine_unavailable"}

        # 1. engine kill -9, restart
        load.set_phase("engine-kill", E503 | {"approve 503 engine_unavailable"})
        st.engine.kill()
        st.engine.wait()
        dt = await_ready(st, 503, "engine_unavailable", 2.0, "engine killed")
        log("engine kill -9: /readyz 503 after %.2f s" % dt)
        time.sleep(2)
        st.start_engine_process()
        dt = await_ready(st, 200, None, 2.0, "engine restarted")
        log("engine restarted: /readyz 200 after %.2f s" % dt)
        await_signing(load, 5, "engine restarted")
        assert st.gateway.pid == gw_pid and st.gateway.poll() is None
        ran.append("engine kill -9")
        load.set_phase("after-engine-kill")
        time.sleep(1)

        # 2. engine SIGSTOP / SIGCONT: fail fast, no wait for calls that need no engine,
        #    and a confirm cut by the stop, retried, ends CONFIRMED
        app = stack.FastSigner(st, state)
        digest = hashlib.sha256(b"fault-retry-%d" % os.getpid()).digest()
        a = rp.post("credentials/authorize", {"credentialID": cred, "numSignatures": 1,
                    "hashes": [b64e(digest)], "hashAlgorithmOID": SHA256_OID,
                    "description": "retried"}, expect=202)
        info = app.app.post("requests/info", {"requestID": a["requestID"]})
        approval = {"requestID": a["requestID"], "deviceUUID": app.dev,
                    "authorizeSignature": b64e(app.kak.sign(b64d(info["authData"])))}
        load.set_phase("engine-stop", E503 | {"approve 503 engine_unavailable"})
        eng_pid = st.engine.pid
        st.engine.send_signal(signal.SIGSTOP)
        t_stop = time.time()
        confirm_result = {}

        def confirm():
            r = app.app.raw("requests/confirm", approval)
            confirm_result["first"] = (r.status_code, r.json().get("error"), time.time() - t_stop)
        ct = threading.Thread(target=confirm)
        ct.start()
        early = []

        def list_while_detecting():
            # before the probe has found the hang, an HTTP thread may be held by a call in
            # flight (at most until it is cut short); after, never
            while time.time() - t_stop < 2.5:
                t = time.time()
                rp.raw("credentials/list", {"userID": user_id})
                early.append(time.time() - t)
                time.sleep(0.05)
        lw = threading.Thread(target=list_while_detecting)
        lw.start()
        dt = await_ready(st, 503, "engine_unavailable", 2.0, "engine stopped")
        log("engine SIGSTOP: /readyz 503 after %.2f s" % dt)
        worst = 0.0
        for _ in range(10):
            t = time.time()
            rp.post("credentials/list", {"userID": user_id})
            worst = max(worst, time.time() - t)
            t = time.time()
            r = rp.raw("signatures/signHash", {"credentialID": cred, "SAD": "AAAA",
                       "hashes": [b64e(digest)], "hashAlgorithmOID": SHA256_OID,
                       "signAlgo": ECDSA_SHA256})
            assert r.status_code == 503 and r.json()["error"] == "engine_unavailable", r.text
            assert time.time() - t < 1.0, "signHash took %.2f s on a known-hung engine" % (time.time() - t)
            time.sleep(0.2)
        assert worst < 1.0, "credentials/list took %.2f s while the engine hung" % worst
        lw.join(10)
        assert early and max(early) < 2.5, "credentials/list took %.2f s" % max(early or [0])
        log("engine SIGSTOP: credentials/list at most %.3f s once detected, %.3f s before; "
            "signHash 503 at once" % (worst, max(early)))
        ct.join(10)
        # cut short (503), or done before the stop took hold (200)
        assert confirm_result.get("first", (0,))[0] in (200, 503), confirm_result
        assert confirm_result["first"][2] < 3.0, "the confirm waited %.1f s" % confirm_result["first"][2]
        st.engine.send_signal(signal.SIGCONT)
        dt = await_ready(st, 200, None, 2.0, "engine continued")
        log("engine SIGCONT: /readyz 200 after %.2f s" % dt)
        await_signing(load, 5, "engine continued")
        r = app.app.raw("requests/confirm", approval)
        if confirm_result["first"][0] == 200:
            assert r.status_code == 409, r.text  # already CONFIRMED
        else:
            assert r.status_code == 200 and r.json()["status"] == "CONFIRMED", r.text
            chk = rp.post("credentials/authorizeCheck", {"requestID": a["requestID"]})
            assert chk["status"] == "CONFIRMED", chk
            sign_once(rp, load, cred, chk["SAD"], digest)
            ran.append("retried confirm after a cut call")
        assert st.engine.pid == eng_pid and st.gateway.pid == gw_pid
        ran.append("engine SIGSTOP/SIGCONT")
        load.set_phase("after-engine-stop")
        time.sleep(1)

        # 3. PostgreSQL stop / start under load
        load.set_phase("pg-stop", {"503 database_unavailable", "approve 503 database_unavailable"})
        pg.stop()
        dt = await_ready(st, 503, "database_unavailable", 2.0, "PostgreSQL stopped")
        log("PostgreSQL stopped: /readyz 503 database_unavailable after %.2f s" % dt)
        time.sleep(2)
        pg.start()
        dt = await_ready(st, 200, None, 2.0, "PostgreSQL started")
        log("PostgreSQL started: /readyz 200 after %.2f s" % dt)
        await_signing(load, 5, "PostgreSQL started")
        with load.lock:
            db_codes = {k for k in load.seen.get("pg-stop", {}) if "503" in k}
        assert any("database_unavailable" in k for k in db_codes), load.seen.get("pg-stop")
        load.set_phase("after-pg")
        time.sleep(1)
        # a restart while quiet: the first requests after it succeed (stale connections)
        load.paused.clear()
        time.sleep(1)
        load.set_phase("pg-quiet-restart")
        pg.stop()
        pg.start()
        time.sleep(1)
        for i in range(6):
            r = rp.raw("credentials/list", {"userID": user_id})
            assert r.status_code == 200, "request %d after a quiet restart: %d %s" % (i, r.status_code, r.text)
        load.set_phase("after-pg-quiet")
        load.paused.set()
        assert st.engine.pid == eng_pid and st.gateway.pid == gw_pid
        ran.append("PostgreSQL stop/start, quiet restart")
        time.sleep(1)

        # 4. gateway kill -9, restart; and an approval whose answer is lost after the
        #    engine minted its SAD: the confirm's UPDATE waits on a row lock held here,
        #    the engine's audit line proves the SAD was minted, the gateway is killed.
        a2 = rp.post("credentials/authorize", {"credentialID": cred, "numSignatures": 1,
                     "hashes": [b64e(digest)], "hashAlgorithmOID": SHA256_OID,
                     "description": "lost answer"}, expect=202)
        info2 = app.app.post("requests/info", {"requestID": a2["requestID"]})
        approval2 = {"requestID": a2["requestID"], "deviceUUID": app.dev,
                     "authorizeSignature": b64e(app.kak.sign(b64d(info2["authData"])))}
        locker = subprocess.Popen(["psql", "-qAt", "-v", "ON_ERROR_STOP=1", st.db_url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        locker.stdin.write("BEGIN;\nSELECT id FROM auth_requests WHERE id = '%s' FOR UPDATE;\n"
                           % a2["requestID"])
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == a2["requestID"]
        lost_rid = "fault-lost-answer-%d" % os.getpid()

        def lost_confirm():
            try:
                app.app.raw("requests/confirm", approval2, headers={"X-Request-ID": lost_rid})
            except requests.RequestException:
                pass
        lt = threading.Thread(target=lost_confirm, daemon=True)
        lt.start()
        t = time.time()
        while not any(lost_rid in line and "authorize.approval" in line and '"ok"' in line
                      for fn in st.audit_files() for line in open(fn, errors="replace")):
            assert time.time() - t < 10, "the engine did not mint the SAD of the held confirm"
            time.sleep(0.05)
        # refused connections while it is down; right after its restart the engine probe
        # may not have answered yet
        load.set_phase("gateway-kill", {"signHash connection: *", "approve*", "login: *",
                                        "503 engine_unavailable"})
        st.gateway.kill()
        st.gateway.wait()
        locker.stdin.write("ROLLBACK;\n")
        locker.stdin.close()
        locker.wait(10)
        time.sleep(1)
        st.start_gateway_process()
        dt = await_ready(st, 200, None, 5.0, "gateway restarted")
        log("gateway restarted: /readyz 200 after %.2f s" % dt)
        await_signing(load, 5, "gateway restarted")
        assert st.engine.pid == eng_pid and st.engine.poll() is None
        gw_pid = st.gateway.pid
        ran.append("gateway kill -9")
        r = app.app.raw("requests/confirm", approval2)
        st2 = rp.post("credentials/authorizeCheck", {"requestID": a2["requestID"]})
        assert r.status_code == 200 and r.json()["status"] == "CONFIRMED", r.text
        assert st2["status"] == "CONFIRMED", st2
        sign_once(rp, load, cred, st2["SAD"], digest)
        ran.append("confirm retried after its answer was lost ends CONFIRMED")
        load.set_phase("after-gateway-kill")
        time.sleep(1)

        # 5. the audit log on a full disk
        A503 = {"503 audit_unavailable", "approve 503 audit_unavailable"}
        load.set_phase("audit-full", A503)
        filler = os.path.join(st.auditfs, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while os.write(fd, b"\0" * 65536) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        dt = await_ready(st, 503, "audit_unavailable", 2.0, "audit disk full")
        log("audit disk full: /readyz 503 audit_unavailable after %.2f s" % dt)
        time.sleep(1.5)
        os.unlink(filler)
        dt = await_ready(st, 200, None, 2.0, "audit disk space back")
        log("audit space back: /readyz 200 after %.2f s" % dt)
        await_signing(load, 5, "audit space back")
        assert st.engine.pid == eng_pid and st.gateway.pid == gw_pid
        ran.append("audit disk full")
        load.set_phase("after-audit-full")
        time.sleep(1)

        # 6. the audit log unwritable: a write(2) on the open file fails (as root nothing
        #    but the disk or a limit stops one): the engine's file size limit is set to the
        #    log's size (EFBIG), then lifted (whole lines)
        load.set_phase("audit-unwritable", A503)
        size = os.path.getsize(st.audit_file)
        subprocess.run(["prlimit", "--pid", str(st.engine.pid), "--fsize=%d:" % (size + 100)],
                       check=True)
        dt = await_ready(st, 503, "audit_unavailable", 2.0, "audit unwritable")
        log("audit unwritable: /readyz 503 audit_unavailable after %.2f s" % dt)
        time.sleep(1)
        subprocess.run(["prlimit", "--pid", str(st.engine.pid), "--fsize=unlimited:"],
                       check=True)
        dt = await_ready(st, 200, None, 2.0, "audit writable")
        log("audit writable again: /readyz 200 after %.2f s" % dt)
        await_signing(load, 5, "audit writable")
        assert st.engine.pid == eng_pid and st.gateway.pid == gw_pid
        ran.append("audit unwritable")
        load.set_phase("after-audit-unwritable")
        time.sleep(1)

        load.set_phase("end")
        load.finish()
        time.sleep(0.5)

        # ---- nothing lost, nothing double-spent ----
        res = subprocess.run(["psql", "-At", "-v", "ON_ERROR_STOP=1", st.db_url, "-c",
                              "SELECT coalesce(sum(num_signatures - remaining), 0) FROM auth_requests"
                              " WHERE status = 'CONFIRMED'"], capture_output=True, text=True, check=True)
        spent = int(res.stdout.strip())
        audited, by_sad = 0, {}
        files = st.audit_files()
        for fn in files:
            with open(fn, "rb") as f:
                for line in f:
                    o = parse_line(line)
                    if o is not None and o.get("event") == "signhash" and o.get("result") == "ok":
                        audited += o.get("signatures", 0)
                        by_sad[o.get("sad_id")] = by_sad.get(o.get("sad_id"), 0) + o.get("signatures", 0)
        log("returned %d, audited %d, spent %d, in doubt %d" % (load.returned, audited, spent, load.in_doubt))
        for ph, d in sorted(load.seen.items()):
            log("  %-24s %s" % (ph, ", ".join("%s: %d" % kv for kv in sorted(d.items()))))
        assert load.returned > 0
        assert load.returned <= audited <= spent <= load.returned + load.in_doubt, \
            "returned %d audited %d spent %d in doubt %d" % (load.returned, audited, spent, load.in_doubt)
        # counts kept spent without a signature: only calls cut mid-way, at most one
        # per client in each fault that cuts calls (engine kill, engine stop, gateway
        # kill); a refusal "audit log unavailable" spends nothing
        assert spent - audited <= 3 * CLIENTS + 2, \
            "%d counts spent without an audited signature" % (spent - audited)
        over = {s: n for s, n in by_sad.items() if n > K}
        assert not over, "SADs signed beyond their count: %s" % over
        assert not load.bad, "answers not allowed in their phase: %s" % load.bad[:20]

        # ---- a restarted engine signs no used-up SAD, and the log verifies ----
        st.engine.kill()
        st.engine.wait()
        st.start_engine_process()
        used = [(sid, v) for sid, v in load.sads.items() if by_sad.get(sid, 0) >= K]
        assert used, "no used-up SAD to replay"
        for sid, (sad, dg) in used[:20]:
            code = signhash_direct(st.socket, cred, sad, dg)
            assert code == "RESOURCE_EXHAUSTED", "used-up SAD %s straight to a restarted engine: %s" % (sid, code)
        ran.append("used-up SADs refused by a restarted engine (%d)" % min(len(used), 20))
        r = subprocess.run([st.engine_bin, "audit-verify"] + files, capture_output=True, text=True)
        assert r.returncode == 0, "audit-verify: %s %s" % (r.stdout, r.stderr)
        ran.append("audit-verify over the log")
        log("ran: %s" % "; ".join(ran))
        print("fault suite: ok", flush=True)
        return 0
    except BaseException:
        st.print_tails()
        raise
    finally:
        if load is not None:
            load.finish()
        try:
            if st.engine is not None and st.engine.poll() is None:
                st.engine.send_signal(signal.SIGCONT)
        except AttributeError:
            pass
        st.cleanup()
        if st.mounted:
            subprocess.run(["umount", "-l", st.auditfs])
        pg.stop()
        shutil.rmtree(pgbase, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
