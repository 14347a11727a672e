"""oauth2/authorize cannot be used to spam a signer's phone: it is unauthenticated (the
signer's browser calls it), yet each call pushes an approval prompt, so the prompts are
bounded per client address and per credential (exact token buckets), and at most
RSSP_OAUTH_PENDING_PER_CREDENTIAL OAuth requests may be pending per credential at once.
Past a limit the browser is sent back to the RP with temporarily_unavailable (and
Retry-After), and no approval request is created.

The stack runs with small limits so that the test is short: 14 prompts per address, 8 per
credential (1 a minute refill), 3 pending per credential.

Run: test_oauth_limits.py BUILD_DIR (tests/run sets RSSP_TEST_* for the stack)."""
import base64
import concurrent.futures
import hashlib
import os
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import stack  # noqa: E402

SHA256 = "2.16.840.1.101.3.4.2.1"
REDIRECT = "http://127.0.0.1:9/cb"  # never followed: the test reads the Location header


def b64u(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


class OAuthLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.st = stack.Stack(BUILD, name="oauthlim", gateway_env={
            "RSSP_OAUTH_ADDR_RATE": "1", "RSSP_OAUTH_ADDR_BURST": "14",
            "RSSP_OAUTH_CREDENTIAL_RATE": "1", "RSSP_OAUTH_CREDENTIAL_BURST": "8",
            "RSSP_OAUTH_PENDING_PER_CREDENTIAL": "3"})
        try:
            cls.st.start()
            st = cls.st
            admin = st.admin()
            c = admin.post("admin/clients/create", {"name": "Limits RP", "redirectURIs": [REDIRECT]},
                           expect=201)
            cls.client_id = c["clientID"]
            rp = st.client().login(c["clientID"], c["secretKey"])
            user, _, cls.state = stack.enrol_signer(st, rp, admin, "oauthlim")
            cls.creds = []
            for _ in range(3):
                cred = rp.post("credentials/create", {"userID": user, "keyAlgo": "ecp256",
                                                      "validityDays": 30}, expect=201)["credentialID"]
                st.sic(cls.state, "credential-activate", cred, "--yes")
                cls.creds.append(cred)
        except BaseException:
            cls.st.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.st.cleanup()

    def authorize(self, cred):
        challenge = b64u(hashlib.sha256(os.urandom(32)).digest())
        q = {"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
             "scope": "credential", "credentialID": cred, "numSignatures": "1",
             "hashes": b64u(hashlib.sha256(os.urandom(64)).digest()), "hashAlgorithmOID": SHA256,
             "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"}
        r = stack.requests.get(self.st.url + "/csc/v2/oauth2/authorize?" + urllib.parse.urlencode(q),
                               allow_redirects=False, timeout=30)
        self.assertEqual(r.status_code, 303, r.text)
        return r

    def created(self, cred):
        out = subprocess.run(["psql", "-qtA", "-v", "ON_ERROR_STOP=1", self.st.db_url, "-c",
                              "SELECT count(*) FROM auth_requests WHERE credential_id = '%s'" % cred],
                             check=True, capture_output=True, text=True).stdout
        return int(out.strip())

    def assert_page(self, r):
        self.assertTrue(r.headers["Location"].startswith("/csc/v2/oauth2/authorize?page="),
                        r.headers["Location"])

    def assert_refused(self, r, why):
        loc = urllib.parse.urlsplit(r.headers["Location"])
        self.assertEqual("%s://%s%s" % (loc.scheme, loc.netloc, loc.path), REDIRECT)
        q = dict(urllib.parse.parse_qsl(loc.query))
        self.assertEqual(q["error"], "temporarily_unavailable", q)
        self.assertIn(why, q["error_description"])
        self.assertEqual(q["state"], "s")
        self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)

    def test_prompts_are_bounded_per_credential_pending_and_address(self):
        a, b, c = self.creds
        t0 = time.monotonic()
        # eight prompts at once for credential c (its bucket holds 8): the pending count
        # and the creation are serialised, so exactly three are created, five refused
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            rs = list(ex.map(lambda _: self.authorize(c), range(8)))
        pages = [r for r in rs if r.headers["Location"].startswith("/csc/v2/oauth2/authorize?page=")]
        self.assertEqual(len(pages), 3, [r.headers["Location"] for r in rs])
        for r in rs:
            if r not in pages:
                self.assert_refused(r, "waiting for the signer")
        self.assertEqual(self.created(c), 3)
        # the signer refuses them all: none pending, but c's bucket is spent, so the next
        # is refused by the rate, and nothing is created
        reqs = [q for q in self.st.sic(self.state, "requests")["requests"] if q["credentialID"] == c]
        self.assertEqual(len(reqs), 3)
        for q in reqs:
            self.st.sic(self.state, "cancel", q["requestID"])
        self.assertEqual([q for q in self.st.sic(self.state, "requests")["requests"]
                          if q["credentialID"] == c], [])
        self.assert_refused(self.authorize(c), "for this credential")
        self.assertEqual(self.created(c), 3)
        # one after the other for credential a: three pending, the fourth refused
        for _ in range(3):
            self.assert_page(self.authorize(a))
        self.assertEqual(self.created(a), 3)
        self.assert_refused(self.authorize(a), "waiting for the signer")
        self.assertEqual(self.created(a), 3)
        # credential b has a bucket of its own, but this address has spent 13 of its 14
        self.assert_page(self.authorize(b))
        self.assertEqual(self.created(b), 1)
        self.assert_refused(self.authorize(b), "from this address")
        self.assertEqual(self.created(b), 1)
        self.assertEqual((self.created(a), self.created(c)), (3, 3))
        # the buckets refill at 1 a minute: the whole sequence must have run within one
        self.assertLess(time.monotonic() - t0, 55)

if __name__ == "__main__":
    BUILD = stack.build_dir_from_argv()
    unittest.main(verbosity=2)
