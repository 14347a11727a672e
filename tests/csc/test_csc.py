"""CSC clients against the real stack (engine + SoftHSM2, gateway + PostgreSQL, rssp-sic as
the signer's app): a CSC API v1.0.4.0 client (pyHanko's dialect) under /csc/v1 and a strict
v2.0.0.2 client under /csc/v2, field by field (required fields, types, formats; unknown
fields tolerated), every signature verified with the openssl CLI.

Run: test_csc.py BUILD_DIR (tests/run sets RSSP_TEST_* for the stack)."""
import base64
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import stack  # noqa: E402
from stack import b64d, b64e  # noqa: E402

SHA = {"sha256": "2.16.840.1.101.3.4.2.1", "sha384": "2.16.840.1.101.3.4.2.2",
       "sha512": "2.16.840.1.101.3.4.2.3"}
RSA_ENC = "1.2.840.113549.1.1.1"
RSA_SHA256 = "1.2.840.113549.1.1.11"
RSA_PSS = "1.2.840.113549.1.1.10"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_RE = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
GENTIME_RE = re.compile(r"^[0-9]{14}Z$")
V1_WAIT = 10  # RSSP_CSC_V1_AUTHORIZE_WAIT of this stack
V1_WAITS = 3  # RSSP_WAITS_PER_CLIENT of this stack: synchronous authorizes of one RP at once


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def pss_params(sha, salt):
    """RSASSA-PSS-params (RFC 4055): hash, MGF1 with the same hash, the salt length."""
    last = {"sha256": 1, "sha384": 2, "sha512": 3}[sha]
    h = der(0x30, der(0x06, bytes.fromhex("6086480165030402%02x" % last)) + b"\x05\x00")
    mgf = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010108")) + h)
    s = salt.to_bytes(max(1, (salt.bit_length() + 8) // 8), "big")
    return der(0x30, der(0xa0, h) + der(0xa1, mgf) + der(0xa2, der(0x02, s)))


def pem(d):
    b = base64.encodebytes(d).decode().replace("\n", "")
    return "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % "\n".join(
        b[i:i + 64] for i in range(0, len(b), 64))


class CscClient:
    """POST /csc/<ver>/<method> with a bearer, as a CSC client library does."""

    def __init__(self, url, ver, token=None):
        self.url, self.ver, self.token = url, ver, token
        self.s = stack.requests.Session()

    def raw(self, method, body=None, token=None, auth=None):
        h = {}
        tok = token if token is not None else self.token
        if tok:
            h["Authorization"] = "Bearer " + tok
        for _ in range(10):
            r = self.s.post("%s/csc/%s/%s" % (self.url, self.ver, method),
                            json={} if body is None else body, headers=h, auth=auth, timeout=120)
            if r.status_code != 429:
                return r
            time.sleep(float(r.headers.get("Retry-After", "1")))
        return r

    def call(self, method, body=None, expect=200, **kw):
        r = self.raw(method, body, **kw)
        assert r.status_code == expect, "%s -> %d %s" % (method, r.status_code, r.text[:400])
        return r.json() if r.content else {}


class Csc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t0 = time.time()
        cls.st = stack.Stack(BUILD, name="csc",
                             gateway_env={"RSSP_CSC_V1_AUTHORIZE_WAIT": str(V1_WAIT),
                                          "RSSP_WAITS_PER_CLIENT": str(V1_WAITS)})
        try:
            cls.st.start()
            cls.setup_world()
        except BaseException:
            cls.st.cleanup()
            raise

    @classmethod
    def setup_world(cls):
        st = cls.st
        cls.admin = st.admin()
        c = cls.admin.post("admin/clients/create", {"name": "CSC Test Bank"}, expect=201)
        cls.rp_id, cls.rp_secret = c["clientID"], c["secretKey"]
        rp = st.client().login(cls.rp_id, cls.rp_secret)
        cls.rp = rp
        cls.user, cls.full_name, cls.state = stack.enrol_signer(st, rp, cls.admin, "csc")
        cls.creds, cls.pub = {}, {}
        for algo in ("rsa2048", "ecp256"):
            cred = rp.post("credentials/create", {"userID": cls.user, "keyAlgo": algo,
                                                  "validityDays": 30, "description": "csc " + algo},
                           expect=201)["credentialID"]
            st.sic(cls.state, "credential-activate", cred, "--yes")
            cls.creds[algo] = cred
        cls.files = os.path.join(st.work, "files")
        os.makedirs(cls.files)
        cls.signatures = 0

    @classmethod
    def tearDownClass(cls):
        cls.st.cleanup()
        print("csc: %d signatures verified with openssl in %.1f s"
              % (cls.signatures, time.time() - cls.t0), file=sys.stderr)

    # -- helpers -------------------------------------------------------------------
    def login(self, ver):
        """auth/login with HTTP Basic, as CSC clients do."""
        c = CscClient(self.st.url, ver)
        tok = c.call("auth/login", {"rememberMe": False}, auth=(self.rp_id, self.rp_secret))
        self.assertIsInstance(tok["access_token"], str)
        self.assertIsInstance(tok["expires_in"], int)
        c.token = tok["access_token"]
        return c

    def write(self, name, data):
        p = os.path.join(self.files, name)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return p

    def pubkey(self, cred, cert_der):
        if cred not in self.pub:
            leaf = self.write(cred + ".pem", pem(cert_der))
            p = os.path.join(self.files, cred + ".pub")
            r = subprocess.run(["openssl", "x509", "-in", leaf, "-noout", "-pubkey", "-out", p],
                               capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.pub[cred] = p
        return self.pub[cred]

    def docs(self, tag, n, sha="sha256"):
        docs = [self.write("doc-%s-%d" % (tag, i), os.urandom(500 + i)) for i in range(n)]
        digests = [hashlib.new(sha, open(d, "rb").read()).digest() for d in docs]
        return docs, digests

    def verify(self, pub, docs, sigs, sha="sha256", pss_salt=None):
        self.assertEqual(len(sigs), len(docs))
        for doc, sig in zip(docs, sigs):
            sigf = self.write(os.path.basename(doc) + ".sig", b64d(sig))
            args = ["openssl", "dgst", "-" + sha, "-verify", pub, "-signature", sigf]
            if pss_salt is not None:
                args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt",
                         "rsa_pss_saltlen:%d" % pss_salt, "-sigopt", "rsa_mgf1_md:" + sha]
            r = subprocess.run(args + [doc], capture_output=True)
            self.assertEqual(r.returncode, 0, (args, r.stdout, r.stderr))
            type(self).signatures += 1

    def pending_request(self, timeout=20):
        """The newest PENDING request on the signer's app (rssp-sic requests)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            reqs = self.st.sic(self.state, "requests")["requests"]
            if reqs:
                return reqs[0]["requestID"]
            time.sleep(0.2)
        self.fail("no pending request reached the app")

    def approve_on_app(self, req_id):
        shown = self.st.sic(self.state, "show", req_id)
        self.assertTrue(shown["verified"])
        self.assertEqual(shown["rpName"], "CSC Test Bank")
        self.assertEqual(self.st.sic(self.state, "confirm", req_id, "--yes")["status"], "CONFIRMED")
        return shown

    def check_key_cert(self, info, algo, ver):
        key = info["key"]
        self.assertIn(key["status"], ("enabled", "disabled"))
        self.assertEqual(key["status"], "enabled")
        self.assertIsInstance(key["algo"], list)
        self.assertTrue(key["algo"])
        for o in key["algo"]:
            self.assertRegex(o, OID_RE)
        self.assertIsInstance(key["len"], int)
        if algo == "ecp256":
            self.assertEqual(key["len"], 256)
            self.assertEqual(key["curve"], "1.2.840.10045.3.1.7")
            self.assertIn(ECDSA_SHA256, key["algo"])
        else:
            self.assertEqual(key["len"], 2048)
            self.assertNotIn("curve", key)
            self.assertIn(RSA_ENC, key["algo"])
            self.assertIn(RSA_PSS, key["algo"])
        cert = info["cert"]
        self.assertIn(cert["status"], ("valid", "expired", "revoked", "suspended"))
        self.assertEqual(cert["status"], "valid")
        self.assertIsInstance(cert["certificates"], list)
        self.assertGreaterEqual(len(cert["certificates"]), 2, "chain: signer then CA")
        for field in ("issuerDN", "serialNumber", "subjectDN"):
            self.assertIsInstance(cert[field], str)
            self.assertTrue(cert[field])
        self.assertRegex(cert["serialNumber"], r"^[0-9A-Fa-f]+$")
        self.assertIn(self.full_name, cert["subjectDN"])
        for field in ("validFrom", "validTo"):
            self.assertRegex(cert[field], GENTIME_RE)
        self.assertLess(cert["validFrom"], cert["validTo"])
        # the signer's certificate first; it matches subjectDN and validTo
        leaf = self.write("leaf-%s-%s.pem" % (ver, algo), pem(b64d(cert["certificates"][0])))
        out = subprocess.run(["openssl", "x509", "-in", leaf, "-noout", "-enddate", "-subject"],
                             capture_output=True, text=True).stdout
        self.assertIn("CN = " + self.full_name, out)
        self.assertEqual(info["SCAL"], "2")
        self.assertIsInstance(info["multisign"], int)
        self.assertGreaterEqual(info["multisign"], 1)
        self.assertIsInstance(info["lang"], str)
        self.assertIsInstance(info["description"], str)
        return b64d(cert["certificates"][0])

    # == CSC API v2.0.0.2 ============================================================
    def test_v2_01_info_has_every_required_field_with_its_type(self):
        info = CscClient(self.st.url, "v2").call("info", {"lang": "en-US"})
        self.assertEqual(info["specs"], "2.0.0.2")
        for f in ("name", "logo", "region", "lang", "description", "oauth2"):
            self.assertIsInstance(info[f], str, f)
        self.assertRegex(info["region"], r"^[A-Z]{2}$")
        self.assertRegex(info["logo"], r"^(https?|data):")
        self.assertRegex(info["oauth2"], r"^https?://")
        self.assertIsInstance(info["authType"], list)
        self.assertTrue(set(info["authType"]) <= {"external", "TLS", "basic", "digest",
                                                  "oauth2code", "oauth2client"})
        self.assertIn("basic", info["authType"])
        self.assertIsInstance(info["methods"], list)
        for m in ("auth/login", "credentials/list", "credentials/info", "credentials/authorize",
                  "credentials/authorizeCheck", "signatures/signHash"):
            self.assertIn(m, info["methods"])
        for m in ("signatures/signDoc", "credentials/extendTransaction", "credentials/sendOTP"):
            self.assertNotIn(m, info["methods"])
        sa = info["signAlgorithms"]
        self.assertIsInstance(sa, dict)
        self.assertIsInstance(sa["algos"], list)
        for o in sa["algos"]:
            self.assertRegex(o, OID_RE)
        for o in (RSA_ENC, RSA_SHA256, RSA_PSS, ECDSA_SHA256):
            self.assertIn(o, sa["algos"])
        if "algoParams" in sa:
            self.assertIsInstance(sa["algoParams"], list)
        sf = info["signature_formats"]
        self.assertIsInstance(sf["formats"], list)
        self.assertIsInstance(sf["envelope_properties"], list)
        self.assertIsInstance(info["conformance_levels"], list)
        self.assertIs(info.get("asynchronousOperationMode", False), False)

    def test_v2_01b_login_refresh_and_revoke_as_csc_clients_do(self):
        for ver in ("v1", "v2"):
            c = CscClient(self.st.url, ver)
            tok = c.call("auth/login", {"rememberMe": True}, auth=(self.rp_id, self.rp_secret))
            self.assertIsInstance(tok["refresh_token"], str)
            # CSC refreshes with a bare refresh_token member and no credentials
            new = c.call("auth/login", {"refresh_token": tok["refresh_token"], "rememberMe": True})
            self.assertIsInstance(new["access_token"], str)
            self.assertNotEqual(new["access_token"], tok["access_token"])
            c.token = new["access_token"]
            c.call("credentials/list", {})
            c.call("auth/revoke", {"token": new["access_token"], "token_type_hint": "access_token"},
                   expect=204)
            self.assertEqual(c.raw("credentials/list", {}).status_code, 401)

    def test_v2_02_unimplemented_methods_answer_501(self):
        c = CscClient(self.st.url, "v2")
        for m in ("signatures/signDoc", "credentials/extendTransaction", "credentials/sendOTP"):
            r = c.raw(m, {})
            self.assertEqual(r.status_code, 501, m)
            self.assertEqual(set(r.json()), {"error", "error_description"})

    def test_v2_03_credentials_list_with_infos(self):
        c = self.login("v2")
        lst = c.call("credentials/list", {"credentialInfo": True, "certificates": "chain",
                                          "certInfo": True, "authInfo": True, "onlyValid": True,
                                          "lang": "en-US", "clientData": "x"})
        self.assertIsInstance(lst["credentialIDs"], list)
        for cred in self.creds.values():
            self.assertIn(cred, lst["credentialIDs"])
        self.assertIs(lst["onlyValid"], True)
        infos = {i["credentialID"]: i for i in lst["credentialInfos"]}
        self.assertEqual(set(infos), set(lst["credentialIDs"]))
        for algo, cred in self.creds.items():
            self.check_key_cert(infos[cred], algo, "v2")
            self.assertEqual(infos[cred]["auth"]["mode"], "explicit")
        # without credentialInfo: only the ids
        self.assertNotIn("credentialInfos", c.call("credentials/list", {}))

    def test_v2_04_credentials_info_field_by_field(self):
        c = self.login("v2")
        for algo, cred in self.creds.items():
            info = c.call("credentials/info", {"credentialID": cred, "certificates": "chain",
                                               "certInfo": True, "authInfo": True, "x-unknown": 1})
            self.check_key_cert(info, algo, "v2")
            auth = info["auth"]
            self.assertIn(auth["mode"], ("explicit", "oauth2code"))
            self.assertIsInstance(auth["objects"], list)
            self.assertNotIn("authMode", info, "authMode is CSC v1")
            # "single": the signer's certificate alone
            one = c.call("credentials/info", {"credentialID": cred})
            self.assertEqual(len(one["cert"]["certificates"]), 1)
        r = c.raw("credentials/info", {})
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json(), {"error": "invalid_request", "error_description":
                                    "Missing (or invalid type) string parameter credentialID"})
        r = c.raw("credentials/info", {"credentialID": "00000000-0000-4000-8000-000000000000"})
        self.assertEqual((r.status_code, r.json()["error"]), (400, "invalid_request"))
        self.assertEqual(r.json()["error_description"], "Invalid parameter credentialID")

    def authorize_v2(self, c, cred, digests, sha="sha256", num=None):
        a = c.call("credentials/authorize", {
            "credentialID": cred, "numSignatures": num or len(digests),
            "hashes": [b64e(d) for d in digests], "hashAlgorithmOID": SHA[sha],
            "description": "CSC v2 contract", "clientData": "v2"}, expect=202)
        self.assertEqual(set(a), {"handle"})
        self.assertIsInstance(a["handle"], str)
        self.assertEqual(c.raw("credentials/authorizeCheck", {"handle": a["handle"]}).status_code, 202)
        req = self.pending_request()
        self.assertEqual(req, a["handle"])
        shown = self.approve_on_app(req)
        self.assertEqual(shown["hashes"], [b64e(d) for d in digests])
        chk = c.call("credentials/authorizeCheck", {"handle": a["handle"]})
        self.assertIsInstance(chk["SAD"], str)
        self.assertIsInstance(chk["expiresIn"], int)
        self.assertGreater(chk["expiresIn"], 0)
        return chk["SAD"]

    def cert_of(self, c, cred):
        info = c.call("credentials/info", {"credentialID": cred})
        return self.pubkey(cred, b64d(info["cert"]["certificates"][0]))

    def test_v2_05_async_authorize_then_rsaEncryption_with_hashAlgorithmOID(self):
        c = self.login("v2")
        cred = self.creds["rsa2048"]
        pub = self.cert_of(c, cred)
        docs, digests = self.docs("v2-rsaenc", 2)
        sad = self.authorize_v2(c, cred, digests)
        res = c.call("signatures/signHash", {
            "credentialID": cred, "SAD": sad, "hashes": [b64e(d) for d in digests],
            "hashAlgorithmOID": SHA["sha256"], "signAlgo": RSA_ENC, "operationMode": "S",
            "clientData": "v2"})
        self.verify(pub, docs, res["signatures"])

    def test_v2_06_rsassa_pss_with_salt_0_and_the_maximum_and_over_it(self):
        c = self.login("v2")
        cred = self.creds["rsa2048"]
        pub = self.cert_of(c, cred)
        docs, digests = self.docs("v2-pss", 2)
        sad = self.authorize_v2(c, cred, digests, num=4)
        body = {"credentialID": cred, "SAD": sad, "hashes": [b64e(d) for d in digests],
                "signAlgo": RSA_PSS}
        # 223 is one over the maximum of RSA-2048 with SHA-256 (256 - 32 - 2 = 222)
        r = c.raw("signatures/signHash", dict(body, signAlgoParams=b64e(pss_params("sha256", 223))))
        self.assertEqual(r.status_code, 400, r.text)
        self.assertIn("signAlgoParams", r.json()["error_description"])
        for salt in (222, 0):
            res = c.call("signatures/signHash", dict(body, signAlgoParams=b64e(
                pss_params("sha256", salt)), hashAlgorithmOID=SHA["sha256"]))
            self.verify(pub, docs, res["signatures"], pss_salt=salt)
        # the count (4) is spent: a fifth signature is refused
        r = c.raw("signatures/signHash", dict(body, signAlgoParams=b64e(pss_params("sha256", 32))))
        self.assertEqual(r.status_code, 403, r.text)

    def test_v2_07_ecdsa_and_refusals(self):
        c = self.login("v2")
        cred = self.creds["ecp256"]
        pub = self.cert_of(c, cred)
        docs, digests = self.docs("v2-ec", 1)
        sad = self.authorize_v2(c, cred, digests)
        body = {"credentialID": cred, "SAD": sad, "hashes": [b64e(d) for d in digests],
                "hashAlgorithmOID": SHA["sha256"], "signAlgo": ECDSA_SHA256}
        r = c.raw("signatures/signHash", dict(body, operationMode="A"))
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.json()["error"], "invalid_request")
        self.assertIn("operationMode", r.json()["error_description"])
        r = c.raw("signatures/signHash", {k: v for k, v in body.items() if k != "hashes"})
        self.assertEqual(r.json(), {"error": "invalid_request", "error_description":
                                    "Missing (or invalid type) array parameter hashes"})
        other = hashlib.sha256(b"not approved").digest()
        r = c.raw("signatures/signHash", dict(body, hashes=[b64e(other)]))
        self.assertEqual(r.status_code, 403, r.text)
        res = c.call("signatures/signHash", body)
        self.verify(pub, docs, res["signatures"])
        r = c.raw("credentials/authorizeCheck", {"handle": "not-a-handle"})
        self.assertEqual(r.json(), {"error": "invalid_request", "error_description":
                                    "Invalid parameter handle"})

    def test_v2_08_a_refusal_on_the_app_ends_the_handle(self):
        c = self.login("v2")
        a = c.call("credentials/authorize", {
            "credentialID": self.creds["ecp256"], "numSignatures": 1,
            "hashes": [b64e(hashlib.sha256(b"refused").digest())],
            "hashAlgorithmOID": SHA["sha256"]}, expect=202)
        self.st.sic(self.state, "cancel", self.pending_request())
        r = c.raw("credentials/authorizeCheck", {"handle": a["handle"]})
        self.assertEqual((r.status_code, r.json()["error"]), (403, "access_denied"))

    def test_v2_09_openapi_lists_every_csc_and_oauth_path_and_each_is_served(self):
        doc = stack.requests.get(self.st.url + "/openapi.json").json()["paths"]
        served = set()
        for ver in ("v1", "v2"):
            for m in CscClient(self.st.url, ver).call("info", {})["methods"]:
                if not m.startswith("oauth2/"):
                    served.add("/csc/%s/%s" % (ver, m))
        served |= {"/csc/v2/oauth2/authorize", "/csc/v2/oauth2/token", "/csc/v2/oauth2/revoke",
                   "/csc/v2/oauth2/page.css", "/csc/v1/signatures/timestamp",
                   "/csc/v2/signatures/signDoc", "/rssp/admin/clients/update"}
        for p in sorted(served):
            self.assertIn(p, doc, "%s is served but not in openapi.json" % p)
        for p, ops in doc.items():
            if not p.startswith("/csc/"):
                continue
            if "get" in ops:
                r = stack.requests.get(self.st.url + p, allow_redirects=False)
            else:
                r = stack.requests.post(self.st.url + p, json={})
            self.assertNotEqual(r.status_code, 404, "%s is in openapi.json but not served" % p)
            self.assertLess(r.status_code, 502, p)

    # == CSC API v1.0.4.0 ============================================================
    def test_v1_01_info(self):
        info = CscClient(self.st.url, "v1").call("info", {})
        self.assertEqual(info["specs"], "1.0.4.0")
        for f in ("name", "logo", "region", "lang", "description"):
            self.assertIsInstance(info[f], str, f)
        self.assertIsInstance(info["authType"], list)
        self.assertIsInstance(info["methods"], list)
        for m in ("auth/login", "credentials/list", "credentials/info", "credentials/authorize",
                  "signatures/signHash"):
            self.assertIn(m, info["methods"])
        self.assertEqual(CscClient(self.st.url, "v1").raw("signatures/timestamp").status_code, 501)

    def test_v1_02_list_and_info_as_pyhanko_reads_them(self):
        c = self.login("v1")
        lst = c.call("credentials/list", {"maxResults": 10})
        for cred in self.creds.values():
            self.assertIn(cred, lst["credentialIDs"])
        for algo, cred in self.creds.items():
            # pyHanko: {"credentialID", "certificates": "chain", "certInfo": False}
            info = c.call("credentials/info", {"credentialID": cred, "certificates": "chain",
                                               "certInfo": True, "authInfo": True})
            self.check_key_cert(info, algo, "v1")
            self.assertEqual(info["authMode"], "implicit")
            self.assertNotIn("auth", info)

    def v1_authorize(self, c, cred, digests, num=None):
        """The synchronous v1 credentials/authorize: the call waits while the app approves."""
        out = {}

        def call():
            out["r"] = c.raw("credentials/authorize", {
                "credentialID": cred, "numSignatures": num or len(digests),
                "hash": [b64e(d) for d in digests], "description": "CSC v1 contract"})
        t = threading.Thread(target=call)
        t0 = time.time()
        t.start()
        self.approve_on_app(self.pending_request())
        t.join(V1_WAIT + 30)
        r = out["r"]
        self.assertEqual(r.status_code, 200, r.text)
        self.assertLess(time.time() - t0, V1_WAIT + 5)
        self.assertIsInstance(r.json()["SAD"], str)
        self.assertIsInstance(r.json()["expiresIn"], int)
        return r.json()["SAD"]

    def test_v1_03_synchronous_authorize_then_signhash_without_hashalgo(self):
        c = self.login("v1")
        cred = self.creds["rsa2048"]
        pub = self.cert_of(c, cred)
        docs, digests = self.docs("v1-rsa", 2)
        sad = self.v1_authorize(c, cred, digests, num=4)
        # hashAlgo absent: sha256WithRSAEncryption says it
        res = c.call("signatures/signHash", {"credentialID": cred, "SAD": sad,
                                             "hash": [b64e(d) for d in digests],
                                             "signAlgo": RSA_SHA256})
        self.assertEqual(set(res), {"signatures"})
        self.verify(pub, docs, res["signatures"])
        # RSASSA-PSS with the maximum salt (what pyHanko's PSS asks for), hashAlgo given
        res = c.call("signatures/signHash", {
            "credentialID": cred, "SAD": sad, "hash": [b64e(d) for d in digests],
            "hashAlgo": SHA["sha256"], "signAlgo": RSA_PSS,
            "signAlgoParams": b64e(pss_params("sha256", 222))})
        self.verify(pub, docs, res["signatures"], pss_salt=222)

    def test_v1_04_ecdsa_hashalgo_derived_from_the_digest_length_and_refusals(self):
        c = self.login("v1")
        cred = self.creds["ecp256"]
        pub = self.cert_of(c, cred)
        docs, digests = self.docs("v1-ec", 1)
        sad = self.v1_authorize(c, cred, digests)
        body = {"credentialID": cred, "SAD": sad, "hash": [b64e(d) for d in digests],
                "signAlgo": ECDSA_SHA256}
        r = c.raw("signatures/signHash", dict(body, hashAlgo=SHA["sha512"]))
        self.assertEqual(r.status_code, 400)
        self.assertIn("hashAlgo", r.json()["error_description"])
        # ecdsa-with-SHA384 over 32-byte digests, no hashAlgo: named in v1 terms
        r = c.raw("signatures/signHash", dict(body, signAlgo="1.2.840.10045.4.3.3"))
        self.assertEqual(r.json(), {"error": "invalid_request", "error_description":
                                    "Invalid parameter hash: the digests' length does not fit signAlgo"})
        r = c.raw("signatures/signHash", {k: v for k, v in body.items() if k != "hash"})
        self.assertEqual(r.json()["error_description"], "Missing (or invalid type) array parameter hash")
        r = c.raw("signatures/signHash", dict(body, hash=["AAAA"]))
        self.assertEqual(r.status_code, 400)
        self.assertIn("hash", r.json()["error_description"])
        res = c.call("signatures/signHash", body)
        self.verify(pub, docs, res["signatures"])

    def test_v1_05_authorize_gives_up_after_the_documented_wait(self):
        c = self.login("v1")
        t0 = time.time()
        r = c.raw("credentials/authorize", {
            "credentialID": self.creds["ecp256"], "numSignatures": 1,
            "hash": [b64e(hashlib.sha256(b"never approved").digest())]})
        took = time.time() - t0
        self.assertEqual((r.status_code, r.json()["error"]), (403, "access_denied"), r.text)
        self.assertIn("%d s" % V1_WAIT, r.json()["error_description"])
        self.assertGreaterEqual(took, V1_WAIT - 1)
        self.assertLess(took, V1_WAIT + 10)
        # the app no longer shows it
        self.assertEqual(self.st.sic(self.state, "requests")["requests"], [])

    def test_v1_06_a_refusal_on_the_app_answers_access_denied(self):
        c = self.login("v1")
        out = {}
        t = threading.Thread(target=lambda: out.update(r=c.raw("credentials/authorize", {
            "credentialID": self.creds["ecp256"], "numSignatures": 1,
            "hash": [b64e(hashlib.sha256(b"refused v1").digest())]})))
        t.start()
        self.st.sic(self.state, "cancel", self.pending_request())
        t.join(V1_WAIT + 30)
        self.assertEqual((out["r"].status_code, out["r"].json()["error"]), (403, "access_denied"))

    def test_v1_07_synchronous_authorizes_of_one_rp_are_capped(self):
        # each waits for the signer on the long pool: one RP may hold only
        # RSSP_WAITS_PER_CLIENT of them, so that it cannot starve logins and other tenants
        c = self.login("v1")
        out = [None] * (V1_WAITS + 2)

        def one(i):
            out[i] = c.raw("credentials/authorize", {
                "credentialID": self.creds["ecp256"], "numSignatures": 1,
                "hash": [b64e(hashlib.sha256(b"capped v1 %d" % i).digest())]})
        ts = [threading.Thread(target=one, args=(i,)) for i in range(len(out))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(V1_WAIT + 30)
        codes = sorted(r.status_code for r in out)
        self.assertEqual(codes, [403] * V1_WAITS + [429] * 2, [r.text[:200] for r in out])
        self.assertEqual(self.st.sic(self.state, "requests")["requests"], [])


if __name__ == "__main__":
    BUILD = stack.build_dir_from_argv()
    unittest.main(verbosity=2)
