#!/usr/bin/python3
"""Tests of rssp-sic without a server: its authData encoder/decoder against the bytes of
the C builder (authdata_vectors), the display checks that make `confirm` refuse, and its
KAK operations against the openssl command line.

usage: test_sic.py PATH/TO/authdata_vectors
"""
import base64
import datetime
import hashlib
import importlib.machinery
import importlib.util
import os
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SIC_PATH = os.path.join(HERE, "rssp-sic")
_loader = importlib.machinery.SourceFileLoader("rssp_sic", SIC_PATH)
_spec = importlib.util.spec_from_loader("rssp_sic", _loader)
sic = importlib.util.module_from_spec(_spec)
_loader.exec_module(sic)

VECTORS = None  # set from argv

# The fixed fields of authdata_vectors.c
KAK = bytes([0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48])
NONCE = bytes(0xa0 + i for i in range(32))
ROWS = [bytes((i * 7 + 3) & 0xff for i in range(r * 64, (r + 1) * 64)) for r in range(3)]
DEVICE = "5b0e9c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b"


def activation_fields():
    return {"credential_id": "cred-0001", "owner_id": "8f2d5c1e-user", "device_uuid": DEVICE,
            "kak_sha256": hashlib.sha256(KAK).digest(), "kak_algo": 1, "key_algo": 3,
            "subject_cn": "J\u00e9r\u00f4me Signer", "validity_days": 365,
            "nonce": NONCE[:16], "expires_at": 1790000000}


def approval_fields():
    return {"approval_id": "req-0001", "credential_id": "cred-0001", "owner_id": "8f2d5c1e-user",
            "device_uuid": DEVICE, "kak_sha256": hashlib.sha256(KAK).digest(), "hash_algo": 1,
            "hashes": [r[:32] for r in ROWS], "num_signatures": 3, "rp_name": "Example Bank",
            "description": "Loan contract \u2116 42", "nonce": NONCE, "expires_at": 1790000300}


def c_vectors():
    outp = subprocess.run([VECTORS], check=True, capture_output=True, text=True).stdout
    return {name: bytes.fromhex(h) for name, h in (l.split() for l in outp.splitlines())}


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def info_for(fields):
    """What an honest gateway's requests/info shows for these authData fields."""
    return {"requestID": fields["approval_id"], "credentialID": fields["credential_id"],
            "rpName": fields["rp_name"], "description": fields["description"],
            "numSignatures": fields["num_signatures"],
            "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
            "hashes": [base64.b64encode(h).decode() for h in fields["hashes"]],
            "expiresAt": rfc3339(fields["expires_at"]), "signAlgo": "RSASSA-PSS", "shaAlgo": "sha256"}


class AuthDataCodec(unittest.TestCase):
    def test_python_encoder_builds_the_c_builders_activation_bytes(self):
        self.assertEqual(sic.encode_authdata(sic.PURPOSE_ACTIVATION, activation_fields()),
                         c_vectors()["activation"])

    def test_python_encoder_builds_the_c_builders_approval_bytes(self):
        v = c_vectors()
        self.assertEqual(sic.encode_authdata(sic.PURPOSE_APPROVAL, approval_fields()),
                         v["approval-sha256"])
        f = approval_fields()
        f.update(hash_algo=3, hashes=ROWS[:2], num_signatures=5, expires_at=-1)
        self.assertEqual(sic.encode_authdata(sic.PURPOSE_APPROVAL, f), v["approval-sha512"])

    def test_decoder_reads_back_every_field_of_the_c_vectors(self):
        v = c_vectors()
        self.assertEqual(sic.decode_authdata(v["activation"]),
                         (sic.PURPOSE_ACTIVATION, activation_fields()))
        self.assertEqual(sic.decode_authdata(v["approval-sha256"]),
                         (sic.PURPOSE_APPROVAL, approval_fields()))
        p, f = sic.decode_authdata(v["approval-sha512"])
        self.assertEqual((f["hash_algo"], f["hashes"], f["num_signatures"], f["expires_at"]),
                         (3, ROWS[:2], 5, -1))

    def test_decoder_refuses_bad_framing(self):
        good = c_vectors()["approval-sha256"]
        m = len(sic.MAGIC) + 1
        bad = {
            "empty": b"",
            "wrong magic": b"rssp-authdata-v2" + good[16:],
            "unknown purpose": good[:16] + b"\x03" + good[17:],
            "truncated": good[:-1],
            "trailing byte": good + b"\x00",
            "first field missing": good[:m] + good[m + 5 + 8:],
            "length overruns": good[:m + 1] + b"\xff\xff\xff\xff" + good[m + 5:],
        }
        # Tags out of order: swap the first two fields.
        l1 = int.from_bytes(good[m + 1:m + 5], "big")
        f1 = good[m:m + 5 + l1]
        l2 = int.from_bytes(good[m + 5 + l1 + 1:m + 5 + l1 + 5], "big")
        f2 = good[m + 5 + l1:m + 10 + l1 + l2]
        bad["tags swapped"] = good[:m] + f2 + f1 + good[m + 10 + l1 + l2:]
        # Hash count that disagrees with the field length.
        f = approval_fields()
        enc = sic.encode_authdata(sic.PURPOSE_APPROVAL, f)
        i = enc.index(b"\x00\x00\x00\x03" + f["hashes"][0])
        bad["hash count lies"] = enc[:i] + b"\x00\x00\x00\x02" + enc[i + 4:]
        # An integer that is not 8 bytes: rewrite numSignatures as 4 bytes.
        j = enc.index(bytes([sic.APP_NUM_SIGNATURES]) + b"\x00\x00\x00\x08")
        bad["short integer"] = enc[:j] + bytes([sic.APP_NUM_SIGNATURES]) + \
            b"\x00\x00\x00\x04\x00\x00\x00\x03" + enc[j + 13:]
        for name, data in bad.items():
            with self.subTest(name):
                with self.assertRaises(sic.AuthDataError):
                    sic.decode_authdata(data)

    def test_decoder_refuses_an_activation_with_a_short_nonce(self):
        f = activation_fields()
        enc = sic.encode_authdata(sic.PURPOSE_ACTIVATION, f)
        k = enc.index(bytes([sic.ACT_NONCE]) + b"\x00\x00\x00\x10")
        short = enc[:k] + bytes([sic.ACT_NONCE]) + b"\x00\x00\x00\x08" + f["nonce"][:8] + enc[k + 21:]
        with self.assertRaises(sic.AuthDataError):
            sic.decode_authdata(short)


class DisplayChecks(unittest.TestCase):
    NOW = 1790000000

    def check(self, info, fields, **kw):
        args = dict(device_uuid=DEVICE, kak_spki=KAK, owner_id="8f2d5c1e-user", now=self.NOW)
        args.update(kw)
        sic.check_approval(info, fields, **args)

    def test_confirm_accepts_a_display_that_matches_the_authdata(self):
        f = approval_fields()
        self.check(info_for(f), f)

    def test_confirm_refuses_each_display_field_that_disagrees_with_the_authdata(self):
        f = approval_fields()
        tampered = {
            "requestID": "req-0002", "credentialID": "cred-0002", "rpName": "Example Bank.",
            "description": "Loan contract", "numSignatures": 4,
            "hashAlgorithmOID": "2.16.840.1.101.3.4.2.3",
            "hashes": [base64.b64encode(h).decode() for h in f["hashes"][:2]],
            "expiresAt": rfc3339(f["expires_at"] + 1),
        }
        for key, val in tampered.items():
            with self.subTest(key):
                info = info_for(f)
                info[key] = val
                with self.assertRaises(sic.AuthDataError):
                    self.check(info, f)
        with self.subTest("hash order"):
            info = info_for(f)
            info["hashes"] = list(reversed(info["hashes"]))
            with self.assertRaises(sic.AuthDataError):
                self.check(info, f)

    def test_confirm_refuses_authdata_for_another_device_kak_or_owner(self):
        f = approval_fields()
        for kw in ({"device_uuid": "other-device"}, {"kak_spki": KAK + b"\x00"},
                   {"owner_id": "someone-else"}):
            with self.subTest(kw=list(kw)):
                with self.assertRaises(sic.AuthDataError):
                    self.check(info_for(f), f, **kw)

    def test_confirm_refuses_an_expired_request(self):
        f = approval_fields()
        with self.assertRaises(sic.AuthDataError):
            self.check(info_for(f), f, now=f["expires_at"])

    def test_credential_activation_refuses_another_credential_device_kak_or_algorithm(self):
        f = activation_fields()
        resp = {"signAlgo": "RSASSA-PSS", "shaAlgo": "sha256"}
        base = dict(credential_id="cred-0001", device_uuid=DEVICE, kak_spki=KAK, kak_algo=1,
                    owner_id="8f2d5c1e-user", now=self.NOW - 10)
        sic.check_activation(resp, f, **base)
        for kw in ({"credential_id": "cred-0002"}, {"device_uuid": "x"}, {"kak_spki": b"x"},
                   {"kak_algo": 2}, {"owner_id": "x"}, {"now": f["expires_at"] + 1}):
            with self.subTest(kw=list(kw)):
                a = dict(base)
                a.update(kw)
                with self.assertRaises(sic.AuthDataError):
                    sic.check_activation(resp, f, **a)
        with self.assertRaises(sic.AuthDataError):
            sic.check_activation({"signAlgo": "ECDSA", "shaAlgo": "sha256"}, f, **base)


    def test_display_shows_control_and_bidi_characters_instead_of_obeying_them(self):
        f = approval_fields()
        f["description"] = "Pay 100 EUR\r\x1b[2KPay 1 EUR \u202etxt.exe"
        text = sic._describe(info_for(f), f)
        for bad in ("\r", "\x1b", "\u202e"):
            self.assertNotIn(bad, text)
        self.assertIn("Pay 100 EUR\\u000d\\u001b[2KPay 1 EUR \\u202etxt.exe", text)
        self.assertEqual(sic.shown_text("Jérôme № 42"), "Jérôme № 42")


class Kak(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.state = os.path.join(self.tmp.name, "state")

    def tearDown(self):
        self.tmp.cleanup()

    def keygen(self, *extra):
        r = subprocess.run([sys.executable, SIC_PATH, "--state", self.state, "--json", "keygen",
                            *extra], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return sic.State(self.state).load_kak()

    def openssl_verify(self, kak, data, sig, sha, pss):
        from cryptography.hazmat.primitives import serialization
        pub = os.path.join(self.tmp.name, "pub.pem")
        with open(pub, "wb") as f:
            f.write(kak.key.public_key().public_bytes(serialization.Encoding.PEM,
                    serialization.PublicFormat.SubjectPublicKeyInfo))
        for name, blob in (("data", data), ("sig", sig)):
            with open(os.path.join(self.tmp.name, name), "wb") as f:
                f.write(blob)
        cmd = ["openssl", "dgst", "-" + sha, "-verify", pub,
               "-signature", os.path.join(self.tmp.name, "sig")]
        if pss:
            # salt = hash length (-1 = "digest"), MGF1 with the same hash (sendDevice, gateway/openapi.json)
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1",
                    "-sigopt", "rsa_mgf1_md:" + sha]
        cmd.append(os.path.join(self.tmp.name, "data"))
        return subprocess.run(cmd, capture_output=True, text=True)

    def test_keygen_writes_the_kak_with_mode_0600_in_a_0700_directory(self):
        self.keygen("--algo", "ec-p256")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.state, "kak.pem")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.state, "config.json")).st_mode),
                         0o600)

    def test_keygen_refuses_to_replace_a_kak_without_force(self):
        self.keygen("--algo", "ec-p256")
        r = subprocess.run([sys.executable, SIC_PATH, "--state", self.state, "keygen",
                            "--algo", "ec-p256"], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--force", r.stderr)

    def test_a_kak_readable_by_others_is_refused(self):
        self.keygen("--algo", "ec-p256")
        os.chmod(os.path.join(self.state, "kak.pem"), 0o644)
        with self.assertRaises(sic.Fail):
            sic.State(self.state).load_kak()

    def test_rsa_pss_kak_signatures_verify_with_openssl(self):
        for sha in ("sha256", "sha512"):
            with self.subTest(sha):
                kak = self.keygen("--algo", "rsa-pss", "--sha", sha, "--force")
                data = os.urandom(32)
                r = self.openssl_verify(kak, data, kak.sign(data), sha, True)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                r = self.openssl_verify(kak, data + b"x", kak.sign(data), sha, True)
                self.assertNotEqual(r.returncode, 0)

    def test_ecdsa_kak_signatures_are_der_and_verify_with_openssl(self):
        kak = self.keygen("--algo", "ec-p256")
        data = os.urandom(200)
        sig = kak.sign(data)
        self.assertEqual(sig[0], 0x30)
        r = self.openssl_verify(kak, data, sig, "sha256", False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_otp_encrypted_with_openssl_oaep_sha256_decrypts(self):
        from cryptography.hazmat.primitives import serialization
        kak = self.keygen("--algo", "rsa-pss")
        pub = os.path.join(self.tmp.name, "pub.pem")
        with open(pub, "wb") as f:
            f.write(kak.key.public_key().public_bytes(serialization.Encoding.PEM,
                    serialization.PublicFormat.SubjectPublicKeyInfo))
        enc = subprocess.run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", pub,
                              "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                              "-pkeyopt", "rsa_mgf1_md:sha256"], input=b"04711234",
                             capture_output=True, check=True).stdout
        self.assertEqual(kak.decrypt_otp(enc), b"04711234")

    def test_commands_without_login_fail_with_a_clear_message(self):
        self.keygen("--algo", "ec-p256")
        r = subprocess.run([sys.executable, SIC_PATH, "--state", self.state, "requests"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("rssp-sic login", r.stderr)


if __name__ == "__main__":
    VECTORS = sys.argv.pop(1)
    unittest.main(verbosity=2)
