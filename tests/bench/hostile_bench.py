#!/usr/bin/python3
"""Hostile-load benchmark (issue 10; run by tests/bench/hostile_bench.sh, not a ctest).

One stack (SoftHSM2, engine, gateway at the default argon2id cost, PostgreSQL). An RP
signs one hash per signatures/signHash call in a loop from one connection; its latency
(p50/p99) is measured idle and under each flood, each from another tenant or another
address, each bounded in count and time:
  logins     200 clients on 100 loopback addresses logging in again and again (unknown
             names: argon2id against the dummy hash), pausing 1 s after a 429/503
  longpolls  70 credentials/authorizeCheck calls with "wait" by another RP
  keygen     RSA-3072 credential activations of another RP's signer (--keygen, default 6)
  conns      1,000 idle connections from one address (127.0.0.2)
and another tenant's login latency idle and under the long-poll flood. Only measured
numbers are printed; the machine may be shared, so compare lines of the same run.
"""
import argparse
import hashlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import stack  # noqa: E402

SHA256_OID = "2.16.840.1.101.3.4.2.1"
EC_SHA256 = "1.2.840.10045.4.3.2"


def pct(v, p):
    v = sorted(v)
    return v[int((len(v) - 1) * p)] * 1000 if v else float("nan")


def post(port, path, body, token=None, src=None, headers=None, timeout=90):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                   source_address=(src, 0) if src else None)
    h = {"Content-Type": "application/json", "Connection": "close"}
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    try:
        c.request("POST", "/rssp/" + path, json.dumps(body), h)
        r = c.getresponse()
        data = r.read()
        return r.status, data
    except OSError:
        return -1, b""
    finally:
        c.close()


class SignLoop:
    """signHash calls one after another on one keep-alive session for `seconds`."""

    def __init__(self, st, rp, cred, signer):
        self.st, self.rp, self.cred, self.signer = st, rp, cred, signer
        self.digest = hashlib.sha256(b"hostile-bench").digest()
        self.sads = []

    def refill(self, n):
        self.sads += [self.signer.approve(self.rp, self.cred, [self.digest], SHA256_OID, 1000)
                      for _ in range(n)]

    def ready_for(self, seconds):
        # up to ~1,500 calls a second: enough SADs of 1,000 signatures before a phase starts
        need = int(seconds * 1.5) + 2
        if len(self.sads) < need:
            self.refill(need - len(self.sads))

    def run(self, seconds):
        self.ready_for(seconds)
        lat, bad, used = [], 0, 0
        sad = self.sads.pop()
        end = time.time() + seconds
        body = {"credentialID": self.cred, "hashes": [stack.b64e(self.digest)],
                "hashAlgorithmOID": SHA256_OID, "signAlgo": EC_SHA256}
        while time.time() < end:
            if used == 1000:
                if not self.sads:
                    break
                sad, used = self.sads.pop(), 0
            body["SAD"] = sad
            t0 = time.time()
            r = self.rp.raw("signatures/signHash", body)
            lat.append(time.time() - t0)
            used += 1
            if r.status_code != 200:
                bad += 1
        return lat, bad


def line(name, lat, bad):
    print("signHash %-10s p50 %7.2f ms  p99 %7.2f ms  (%d calls, %d failed)"
          % (name, pct(lat, 0.5), pct(lat, 0.99), len(lat), bad))
    sys.stdout.flush()


def during(flood, measure, loop=None, seconds=0):
    """Starts flood() in a thread, waits until it is under way, runs measure()."""
    if loop is not None:
        loop.ready_for(seconds)
    ready = threading.Event()
    t = threading.Thread(target=flood, args=(ready,), daemon=True)
    t.start()
    ready.wait(30)
    out = measure()
    return out, t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("RSSP_TEST_BUILD") or
                    os.path.join(stack.ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--keygen", type=int, default=6)
    args = ap.parse_args()
    genv = {"RSSP_ARGON2_OPSLIMIT": "2", "RSSP_ARGON2_MEMLIMIT_KIB": "19456"}
    st = stack.Stack(args.build, name="hostile", workers=4, gateway_env=genv)
    try:
        st.start()
        port = st.port
        admin = st.admin()
        c1 = admin.post("admin/clients/create", {"name": "RP one"}, expect=201)
        c2 = admin.post("admin/clients/create", {"name": "RP two"}, expect=201)
        rp = st.client().login(c1["clientID"], c1["secretKey"])
        rp2 = st.client().login(c2["clientID"], c2["secretKey"])
        uid, _, state = stack.enrol_signer(st, rp, admin, "one", "ec-p256")
        cr = rp.post("credentials/create", {"userID": uid, "keyAlgo": "ecp256"}, expect=201)
        st.sic(state, "credential-activate", cr["credentialID"], "--yes")
        cred = cr["credentialID"]
        uid2, _, state2 = stack.enrol_signer(st, rp2, admin, "two", "ec-p256")
        signer = stack.FastSigner(st, state)
        loop = SignLoop(st, rp, cred, signer)
        print("hostile_bench: %d cores, engine workers 4 (+1 for key generation), %.0f s per "
              "phase, argon2id t=2 m=19 MiB" % (os.cpu_count(), args.seconds))

        # idle
        lat, bad = loop.run(args.seconds)
        line("idle", lat, bad)
        login_idle = []
        for _ in range(5):
            t0 = time.time()
            post(port, "auth/login", {"grant_type": "password", "username": st.admin_email,
                                               "password": st.admin_password})
            login_idle.append(time.time() - t0)

        # 1. login flood: 200 wrong logins from 100 addresses
        res = {}

        def logins(ready):
            # 200 clients on 100 addresses, each logging in again as soon as answered,
            # for the whole phase
            stop = time.time() + args.seconds + 1
            codes = []

            def client(i):
                # each client tries again as soon as answered, or after the Retry-After of a
                # 429/503 (one second at least): argon2id runs all the time, while the load
                # generator (on the same two cores) does not turn into a plain request flood
                out = []
                while time.time() < stop:
                    code = post(port, "auth/login",
                                {"grant_type": "password", "username": "nobody-%d@example.org" % i,
                                 "password": "wrong guess %d" % i},
                                None, "127.0.%d.%d" % (1 + i // 200, 3 + i % 100))[0]
                    out.append(code)
                    if code in (429, 503):
                        time.sleep(1.0)
                return out
            with ThreadPoolExecutor(200) as ex:
                fut = [ex.submit(client, i) for i in range(200)]
                ready.set()
                for f in fut:
                    codes += f.result()
            res["logins"] = {c: codes.count(c) for c in set(codes)}
        (lat, bad), t = during(logins, lambda: loop.run(args.seconds), loop, args.seconds)
        t.join(120)
        line("logins", lat, bad)
        print("  logins of 200 clients on 100 addresses, answered: %s" % res.get("logins"))

        # 2. long-poll flood: 70 authorizeCheck with wait by rp2, on a request of its own
        uid2cr = rp2.post("credentials/create", {"userID": uid2, "keyAlgo": "ecp256"}, expect=201)
        st.sic(state2, "credential-activate", uid2cr["credentialID"], "--yes")
        pend = rp2.post("credentials/authorize", {
            "credentialID": uid2cr["credentialID"], "numSignatures": 1,
            "hashes": [stack.b64e(hashlib.sha256(b"x").digest())], "hashAlgorithmOID": SHA256_OID,
            "description": "pending"}, expect=202)["requestID"]

        def longpolls(ready):
            wait = int(args.seconds) + 2
            with ThreadPoolExecutor(70) as ex:
                fut = [ex.submit(post, port, "credentials/authorizeCheck",
                                 {"requestID": pend, "wait": wait}, rp2.token) for _ in range(70)]
                time.sleep(0.5)
                ready.set()
                codes = [f.result()[0] for f in fut]
            res["longpolls"] = {c: codes.count(c) for c in set(codes)}

        def measure_lp():
            out = loop.run(args.seconds / 2)
            ll = []
            for _ in range(5):
                t0 = time.time()
                post(port, "auth/login", {"grant_type": "password", "username": st.admin_email,
                                          "password": st.admin_password})
                ll.append(time.time() - t0)
            return out, ll
        ((lat, bad), login_lp), t = during(longpolls, measure_lp, loop, args.seconds)
        t.join(120)
        line("longpolls", lat, bad)
        print("  70 long-polls answered: %s" % res.get("longpolls"))
        print("login of another tenant: idle p50 %.1f ms max %.1f ms; during the long-poll flood "
              "p50 %.1f ms max %.1f ms" % (pct(login_idle, 0.5), max(login_idle) * 1000,
                                          pct(login_lp, 0.5), max(login_lp) * 1000))

        # 3. key generation flood: RSA-3072 activations by rp2's signer
        creds2 = [rp2.post("credentials/create", {"userID": uid2, "keyAlgo": "rsa3072"},
                           expect=201)["credentialID"] for _ in range(args.keygen)]

        def keygens(ready):
            procs = [subprocess.Popen(["/usr/bin/python3", stack.SIC, "--state", state2, "--json",
                                       "credential-activate", c, "--yes"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for c in creds2]
            # past the rssp-sic processes' start-up (Python on the same cores): the phase
            # measures the engine generating keys, not the load generator starting
            time.sleep(3.0)
            ready.set()
            codes = [p.wait(timeout=110) for p in procs]
            res["keygen"] = "%d of %d activated" % (codes.count(0), len(codes))
        (lat, bad), t = during(keygens, lambda: loop.run(args.seconds), loop, args.seconds)
        t.join(120)
        line("keygen", lat, bad)
        print("  %d RSA-3072 activations: %s" % (args.keygen, res.get("keygen")))

        # 4. 1,000 idle connections from one address
        def conns(ready):
            socks, refused = [], 0
            for _ in range(1000):
                s = socket.socket()
                try:
                    s.bind(("127.0.0.2", 0))
                    s.connect(("127.0.0.1", port))
                    socks.append(s)
                except OSError:
                    refused += 1
                    s.close()
            time.sleep(0.5)
            open_ = 0
            for s in socks:
                s.setblocking(False)
                try:
                    if s.recv(1) != b"":
                        open_ += 1
                except BlockingIOError:
                    open_ += 1
                except OSError:
                    pass
            res["conns"] = "%d kept open by the gateway, %d closed or refused" % (open_, 1000 - open_)
            ready.set()
            time.sleep(args.seconds + 1)
            for s in socks:
                s.close()
        (lat, bad), t = during(conns, lambda: loop.run(args.seconds), loop, args.seconds)
        t.join(60)
        line("conns", lat, bad)
        print("  1000 idle connections from 127.0.0.2: %s" % res.get("conns"))
    finally:
        st.stop()
        st.cleanup()


if __name__ == "__main__":
    main()
