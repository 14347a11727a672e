#!/usr/bin/python3
"""End to end: the real engine on a SoftHSM2 token, the real gateway on a fresh
PostgreSQL database, over real HTTP, with the reference SIC client `rssp-sic` as the
signer's app. Every signature is verified with the openssl command line against the
certificate from credentials/info, and that certificate against the CA chain. The
engine's audit log of the run must verify and hold no SAD.

usage: test_e2e.py [BUILD_DIR]   (default $RSSP_TEST_BUILD)
"""
import hashlib
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402
from stack import b64d, b64e  # noqa: E402

HASH_OID = {"sha256": "2.16.840.1.101.3.4.2.1", "sha384": "2.16.840.1.101.3.4.2.2",
            "sha512": "2.16.840.1.101.3.4.2.3"}
RSA_PKCS1 = {"sha256": "1.2.840.113549.1.1.11", "sha384": "1.2.840.113549.1.1.12",
             "sha512": "1.2.840.113549.1.1.13"}
RSA_PSS = "1.2.840.113549.1.1.10"
ECDSA = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3",
         "sha512": "1.2.840.10045.4.3.4"}

# Per credential key type: (sign algorithm OID, hash) pairs to exercise.
KEY_TYPES = {
    "rsa2048": [(RSA_PKCS1["sha256"], "sha256"), (RSA_PSS, "sha256"), (RSA_PKCS1["sha512"], "sha512")],
    "rsa3072": [(RSA_PKCS1["sha384"], "sha384"), (RSA_PSS, "sha512")],
    "ecp256": [(ECDSA["sha256"], "sha256"), (ECDSA["sha384"], "sha384")],
    "ecp384": [(ECDSA["sha384"], "sha384"), (ECDSA["sha512"], "sha512")],
}
KAK_TYPES = [("rsa-pss", "sha256"), ("ec-p256", "sha256")]


def pss_params(sha):
    """DER RSASSA-PSS-params (RFC 4055): hash, MGF1 with the same hash, salt = hash length."""
    last = {"sha256": 1, "sha384": 2, "sha512": 3}[sha]
    salt = {"sha256": 32, "sha384": 48, "sha512": 64}[sha]
    h = bytes.fromhex("300d0609608648016503040201" [:-2] + "%02x" % last + "0500")
    mgf = bytes.fromhex("301a06092a864886f70d010108") + h
    body = b"\xa0" + bytes([len(h)]) + h + b"\xa1" + bytes([len(mgf)]) + mgf + \
        b"\xa2\x03\x02\x01" + bytes([salt])
    return b"\x30" + bytes([len(body)]) + body


def der_to_pem(der, kind="CERTIFICATE"):
    import base64
    b = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, "\n".join(lines), kind)


def openssl(*args, input=None):
    return subprocess.run(["openssl", *args], input=input, capture_output=True)


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t0 = time.time()
        cls.st = stack.Stack(BUILD, name="e2e")
        try:
            cls.st.start()
        except BaseException:
            cls.st.cleanup()
            raise
        cls.sads = []
        cls.request_ids = []
        cls.signatures = 0
        cls.admin = cls.st.admin()
        c = cls.admin.post("admin/clients/create", {"name": "E2E Bank"}, expect=201)
        cls.rp_id, cls.rp_secret = c["clientID"], c["secretKey"]
        cls.files = os.path.join(cls.st.work, "files")
        os.makedirs(cls.files)

    @classmethod
    def tearDownClass(cls):
        cls.st.cleanup()
        print("e2e: %d signatures verified in %.1f s (work dir %s)"
              % (cls.signatures, time.time() - cls.t0, cls.st.work), file=sys.stderr)

    # -- helpers -------------------------------------------------------------------
    def rp(self):
        if not hasattr(type(self), "_rp"):
            type(self)._rp = self.st.client().login(self.rp_id, self.rp_secret, digest=True)
        return type(self)._rp

    def path(self, name):
        return os.path.join(self.files, name)

    def write(self, name, data):
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(self.path(name), mode) as f:
            f.write(data)
        return self.path(name)

    def enrol_signer(self, tag, kak_algo, sha):
        """register -> confirm -> activation code from the outbox -> rssp-sic activate."""
        rp, admin = self.rp(), self.admin
        email = "signer-%s-%d@e2e.test" % (tag, os.getpid())
        full_name = "Signer %s" % tag.upper()
        u = rp.post("users/register", {"email": email, "mobile": "+33600000%03d" % len(tag),
                                       "fullName": full_name}, expect=201)
        self.assertEqual(u["status"], "PENDING_CONFIRMATION")
        token = self.st.outbox(admin, email, "confirmation")["token"]
        passphrase = "correct horse battery %s" % tag
        conf = self.st.client().post("users/confirm", {"token": token, "passphrase": passphrase})
        self.assertEqual(conf["status"], "ACTIVE")
        rp.post("sic/activationCode", {"userID": u["userID"], "channel": "email"}, expect=202)
        code = self.st.outbox(admin, email, "sic_activation_code")["code"]
        self.assertRegex(code, r"^[0-9]{8}$")
        state = self.path("sic-" + tag)
        pw = self.write("pw-" + tag, passphrase + "\n")
        self.st.sic(state, "login", "--url", self.st.url, "--user", email, "--password-file", pw)
        self.st.sic(state, "keygen", "--algo", kak_algo, "--sha", sha)
        self.st.sic(state, "activate", "--code", code, "--name", "e2e " + tag)
        self.assertEqual(self.st.sic(state, "status")["status"], "ACTIVE")
        # No credential is activated before a registration authority vouched for the
        # device; rssp-ra shows the decoded voucher, then signs it.
        with open(os.path.join(state, "config.json")) as f:
            device = json.load(f)["deviceUUID"]
        shown = self.st.ra("show", device) if getattr(self.st, "ra_logged_in", False) else None
        self.st.vouch(state)
        if shown is not None:
            self.assertEqual((shown["userID"], shown["commonName"]), (u["userID"], full_name))
        type(self).user_of_state = getattr(type(self), "user_of_state", {})
        self.user_of_state[state] = u["userID"]
        return u["userID"], full_name, state

    def activate_credential(self, user_id, full_name, state, key_algo):
        c = self.rp().post("credentials/create", {"userID": user_id, "keyAlgo": key_algo,
                                                  "validityDays": 30,
                                                  "description": "e2e " + key_algo}, expect=201)
        cred = c["credentialID"]
        self.assertEqual(c["status"], "NEW")
        res = self.st.sic(state, "credential-activate", cred, "--yes")
        self.assertEqual(res["status"], "ACTIVE")
        listed = self.st.sic(state, "credentials")
        self.assertIn(cred, listed.get("credentialIDs") or
                      [x["credentialID"] for x in listed.get("credentials", [])])
        info = self.rp().post("credentials/info", {"credentialID": cred, "certificates": "chain",
                                                   "certInfo": True, "authInfo": True})
        self.assertEqual(info["key"]["status"], "enabled")
        certs = [b64d(x) for x in info["cert"]["certificates"]]
        self.assertGreaterEqual(len(certs), 2, "chain must hold the signer and the CA")
        leaf = self.write(cred + ".pem", der_to_pem(certs[0]))
        ca = self.write(cred + "-ca.pem", der_to_pem(certs[-1]))
        untrusted = self.write(cred + "-inter.pem", "".join(der_to_pem(c) for c in certs[1:-1]))
        args = ["verify", "-x509_strict", "-CAfile", ca]
        if len(certs) > 2:
            args += ["-untrusted", untrusted]
        r = openssl(*args, leaf)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The certificate names the signer and is for signing only.
        text = openssl("x509", "-in", leaf, "-noout", "-subject", "-ext", "keyUsage").stdout.decode()
        self.assertIn("CN = " + full_name, text)
        # ... exactly as vouched: the name and the user id, nothing from the gateway
        self.assertIn("serialNumber = " + user_id, text)
        self.assertIn("Digital Signature", text)
        self.assertIn("Non Repudiation", text)
        pub = self.path(cred + ".pub")
        r = openssl("x509", "-in", leaf, "-noout", "-pubkey", "-out", pub)
        self.assertEqual(r.returncode, 0, r.stderr)
        return cred, pub

    def approve(self, state, cred, digests, sha, num):
        """credentials/authorize -> rssp-sic requests/show/confirm -> authorizeCheck -> SAD."""
        rp = self.rp()
        a = rp.post("credentials/authorize", {
            "credentialID": cred, "numSignatures": num, "hashes": [b64e(d) for d in digests],
            "hashAlgorithmOID": HASH_OID[sha], "description": "e2e contract %s" % sha,
            "validityPeriod": 300}, expect=202)
        req = a["requestID"]
        self.assertEqual(a["status"], "PENDING")
        pending = self.st.sic(state, "requests")["requests"]
        self.assertIn(req, [r["requestID"] for r in pending])
        shown = self.st.sic(state, "show", req)
        self.assertTrue(shown["verified"])
        self.assertEqual(shown["hashes"], [b64e(d) for d in digests])
        self.assertEqual(shown["rpName"], "E2E Bank")
        self.assertEqual(shown["numSignatures"], num)
        self.assertEqual(self.st.sic(state, "confirm", req, "--yes")["status"], "CONFIRMED")
        chk = rp.post("credentials/authorizeCheck", {"requestID": req})
        self.assertEqual(chk["status"], "CONFIRMED")
        self.assertTrue(chk.get("SAD"))
        type(self).sads.append(chk["SAD"])
        return chk["SAD"]

    def sign_and_verify(self, cred, pub, sign_oid, sha, n=2):
        docs = [self.write("doc-%s-%d" % (cred, i), os.urandom(700 + i)) for i in range(n)]
        digests = []
        for d in docs:
            with open(d, "rb") as f:
                digests.append(hashlib.new(sha, f.read()).digest())
        sad = self.approve(self.state_of[cred], cred, digests, sha, n)
        body = {"credentialID": cred, "SAD": sad, "hashes": [b64e(d) for d in digests],
                "hashAlgorithmOID": HASH_OID[sha], "signAlgo": sign_oid}
        if sign_oid == RSA_PSS:
            body["signAlgoParams"] = b64e(pss_params(sha))
        rid = "e2e-signhash-%d" % len(self.request_ids)
        self.request_ids.append(rid)
        sigs = self.rp().post("signatures/signHash", body, headers={"X-Request-ID": rid})["signatures"]
        self.assertEqual(len(sigs), n)
        for doc, sig in zip(docs, sigs):
            sigf = self.write(os.path.basename(doc) + ".sig", b64d(sig))
            args = ["dgst", "-" + sha, "-verify", pub, "-signature", sigf]
            if sign_oid == RSA_PSS:
                args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1",
                         "-sigopt", "rsa_mgf1_md:" + sha]
            r = openssl(*args, doc)
            self.assertEqual(r.returncode, 0, "%s %s: %s" % (sign_oid, sha, r.stdout + r.stderr))
            type(self).signatures += 1
        return body

    # -- the tests, in order -------------------------------------------------------
    def test_1_rp_logs_in_with_basic_and_with_digest(self):
        basic = self.st.client().login(self.rp_id, self.rp_secret)
        digest = self.st.client().login(self.rp_id, self.rp_secret, digest=True)
        self.assertNotEqual(basic.token, digest.token)
        info = self.st.client().post("info", {})
        self.assertIn("digest", info["authTypes"])

    def run_kak(self, tag, kak_algo, sha):
        user_id, full_name, state = self.enrol_signer(tag, kak_algo, sha)
        type(self).state_of = getattr(type(self), "state_of", {})
        for key_algo, algos in KEY_TYPES.items():
            with self.subTest(kak=kak_algo, key=key_algo):
                cred, pub = self.activate_credential(user_id, full_name, state, key_algo)
                self.state_of[cred] = state
                for sign_oid, hsha in algos:
                    body = self.sign_and_verify(cred, pub, sign_oid, hsha)
                # The SAD is spent: one more signature is refused (4xx, never 500).
                r = self.rp().raw("signatures/signHash", dict(body, hashes=body["hashes"][:1]))
                self.assertTrue(400 <= r.status_code < 500, "%d %s" % (r.status_code, r.text))

    def test_2_signer_with_an_rsa_pss_kak_signs_with_every_key_type(self):
        self.run_kak("rsa", *KAK_TYPES[0])

    def test_3_signer_with_an_ec_p256_kak_signs_with_every_key_type(self):
        self.run_kak("ec", *KAK_TYPES[1])

    def test_3b_signer_with_an_rsa_pss_sha512_kak_signs(self):
        user_id, full_name, state = self.enrol_signer("rsa512", "rsa-pss", "sha512")
        cred, pub = self.activate_credential(user_id, full_name, state, "ecp256")
        self.state_of[cred] = state
        self.sign_and_verify(cred, pub, ECDSA["sha256"], "sha256")

    def test_3c_the_app_cancels_requests_and_activations_and_sees_only_its_own(self):
        states = list(dict.fromkeys(self.state_of.values()))
        creds = list(self.state_of)
        mine, other = states[0], states[-1]
        cred = creds[0]
        d = hashlib.sha256(b"to be cancelled").digest()
        a = self.rp().post("credentials/authorize", {
            "credentialID": cred, "numSignatures": 1, "hashes": [b64e(d)],
            "hashAlgorithmOID": HASH_OID["sha256"], "description": "cancel me"}, expect=202)
        # Another signer's app can neither see nor confirm it.
        for cmd in (["show"], ["confirm", "--yes"]):
            r = self.st.sic(other, cmd[0], a["requestID"], *cmd[1:], check=False)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertRegex(r.stderr, r"HTTP (403|404)")
        self.assertEqual(self.st.sic(mine, "cancel", a["requestID"])["status"], "CANCELLED")
        chk = self.rp().post("credentials/authorizeCheck", {"requestID": a["requestID"]})
        self.assertEqual(chk["status"], "CANCELLED")
        self.assertNotIn("SAD", chk)
        # A NEW credential whose activation the signer refuses.
        c = self.rp().post("credentials/create", {"userID": self.user_of_state[mine],
                                                  "keyAlgo": "ecp256"}, expect=201)
        res = self.st.sic(mine, "credential-cancel", c["credentialID"])
        self.assertEqual(res["status"], "CANCELLED")

    def test_3d_the_app_refuses_to_sign_when_a_lying_gateway_changes_what_it_displays(self):
        """A compromised gateway (here a proxy in front of the real one) edits requests/info:
        the display, or the authData bytes. rssp-sic must refuse and send no confirm."""
        import json
        import shutil
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import requests

        upstream = self.st.url
        mode = {}

        class Liar(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                h = {k: v for k, v in self.headers.items()
                     if k.lower() in ("authorization", "content-type")}
                r = requests.post(upstream + self.path, data=body, headers=h, timeout=30)
                out = r.content
                if self.path == "/rssp/requests/info" and r.status_code == 200:
                    info = r.json()
                    mode["edit"](info)
                    out = json.dumps(info).encode()
                self.send_response(r.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Liar)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            cred = next(iter(self.state_of))
            real = self.state_of[cred]
            fake = self.path("sic-behind-liar")
            shutil.copytree(real, fake)
            with open(os.path.join(fake, "config.json")) as f:
                cfg = json.load(f)
            cfg["url"] = "http://127.0.0.1:%d" % srv.server_address[1]
            with open(os.path.join(fake, "config.json"), "w") as f:
                json.dump(cfg, f)
            d = hashlib.sha256(b"what the signer agreed to").digest()
            a = self.rp().post("credentials/authorize", {
                "credentialID": cred, "numSignatures": 1, "hashes": [b64e(d)],
                "hashAlgorithmOID": HASH_OID["sha256"], "description": "Rent, 900 EUR"},
                expect=202)

            def flip_hash_in_authdata(info):
                ad = bytearray(b64d(info["authData"]))
                ad[ad.index(d)] ^= 1
                info["authData"] = b64e(bytes(ad))

            edits = {
                "description": lambda i: i.update(description="Rent, 90 EUR"),
                "rp name": lambda i: i.update(rpName="Trusted Bank"),
                "hashes": lambda i: i.update(hashes=[b64e(hashlib.sha256(b"x").digest())]),
                "numSignatures": lambda i: i.update(numSignatures=i["numSignatures"] + 1),
                "authData": flip_hash_in_authdata,
            }
            for what, edit in edits.items():
                mode["edit"] = edit
                for cmd in (["show"], ["confirm", "--yes"]):
                    with self.subTest(edit=what, cmd=cmd[0]):
                        r = self.st.sic(fake, cmd[0], a["requestID"], *cmd[1:], check=False)
                        self.assertEqual(r.returncode, 1, r.stdout)
                        self.assertIn("refusing", r.stderr)
            chk = self.rp().post("credentials/authorizeCheck", {"requestID": a["requestID"]})
            self.assertEqual(chk["status"], "PENDING", "a confirm got through")
            # Through the honest gateway the same request is fine.
            mode["edit"] = lambda i: None
            self.assertTrue(self.st.sic(fake, "show", a["requestID"])["verified"])
            self.st.sic(real, "cancel", a["requestID"])
        finally:
            srv.shutdown()
            srv.server_close()

    def test_4_a_hash_that_was_not_approved_is_refused(self):
        state = next(iter(self.state_of.values()))
        cred = next(iter(self.state_of))
        d = hashlib.sha256(b"approved").digest()
        sad = self.approve(state, cred, [d], "sha256", 1)
        # The credential's first algorithm is enough; only the refusal matters.
        r = self.rp().raw("signatures/signHash", {
            "credentialID": cred, "SAD": sad, "hashes": [b64e(hashlib.sha256(b"other").digest())],
            "hashAlgorithmOID": HASH_OID["sha256"], "signAlgo": RSA_PKCS1["sha256"]})
        self.assertTrue(400 <= r.status_code < 500, "%d %s" % (r.status_code, r.text))

    def test_5_the_readme_demo_runs_unattended_to_a_verified_signature(self):
        local = os.path.join(self.st.work, "local")
        os.makedirs(local)
        with open(os.path.join(local, "env"), "w") as f:
            f.write("RSSP_URL=%s\nRSSP_ENGINE_SOCKET=%s\nRSSP_ADMIN_USER=%s\n"
                    "RSSP_ADMIN_PASSWORD_FILE=%s\nRSSP_DB_URL='%s'\nSOFTHSM2_CONF=%s\n"
                    "RSSP_RA_KEY_FILE=%s\n"
                    % (self.st.url, self.st.socket, self.st.admin_email,
                       self.st.admin_password_file, self.st.db_url, self.st.softhsm_conf,
                       self.st.ra_key))
        r = subprocess.run([os.path.join(stack.HERE, "demo.sh")], capture_output=True, text=True,
                           env=dict(os.environ, RSSP_LOCAL_DIR=local, TMPDIR=local), timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        self.assertIn("Verified OK", r.stdout)
        self.assertIn("cert0.pem: OK", r.stdout)
        self.assertIn("voucher verified", r.stdout)
        self.assertIn("is VOUCHED", r.stdout)

    def test_6_engine_audit_log_verifies_and_holds_no_sad(self):
        codes = self.st.stop()
        self.assertEqual(codes["engine"], 0, "engine exit: " + self.st.tail("engine.stderr"))
        self.assertEqual(codes["gateway"], 0, "gateway exit: " + self.st.tail("gateway.stderr"))
        r = subprocess.run([self.st.engine_bin, "audit-verify", self.st.audit_file],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.st.audit_file) as f:
            audit = f.read()
        self.assertGreater(audit.count("\n"), self.signatures // 2)
        self.assertTrue(self.sads)
        for sad in self.sads:
            raw = b64d(sad)
            for form in (sad, raw.hex(), b64e(raw).rstrip("="),
                         __import__("base64").urlsafe_b64encode(raw).decode().rstrip("=")):
                self.assertNotIn(form[:40], audit, "a SAD appears in the audit log")
        self.assertNotIn(self.st.pin, audit)
        # Every activation names the RA key whose voucher it used.
        der = subprocess.run(["openssl", "pkey", "-pubin", "-in", self.st.ra_pub, "-outform", "DER"],
                             capture_output=True, check=True).stdout
        ra_id = hashlib.sha256(der).hexdigest()
        acts = [json.loads(line) for line in audit.splitlines() if '"authorize.activation"' in line]
        self.assertTrue([a for a in acts if a["result"] == "ok"])
        for a in acts:
            if a["result"] == "ok":
                self.assertEqual(a["ra_key_id"], ra_id)
        # The RP's X-Request-ID reaches the engine's audit record of the signature.
        for rid in self.request_ids:
            self.assertIn('"%s"' % rid, audit)


if __name__ == "__main__":
    BUILD = stack.build_dir_from_argv()
    unittest.main(verbosity=2, failfast=True, warnings="ignore")
