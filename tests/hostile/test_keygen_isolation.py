#!/usr/bin/python3
"""Issue 10 item 8 at gateway level: one RP's key generations never starve another tenant's
signing.

A real stack (engine on SoftHSM2 with 2 signing workers, 1 key-generation worker and room
for 1 waiting generation; real gateway and PostgreSQL). RP A's signer activates 5 RSA-3072
credentials at once (their activate/response calls released together) while RP B, another
tenant, signs one hash after the other with an existing EC credential. It asserts:

  * every signHash (and every approval) of RP B answers 200 during the whole burst, none
    503, and every signature verifies against B's certificate;
  * RP B's spent counts equal the signatures it received (nothing spent for nothing);
  * the engine turned some activations away as busy (503 engine_unavailable, the burst is
    larger than 1 running + 1 waiting), and each of those spent nothing: the credential
    is still NEW without a key, and activating it again afterwards makes it ACTIVE.

Bounded: 5 activations, signing stops with the burst (at most 60 s). usage:
test_keygen_isolation.py [BUILD_DIR]
"""
import hashlib
import os
import subprocess
import sys
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import stack  # noqa: E402
from stack import b64d, b64e  # noqa: E402

SHA256_OID = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
N_ACT = 5          # RP A's simultaneous RSA-3072 activations
K = 50             # signatures per SAD of RP B
T0 = time.time()


def log(msg):
    print("[%6.1f] %s" % (time.time() - T0, msg), flush=True)


def sql(st, q, *params):
    """One value from the test database (psql with -v parameters as literals)."""
    args = ["psql", "-qAt", "-v", "ON_ERROR_STOP=1", st.db_url]
    for i, p in enumerate(params):
        args += ["-v", "p%d=%s" % (i, p)]
    r = subprocess.run(args, input=q + "\n", capture_output=True, text=True, check=True)
    return r.stdout.strip()


class Activator:
    """The app's credential-activate (rssp-sic's own checks) in process, split in its two
    calls so that the key generations of several credentials can be released together."""

    def __init__(self, st, state):
        self.fs = stack.FastSigner(st, state)
        self.sic = self.fs.sic
        self.kak = self.fs.kak

    def request(self, cred):
        s = self.fs
        req = s.app.post("credentials/activate/request", {"credentialID": cred, "deviceUUID": s.dev})
        ad = b64d(req["authData"])
        purpose, f = self.sic.decode_authdata(ad)
        assert purpose == self.sic.PURPOSE_ACTIVATION
        self.sic.check_activation(req, f, credential_id=cred, device_uuid=s.dev, kak_spki=self.kak.spki,
                                  kak_algo=self.kak.algo, owner_id=s.state.cfg.get("userID"))
        assert not req.get("otpEncrypted"), "an EC KAK gets no OTP"
        return {"credentialID": cred, "deviceUUID": s.dev, "signAlgo": self.kak.sign_algo,
                "shaAlgo": self.kak.sha_algo, "authorizeSignature": b64e(self.kak.sign(ad))}

    def respond(self, body):
        # a fresh session per thread (requests sessions are not thread-safe)
        c = stack.Client(self.fs.app.url, self.fs.state.cfg["accessToken"])
        return c.raw("credentials/activate/response", body)


def verify_ecdsa(pub, sig, digest):
    if len(sig) == 64 and sig[0] != 0x30:   # r||s: to DER
        sig = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub.verify(sig, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def main():
    build = stack.build_dir_from_argv()
    # the engine's key generation: 1 worker, 1 waiting (engine_env copies os.environ)
    os.environ["RSSP_ENGINE_KEYGEN_WORKERS"] = "1"
    os.environ["RSSP_ENGINE_KEYGEN_QUEUE"] = "1"
    st = stack.Stack(build, name="keygeniso", workers=2,
                     gateway_env={"RSSP_ENGINE_TIMEOUT_MS": "5000"})
    try:
        st.start()
        admin = st.admin()
        ca = admin.post("admin/clients/create", {"name": "Keygen RP A"}, expect=201)
        cb = admin.post("admin/clients/create", {"name": "Signing RP B"}, expect=201)
        rp_a = st.client().login(ca["clientID"], ca["secretKey"])
        rp_b = st.client().login(cb["clientID"], cb["secretKey"])
        uid_a, _, state_a = stack.enrol_signer(st, rp_a, admin, "kga", "ec-p256")
        uid_b, _, state_b = stack.enrol_signer(st, rp_b, admin, "kgb", "ec-p256")

        # RP B: an existing EC credential, its certificate's key
        cred_b = rp_b.post("credentials/create", {"userID": uid_b, "keyAlgo": "ecp256"}, expect=201)["credentialID"]
        st.sic(state_b, "credential-activate", cred_b, "--yes")
        info = rp_b.post("credentials/info", {"credentialID": cred_b, "certificates": "single"})
        pub_b = x509.load_der_x509_certificate(b64d(info["cert"]["certificates"][0])).public_key()
        signer_b = stack.FastSigner(st, state_b)

        # RP A: 5 RSA-3072 credentials, each activation requested and signed by the app
        creds_a = [rp_a.post("credentials/create", {"userID": uid_a, "keyAlgo": "rsa3072"},
                             expect=201)["credentialID"] for _ in range(N_ACT)]
        act = Activator(st, state_a)
        bodies = [act.request(c) for c in creds_a]
        log("stack up; %d activations requested" % N_ACT)

        # RP B signs, one hash at a time, until the burst is over
        done = threading.Event()
        b_res = {"ok": 0, "bad": [], "lat": [], "at": [], "sads": 0}

        def sign_b():
            try:
                sign_b_loop()
            except Exception as e:  # noqa: BLE001 - reported below
                b_res["bad"].append("RP B's client: %r" % e)

        def sign_b_loop():
            i = 0
            deadline = time.time() + 60
            while not done.is_set() and time.time() < deadline:
                digest = hashlib.sha256(b"keygen-iso-%d-%d" % (os.getpid(), i)).digest()
                i += 1
                try:
                    sad = signer_b.approve(rp_b, cred_b, [digest], SHA256_OID, K, "during keygen")
                except stack.HttpError as e:
                    b_res["bad"].append("approve %s" % e)
                    return
                b_res["sads"] += 1
                for _ in range(K):
                    if done.is_set():
                        break
                    t = time.time()
                    r = rp_b.raw("signatures/signHash", {"credentialID": cred_b, "SAD": sad,
                                 "hashes": [b64e(digest)], "hashAlgorithmOID": SHA256_OID,
                                 "signAlgo": ECDSA_SHA256})
                    b_res["lat"].append(time.time() - t)
                    b_res["at"].append(time.time())
                    if r.status_code != 200:
                        b_res["bad"].append("signHash %d %s" % (r.status_code, r.text[:120]))
                        continue
                    sigs = r.json()["signatures"]
                    b_res["ok"] += 1          # a signature received (and its count spent)
                    try:
                        assert len(sigs) == 1, sigs
                        verify_ecdsa(pub_b, b64d(sigs[0]), digest)
                    except Exception as e:  # noqa: BLE001 - reported below
                        b_res["bad"].append("signature does not verify: %r" % e)

        sb = threading.Thread(target=sign_b)
        sb.start()
        time.sleep(0.5)

        # RP A's burst: the activate/response calls released together
        results = [None] * N_ACT
        go = threading.Barrier(N_ACT)

        def activate(i):
            go.wait()
            t = time.time()
            r = act.respond(bodies[i])
            results[i] = (r.status_code, (r.json() or {}).get("error") if r.content else None,
                          time.time() - t)
        ths = [threading.Thread(target=activate, args=(i,)) for i in range(N_ACT)]
        t_burst = time.time()
        for t in ths:
            t.start()
        for t in ths:
            t.join(80)
        t_end = time.time()
        burst = t_end - t_burst
        time.sleep(0.5)
        done.set()
        sb.join(30)
        assert not sb.is_alive(), "RP B's signing did not stop"

        lat = sorted(b_res["lat"])
        log("activations: %s in %.1f s" % (["%d %s %.1fs" % r for r in results], burst))
        log("RP B: %d signatures (%d SADs; %d while the keys were generated), %d failed, "
            "p50 %.0f ms, max %.0f ms"
            % (b_res["ok"], b_res["sads"], sum(1 for a in b_res["at"] if t_burst <= a <= t_end),
               len(b_res["bad"]), 1e3 * lat[len(lat) // 2] if lat else 0, 1e3 * lat[-1] if lat else 0))
        # every call of the other tenant succeeded, and signatures were made during the burst
        assert not b_res["bad"], "RP B failed during the key generations: %s" % b_res["bad"][:10]
        during = sum(1 for a in b_res["at"] if t_burst <= a <= t_end)
        assert during >= 5, "RP B signed only %d times while the keys were generated" % during
        # never near the engine deadline (5 s) whose expiry answered 503 before the fix
        assert lat[-1] < 3.0, "a signHash of RP B took %.2f s during the key generations" % lat[-1]
        spent = int(sql(st, "SELECT coalesce(sum(num_signatures - remaining), 0) FROM auth_requests"
                            " WHERE requester_id = :'p0'::uuid", cb["userID"]))
        assert spent == b_res["ok"], "RP B: %d counts spent, %d signatures received" % (spent, b_res["ok"])

        # RP A: each activation either made the credential ACTIVE or was turned away as busy
        refused = [creds_a[i] for i, r in enumerate(results) if r[0] == 503]
        for i, r in enumerate(results):
            assert r[0] == 200 or (r[0] == 503 and r[1] == "engine_unavailable"), \
                "activation %d answered %s" % (i, r)
        assert refused, "no activation was turned away (1 key generation running, 1 waiting, %d sent)" % N_ACT
        assert len(refused) < N_ACT, "every activation was turned away"
        for c in creds_a:
            status = sql(st, "SELECT status || ' ' || (key_label IS NULL AND public_key IS NULL"
                             " AND certificate IS NULL)::text FROM credentials WHERE id = :'p0'::uuid", c)
            assert status == ("NEW true" if c in refused else "ACTIVE false"), (c, status)
        # ... and those spent nothing: activated again, one after the other, they work
        for c in refused:
            r = act.respond(act.request(c))
            assert r.status_code == 200 and r.json()["status"] == "ACTIVE", r.text
            info = rp_a.post("credentials/info", {"credentialID": c})
            assert info["key"]["status"] == "enabled", info
        log("refused activations %d of %d: each still NEW without a key, then activated"
            % (len(refused), N_ACT))
        print("keygen isolation: ok", flush=True)
        return 0
    except BaseException:
        st.print_tails()
        raise
    finally:
        st.cleanup()


if __name__ == "__main__":
    sys.exit(main())
