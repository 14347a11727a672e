"""OAuth 2.0 as CSC v2 defines it, end to end, with a real browser: headless Chromium
(driven by Selenium, JavaScript off) opens the authorize URL, the reference app (rssp-sic)
approves on the side, the browser lands on a loopback redirect URI with the code, the token
call with the PKCE verifier yields a credential token, and signatures/signHash signs with
it (verified with openssl). Plus the refusals: wrong verifier, reused code, redirect URI
mismatch, token used for other hashes or beyond its count, expired code, a refusal on the
app; client_credentials and revoke. A screenshot of the page is kept in the build tree.

Run: test_oauth.py BUILD_DIR (tests/run sets RSSP_TEST_* for the stack)."""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import stack  # noqa: E402
from stack import b64d, b64e  # noqa: E402

SHA256 = "2.16.840.1.101.3.4.2.1"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
RSA_SHA256 = "1.2.840.113549.1.1.11"


def b64u(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def pkce():
    verifier = b64u(os.urandom(48))
    return verifier, b64u(hashlib.sha256(verifier.encode()).digest())


class Callback(BaseHTTPRequestHandler):
    """The relying party's redirect URI on loopback: records what arrives."""
    hits = []

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        type(self).hits.append((u.path, dict(urllib.parse.parse_qsl(u.query))))
        body = b"<!DOCTYPE html><title>RP</title><p id=rp>back at the relying party</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class OAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t0 = time.time()
        cls.cb = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
        threading.Thread(target=cls.cb.serve_forever, daemon=True).start()
        cls.redirect = "http://127.0.0.1:%d/cb" % cls.cb.server_address[1]
        # generous prompt limits here: test_oauth_limits.py shows them
        cls.st = stack.Stack(BUILD, name="oauth", gateway_env={
            "RSSP_OAUTH_ADDR_BURST": "100", "RSSP_OAUTH_CREDENTIAL_BURST": "100"})
        try:
            cls.st.start()
            cls.setup_world()
        except BaseException:
            cls.st.cleanup()
            cls.cb.shutdown()
            raise

    @classmethod
    def setup_world(cls):
        st = cls.st
        cls.admin = st.admin()
        c = cls.admin.post("admin/clients/create", {"name": "OAuth <Bank> & Co",
                                                    "redirectURIs": [cls.redirect]}, expect=201)
        cls.client_id, cls.secret = c["clientID"], c["secretKey"]
        cls.rp = st.client().login(cls.client_id, cls.secret)
        cls.user, cls.full_name, cls.state = stack.enrol_signer(st, cls.rp, cls.admin, "oauth")
        cred = cls.rp.post("credentials/create", {"userID": cls.user, "keyAlgo": "ecp256",
                                                  "validityDays": 30}, expect=201)["credentialID"]
        st.sic(cls.state, "credential-activate", cred, "--yes")
        cls.cred = cred
        info = stack.requests.post(st.url + "/csc/v2/credentials/info", json={"credentialID": cred},
                                   headers={"Authorization": "Bearer " + cls.rp.token}).json()
        cls.files = tempfile.mkdtemp(prefix="oauth-files.", dir=st.work)
        leaf = os.path.join(cls.files, "leaf.der")
        with open(leaf, "wb") as f:
            f.write(b64d(info["cert"]["certificates"][0]))
        cls.pub = os.path.join(cls.files, "leaf.pub")
        subprocess.run(["openssl", "x509", "-inform", "DER", "-in", leaf, "-noout", "-pubkey",
                        "-out", cls.pub], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.st.cleanup()
        cls.cb.shutdown()
        print("oauth: done in %.1f s" % (time.time() - cls.t0), file=sys.stderr)

    # -- helpers -------------------------------------------------------------------
    def url(self, path):
        return self.st.url + path

    def authorize_url(self, digests, challenge, state="st-1", redirect=None, **extra):
        q = {"response_type": "code", "client_id": self.client_id,
             "redirect_uri": redirect or self.redirect, "scope": "credential",
             "credentialID": self.cred, "numSignatures": str(len(digests)),
             "hashes": ",".join(b64u(d) for d in digests), "hashAlgorithmOID": SHA256,
             "code_challenge": challenge, "code_challenge_method": "S256", "state": state,
             "description": "Loan contract <No. 7>"}
        q.update(extra)
        return self.url("/csc/v2/oauth2/authorize?" + urllib.parse.urlencode(q))

    def pending_request(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            reqs = self.st.sic(self.state, "requests")["requests"]
            if reqs:
                return reqs[0]
            time.sleep(0.2)
        self.fail("no pending request reached the app")

    def token(self, code, verifier, redirect=None, auth=True, expect=200):
        data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": redirect or self.redirect}
        r = stack.requests.post(self.url("/csc/v2/oauth2/token"), data=data,
                                auth=(self.client_id, self.secret) if auth else None, timeout=60)
        self.assertEqual(r.status_code, expect, r.text)
        return r.json()

    def sign(self, token, digests, expect=200):
        r = stack.requests.post(self.url("/csc/v2/signatures/signHash"), json={
            "credentialID": self.cred, "hashes": [b64e(d) for d in digests],
            "hashAlgorithmOID": SHA256, "signAlgo": ECDSA_SHA256},
            headers={"Authorization": "Bearer " + token}, timeout=60)
        self.assertEqual(r.status_code, expect, r.text)
        return r.json()

    def code_without_browser(self, digests, challenge, approve=True, state="st-x"):
        """The same flow with plain HTTP (no browser): authorize -> page -> app -> code."""
        s = stack.requests.Session()
        r = s.get(self.authorize_url(digests, challenge, state=state), allow_redirects=False)
        self.assertEqual(r.status_code, 303, r.text)
        page = self.url(r.headers["Location"])
        self.assertEqual(s.get(page, allow_redirects=False).status_code, 200)
        req = self.pending_request()["requestID"]
        if approve:
            self.st.sic(self.state, "confirm", req, "--yes")
        else:
            self.st.sic(self.state, "cancel", req)
        r = s.get(page, allow_redirects=False)
        self.assertEqual(r.status_code, 303, r.text)
        loc = urllib.parse.urlsplit(r.headers["Location"])
        self.assertEqual("%s://%s%s" % (loc.scheme, loc.netloc, loc.path), self.redirect)
        return dict(urllib.parse.parse_qsl(loc.query))

    # -- the tests -------------------------------------------------------------------
    def test_1_browser_flow_code_pkce_token_signhash_and_refusals(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By

        docs = [os.urandom(600)]
        digests = [hashlib.sha256(d).digest() for d in docs]
        verifier, challenge = pkce()
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=900,800", "--user-data-dir=" + tempfile.mkdtemp(dir=self.st.work)):
            opts.add_argument(a)
        # the page must work without JavaScript: it is off
        opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
        drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            drv.set_page_load_timeout(30)
            drv.get(self.authorize_url(digests, challenge, state="browser-state"))
            self.assertIn("/csc/v2/oauth2/authorize?page=", drv.current_url)
            self.assertEqual(drv.find_element(By.TAG_NAME, "h1").text, "Approve on your phone")
            self.assertEqual(drv.find_element(By.ID, "rp").text, "OAuth <Bank> & Co")
            self.assertEqual(drv.find_element(By.ID, "description").text, "Loan contract <No. 7>")
            self.assertEqual(drv.find_element(By.ID, "documents").text, "1")
            # nothing on the page can approve: no form, no button, no script
            for tag in ("form", "button", "input", "script"):
                self.assertEqual(drv.find_elements(By.TAG_NAME, tag), [], tag)
            # the stylesheet applied (CSP default-src 'self' lets it in)
            self.assertEqual(drv.find_element(By.TAG_NAME, "main").value_of_css_property(
                "border-top-left-radius"), "12px")
            shot = os.path.join(BUILD, "tests", "csc", "oauth_page.png")
            os.makedirs(os.path.dirname(shot), exist_ok=True)
            if os.path.exists(shot):
                os.unlink(shot)  # a stale one from an earlier run must not pass for this one
            self.assertTrue(drv.save_screenshot(shot), "save_screenshot failed: %s" % shot)
            with open(shot, "rb") as f:
                png = f.read()
            # a PNG (signature, IHDR first) of the 900x800 window, not an empty image
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n", "not a PNG: %s" % shot)
            self.assertEqual(png[12:16], b"IHDR")
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            self.assertTrue(width >= 300 and height >= 300, "screenshot %dx%d" % (width, height))
            self.assertGreater(len(png), 5000, "screenshot of only %d bytes" % len(png))
            print("oauth: screenshot of the signer's page: %s (%dx%d, %d bytes)"
                  % (shot, width, height, len(png)), file=sys.stderr)
            page_url = drv.current_url
            h = stack.requests.get(page_url, allow_redirects=False).headers
            self.assertIn("default-src 'self'", h["Content-Security-Policy"])
            self.assertEqual(h["Referrer-Policy"], "no-referrer")
            # the app shows the same request and approves it with the KAK
            req = self.pending_request()
            self.assertEqual(req["rpName"], "OAuth <Bank> & Co")
            shown = self.st.sic(self.state, "show", req["requestID"])
            self.assertEqual(shown["hashes"], [b64e(d) for d in digests])
            self.st.sic(self.state, "confirm", req["requestID"], "--yes")
            deadline = time.time() + 30
            while not drv.current_url.startswith(self.redirect) and time.time() < deadline:
                time.sleep(0.2)
            landed = urllib.parse.urlsplit(drv.current_url)
            self.assertTrue(drv.current_url.startswith(self.redirect), drv.current_url)
            self.assertEqual(drv.find_element(By.ID, "rp").text, "back at the relying party")
        finally:
            drv.quit()
        q = dict(urllib.parse.parse_qsl(landed.query))
        self.assertEqual(q["state"], "browser-state")
        code = q["code"]
        # the page, reloaded, issues no second code
        self.assertEqual(stack.requests.get(page_url, allow_redirects=False).status_code, 410)

        # refusals that leave the code usable: a wrong verifier, another redirect URI,
        # no client authentication
        self.assertEqual(self.token(code, pkce()[0], expect=400)["error"], "invalid_grant")
        self.assertEqual(self.token(code, verifier, redirect=self.redirect + "x",
                                    expect=400)["error"], "invalid_grant")
        self.assertEqual(self.token(code, verifier, auth=False, expect=401)["error"], "invalid_client")
        tok = self.token(code, verifier)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertEqual(tok["scope"], "credential")
        self.assertIsInstance(tok["expires_in"], int)
        ctoken = tok["access_token"]
        # the code is single use
        self.assertEqual(self.token(code, verifier, expect=400)["error"], "invalid_grant")

        # hmm: reusing the code revoked the token it gave (RFC 6749 4.1.2); take another
        docs = [os.urandom(700)]
        digests = [hashlib.sha256(d).digest() for d in docs]
        verifier, challenge = pkce()
        q = self.code_without_browser(digests, challenge)
        ctoken2 = self.token(q["code"], verifier)["access_token"]
        self.sign(ctoken, digests, expect=401)  # revoked with its code's reuse
        # the credential token is no session token
        r = stack.requests.post(self.url("/csc/v2/credentials/list"), json={},
                                headers={"Authorization": "Bearer " + ctoken2})
        self.assertEqual(r.status_code, 401)
        # other hashes, and more signatures than approved: refused, the token stays good
        self.sign(ctoken2, [hashlib.sha256(b"other").digest()], expect=403)
        self.sign(ctoken2, digests * 2, expect=403)
        sigs = self.sign(ctoken2, digests)["signatures"]
        docf = os.path.join(self.files, "doc")
        sigf = os.path.join(self.files, "doc.sig")
        with open(docf, "wb") as f:
            f.write(docs[0])
        with open(sigf, "wb") as f:
            f.write(b64d(sigs[0]))
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", self.pub, "-signature", sigf,
                            docf], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # single use
        self.sign(ctoken2, digests, expect=401)

    def test_2_expired_code(self):
        digests = [hashlib.sha256(os.urandom(100)).digest()]
        verifier, challenge = pkce()
        q = self.code_without_browser(digests, challenge)
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", self.st.db_url, "-c",
                        "UPDATE oauth_authorizations SET code_expires_at = 1 WHERE code_hash = "
                        "sha256(convert_to('%s', 'UTF8'))" % q["code"]], check=True,
                       capture_output=True)
        err = self.token(q["code"], verifier, expect=400)
        self.assertEqual(err["error"], "invalid_grant")
        self.assertIn("expired", err["error_description"])

    def test_3_a_refusal_on_the_app_redirects_with_access_denied(self):
        q = self.code_without_browser([hashlib.sha256(b"no").digest()], pkce()[1], approve=False,
                                      state="refused")
        self.assertEqual(q["error"], "access_denied")
        self.assertEqual(q["state"], "refused")
        self.assertNotIn("code", q)

    def test_4_authorize_refusals(self):
        d = [hashlib.sha256(b"x").digest()]
        s = stack.requests.Session()
        # an unregistered redirect URI: an error page, never a redirect
        r = s.get(self.authorize_url(d, pkce()[1], redirect="http://127.0.0.1:1/evil"),
                  allow_redirects=False)
        self.assertEqual(r.status_code, 400)
        self.assertNotIn("Location", r.headers)
        self.assertIn("redirect_uri is not registered", r.text)
        # no PKCE, plain PKCE: back to the client with invalid_request
        for extra in ({"code_challenge_method": "plain"}, {"code_challenge": "short"}):
            r = s.get(self.authorize_url(d, pkce()[1], **extra), allow_redirects=False)
            self.assertEqual(r.status_code, 303)
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.headers["Location"]).query))
            self.assertEqual(q["error"], "invalid_request")
        # an unknown client
        url = self.authorize_url(d, pkce()[1]).replace(self.client_id, "rp-nobody")
        self.assertEqual(s.get(url, allow_redirects=False).status_code, 400)
        # authorization_details of type credential works as well as scope=credential
        ad = json.dumps([{"type": "credential", "credentialID": self.cred, "numSignatures": 1,
                          "hashes": [b64e(d[0])], "hashAlgorithmOID": SHA256}])
        r = s.get(self.authorize_url([], pkce()[1], scope="", hashes="", credentialID="",
                                     authorization_details=ad), allow_redirects=False)
        self.assertEqual(r.status_code, 303, r.text)
        self.assertIn("page=", r.headers["Location"])
        self.st.sic(self.state, "cancel", self.pending_request()["requestID"])
        # the registration: exact URIs only, https or loopback http
        r = self.admin.raw("admin/clients/update", {"clientID": self.client_id,
                                                    "redirectURIs": ["http://example.com/cb"]})
        self.assertEqual(r.status_code, 400)
        self.assertIn("redirectURIs[0]", r.json()["error_description"])
        self.admin.post("admin/clients/update", {"clientID": self.client_id,
                                                 "redirectURIs": [self.redirect,
                                                                  "https://rp.example/cb"]})

    def test_5_client_credentials_and_revoke(self):
        r = stack.requests.post(self.url("/csc/v2/oauth2/token"),
                                data={"grant_type": "client_credentials"},
                                auth=(self.client_id, self.secret))
        self.assertEqual(r.status_code, 200, r.text)
        tok = r.json()
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertNotIn("refresh_token", tok)
        h = {"Authorization": "Bearer " + tok["access_token"]}
        self.assertEqual(stack.requests.post(self.url("/csc/v2/credentials/list"), json={},
                                             headers=h).status_code, 200)
        r = stack.requests.post(self.url("/csc/v2/oauth2/token"),
                                data={"grant_type": "client_credentials", "client_id": self.client_id,
                                      "client_secret": "wrong"})
        self.assertEqual((r.status_code, r.json()["error"]), (401, "invalid_client"))
        r = stack.requests.post(self.url("/csc/v2/oauth2/token"), data={"grant_type": "password"},
                                auth=(self.client_id, self.secret))
        self.assertEqual((r.status_code, r.json()["error"]), (400, "unsupported_grant_type"))
        r = stack.requests.post(self.url("/csc/v2/oauth2/revoke"), data={"token": tok["access_token"]},
                                auth=(self.client_id, self.secret))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(stack.requests.post(self.url("/csc/v2/credentials/list"), json={},
                                             headers=h).status_code, 401)


if __name__ == "__main__":
    BUILD = stack.build_dir_from_argv()
    unittest.main(verbosity=2)
