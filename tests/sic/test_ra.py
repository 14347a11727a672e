#!/usr/bin/python3
"""Tests of rssp-ra without a server: its voucher encoder/decoder against the bytes of the
C builder (voucher_vectors), its RA signatures against the C verifier (both key kinds),
the display checks that make `show` and `vouch` refuse, and keygen's key file.

usage: test_ra.py PATH/TO/voucher_vectors
"""
import base64
import hashlib
import importlib.machinery
import importlib.util
import io
import os
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
_loader = importlib.machinery.SourceFileLoader("rssp_ra", os.path.join(HERE, "rssp-ra"))
_spec = importlib.util.spec_from_loader("rssp_ra", _loader)
ra = importlib.util.module_from_spec(_spec)
_loader.exec_module(ra)

VECTORS = None  # set from argv


def fixed_fields():
    return {"user_id": "8f2d5c1e-user", "common_name": "J\u00e9r\u00f4me Signer",
            "kak_sha256": bytes(range(32)), "device_uuid": "5b0e9c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b",
            "issued_at": 1790000000, "not_after": 1790000000 + 30 * 86400,
            "ra_key_id": bytes(0xff - i for i in range(32))}


def entry_for(f, tbs):
    """What an honest gateway's enrollments/list shows for a voucher."""
    return {"deviceUUID": f["device_uuid"], "userID": f["user_id"], "fullName": f["common_name"],
            "email": "j@example.org", "kakSHA256": f["kak_sha256"].hex(), "status": "PENDING",
            "toBeSigned": base64.b64encode(tbs).decode(),
            "fields": {"userID": f["user_id"], "commonName": f["common_name"],
                       "serialNumber": f["user_id"], "kakSHA256": f["kak_sha256"].hex(),
                       "deviceUUID": f["device_uuid"], "issuedAt": f["issued_at"],
                       "notAfter": f["not_after"], "raKeyID": f["ra_key_id"].hex()}}


class VoucherCodec(unittest.TestCase):
    def test_python_encoder_builds_the_c_builders_bytes(self):
        out = subprocess.run([VECTORS], check=True, capture_output=True, text=True).stdout
        name, hexed = out.split()
        self.assertEqual(name, "voucher")
        self.assertEqual(ra.encode_voucher(fixed_fields()), bytes.fromhex(hexed))
        self.assertEqual(ra.decode_voucher(bytes.fromhex(hexed)), fixed_fields())

    def test_decoder_refuses_bad_framing(self):
        b = ra.encode_voucher(fixed_fields())
        bad = [b + b"\0", b[:-1], b"x" + b[1:], b[:15] + b"\x02" + b[16:],
               b[:19] + bytes([b[19] + 1]) + b[20:]]
        for x in bad:
            with self.assertRaises(ra.VoucherError):
                ra.decode_voucher(x)
        f = fixed_fields()
        f["not_after"] = f["issued_at"] + 30 * 86400 + 1
        with self.assertRaises(ra.VoucherError):
            ra.encode_voucher(f)
        f = fixed_fields()
        f["common_name"] = "Line\nBreak"
        with self.assertRaises(ra.VoucherError):
            ra.encode_voucher(f)


class DisplayChecks(unittest.TestCase):
    def setUp(self):
        self.f = fixed_fields()
        self.now = self.f["issued_at"] + 10

    def test_an_honest_display_passes(self):
        tbs = ra.encode_voucher(self.f)
        ra.check_voucher(entry_for(self.f, tbs), ra.decode_voucher(tbs),
                         ra_key_id=self.f["ra_key_id"], now=self.now)

    def test_every_disagreement_is_refused(self):
        tbs = ra.encode_voucher(self.f)
        f = ra.decode_voucher(tbs)
        edits = [("userID", "someone-else"), ("fullName", "Mallory"), ("deviceUUID", "other"),
                 ("kakSHA256", "00" * 32)]
        for k, v in edits:
            e = entry_for(self.f, tbs)
            e[k] = v
            with self.assertRaises(ra.VoucherError, msg=k):
                ra.check_voucher(e, f, ra_key_id=self.f["ra_key_id"], now=self.now)
        for k, v in (("commonName", "Mallory"), ("serialNumber", "x"), ("notAfter", 1),
                     ("raKeyID", "00" * 32)):
            e = entry_for(self.f, tbs)
            e["fields"][k] = v
            with self.assertRaises(ra.VoucherError, msg=k):
                ra.check_voucher(e, f, ra_key_id=self.f["ra_key_id"], now=self.now)
        # bytes naming another RA key, or past their window
        with self.assertRaises(ra.VoucherError):
            ra.check_voucher(entry_for(self.f, tbs), f, ra_key_id=b"\0" * 32, now=self.now)
        with self.assertRaises(ra.VoucherError):
            ra.check_voucher(entry_for(self.f, tbs), f, ra_key_id=self.f["ra_key_id"],
                             now=self.f["not_after"])


class FakeApi:
    """A compromised gateway: the list shows one person, the bytes name another."""
    calls = []

    def __init__(self, state):
        pass

    def call(self, path, body):
        FakeApi.calls.append((path, body))
        if path == "enrollments/list":
            return {"enrollments": FakeApi.entries}
        return {"deviceUUID": body["deviceUUID"], "status": "VOUCHED"}


class Commands(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rssp-ra-test.")
        self.key = os.path.join(self.dir, "ra.key")
        self.pub = os.path.join(self.dir, "ra.pem")
        self.run_ra(["keygen", "--pub", self.pub])
        self.k = ra.RaKey.load(self.key)
        self.real_api = ra.Api
        ra.Api = FakeApi
        FakeApi.calls = []

    def tearDown(self):
        ra.Api = self.real_api
        subprocess.run(["rm", "-rf", self.dir], check=True)

    def run_ra(self, argv):
        o, e = io.StringIO(), io.StringIO()
        with redirect_stdout(o), redirect_stderr(e):
            rc = ra.main(["--state", os.path.join(self.dir, "st"), "--key", self.key] + argv)
        return rc, o.getvalue(), e.getvalue()

    def honest(self):
        f = fixed_fields()
        f["ra_key_id"] = self.k.key_id
        f["issued_at"] = int(time.time()) - 60
        f["not_after"] = f["issued_at"] + 86400
        return f

    def test_keygen_writes_a_0600_key_and_the_c_verifier_accepts_its_signatures(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.key).st_mode), 0o600)
        for algo in ("ec-p256", "rsa"):
            path = os.path.join(self.dir, algo + ".key")
            pub = os.path.join(self.dir, algo + ".pem")
            rc, _, _ = self.run_ra(["--key", path, "keygen", "--algo", algo, "--bits", "2048",
                                    "--pub", pub])
            self.assertEqual(rc, 0)
            k = ra.RaKey.load(path)
            tbs = ra.encode_voucher(dict(fixed_fields(), ra_key_id=k.key_id))
            sig = k.sign(tbs)
            self.assertEqual(subprocess.run([VECTORS, "verify", pub, tbs.hex(), sig.hex()]).returncode, 0)
            self.assertEqual(subprocess.run([VECTORS, "verify", pub, tbs[:-1].hex() + "00",
                                             sig.hex()]).returncode, 1)
        rc, _, err = self.run_ra(["keygen"])
        self.assertEqual(rc, 1)
        self.assertIn("exists", err)

    def test_a_key_readable_by_others_is_refused(self):
        os.chmod(self.key, 0o644)
        FakeApi.entries = []
        rc, _, err = self.run_ra(["list"])
        self.assertEqual(rc, 1)
        self.assertIn("accessible by group or others", err)

    def test_vouch_signs_exactly_the_displayed_bytes(self):
        f = self.honest()
        tbs = ra.encode_voucher(f)
        FakeApi.entries = [entry_for(f, tbs)]
        rc, out, _ = self.run_ra(["show", f["device_uuid"]])
        self.assertEqual(rc, 0)
        self.assertIn("J\u00e9r\u00f4me Signer", out)
        rc, out, err = self.run_ra(["vouch", f["device_uuid"], "--yes"])
        self.assertEqual(rc, 0, err)
        path, body = FakeApi.calls[-1]
        self.assertEqual(path, "enrollments/vouch")
        self.assertEqual(body["raKeyID"], self.k.key_id.hex())
        sig = base64.b64decode(body["signature"])
        self.assertEqual(subprocess.run([VECTORS, "verify", self.pub, tbs.hex(), sig.hex()]).returncode, 0)

    def test_vouch_refuses_bytes_that_differ_from_the_display(self):
        f = self.honest()
        other = dict(f, user_id="mallory-id", common_name="Mallory")
        # the list shows f, the bytes say other
        FakeApi.entries = [entry_for(f, ra.encode_voucher(other))]
        for cmd in (["show", f["device_uuid"]], ["vouch", f["device_uuid"], "--yes"]):
            rc, _, err = self.run_ra(cmd)
            self.assertEqual(rc, 1)
            self.assertIn("refusing", err)
        self.assertFalse([c for c in FakeApi.calls if c[0] == "enrollments/vouch"])
        # bytes for another RA key, garbage bytes
        FakeApi.entries = [entry_for(f, ra.encode_voucher(dict(f, ra_key_id=b"\1" * 32)))]
        self.assertEqual(self.run_ra(["vouch", f["device_uuid"], "--yes"])[0], 1)
        e = entry_for(f, ra.encode_voucher(f))
        e["toBeSigned"] = base64.b64encode(b"rssp-voucher-v1garbage").decode()
        FakeApi.entries = [e]
        self.assertEqual(self.run_ra(["vouch", f["device_uuid"], "--yes"])[0], 1)
        self.assertFalse([c for c in FakeApi.calls if c[0] == "enrollments/vouch"])

    def test_vouch_without_a_terminal_needs_yes(self):
        f = self.honest()
        FakeApi.entries = [entry_for(f, ra.encode_voucher(f))]
        rc, _, err = self.run_ra(["vouch", f["device_uuid"]])
        self.assertEqual(rc, 1)
        self.assertIn("consent", err)


if __name__ == "__main__":
    VECTORS = sys.argv.pop(1)
    unittest.main(verbosity=1)
