#!/usr/bin/python3
"""An independent client of rssp-engine: Debian's python3-grpcio with stubs generated at
test time (python3-grpc-tools), python3-cryptography for the KAK, and authData built here
from proto/PROTOCOL.md alone (not from the C builder), so the encoding is cross-checked.

usage: test_grpc_python.py RSSP_ENGINE_BIN
"""
import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

ENGINE = sys.argv[1]
ROOT = os.environ.get("RSSP_TEST_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = tempfile.mkdtemp(prefix="rpc-py.", dir=os.environ.get("RSSP_TEST_WORK", "/tmp"))
PIN = "py-pin-" + os.urandom(6).hex()
SHA256 = 1
KAK_RSASSA_PSS_SHA256, KAK_ECDSA_P256_SHA256 = 1, 3
KEY_RSA2048, KEY_EC_P256 = 1, 3
SIGN_RSA_PKCS1_V15, SIGN_ECDSA = 1, 3


def gen_stubs():
    out = os.path.join(WORK, "py")
    os.makedirs(out)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(ROOT, "proto"),
                    "--python_out=" + out, os.path.join(ROOT, "proto/rssp/engine/v1/engine.proto")],
                   check=True)
    sys.path.insert(0, out)
    from rssp.engine.v1 import engine_pb2
    return engine_pb2


# ---- authData, as PROTOCOL.md section 4 describes it ----
def f_str(tag, s):
    b = s.encode()
    return bytes([tag]) + struct.pack(">I", len(b)) + b


def f_bytes(tag, b):
    return bytes([tag]) + struct.pack(">I", len(b)) + b


def f_int(tag, v):
    return bytes([tag]) + struct.pack(">I", 8) + struct.pack(">q", v)


def authdata(purpose, fields):
    return b"rssp-authdata-v1" + bytes([purpose]) + b"".join(fields)


# ---- the enrolment voucher, as PROTOCOL.md describes it; an RSA (PSS) RA key here ----
RA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RA_SPKI = RA_KEY.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
RA_KEY_ID = hashlib.sha256(RA_SPKI).digest()


def voucher(pb, user_id, name, kak_sha, device):
    now = int(time.time())
    tbs = (b"rssp-voucher-v1" + f_str(1, user_id) + f_str(2, name) + f_bytes(3, kak_sha) +
           f_str(4, device) + f_int(5, now - 60) + f_int(6, now + 7 * 86400) +
           f_bytes(7, RA_KEY_ID))
    sig = RA_KEY.sign(tbs, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                      hashes.SHA256())
    return pb.Voucher(to_be_signed=tbs, signature=sig, ra_key_id=RA_KEY_ID)


def main():
    pb = gen_stubs()
    os.makedirs(os.path.join(WORK, "tokens"), mode=0o700)
    conf = os.path.join(WORK, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                "log.level = ERROR\nslots.removable = false\n" % WORK)
    pin_file = os.path.join(WORK, "pin")
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (PIN + "\n").encode())
    os.close(fd)
    sock = os.path.join(WORK, "run", "engine.sock")
    audit = os.path.join(WORK, "audit.log")
    ra_pem = os.path.join(WORK, "ra.pem")
    with open(ra_pem, "wb") as f:
        f.write(RA_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    env = dict(os.environ, SOFTHSM2_CONF=conf, RSSP_TOKEN_LABEL="py", RSSP_PIN_FILE=pin_file,
               RSSP_ENGINE_SOCKET=sock, RSSP_AUDIT_FILE=audit, RSSP_LOG_LEVEL="warn",
               RSSP_RA_KEYS=ra_pem)
    if os.environ.get("RSSP_TEST_PKCS11_MODULE"):
        env["RSSP_PKCS11_MODULE"] = os.environ["RSSP_TEST_PKCS11_MODULE"]
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "py", "--pin", PIN,
                    "--so-pin", "so-" + PIN], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([ENGINE, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    engine = subprocess.Popen([ENGINE, "serve"], env=env)
    try:
        channel = grpc.insecure_channel("unix:" + sock)
        grpc.channel_ready_future(channel).result(timeout=20)
        run_checks(pb, channel)
        channel.close()
    finally:
        engine.send_signal(signal.SIGTERM)
        rc = engine.wait(timeout=60)
    assert rc == 0, "engine exited %d" % rc
    with open(audit) as f:
        log = f.read()
    assert '"request_id":"py-activate-ec"' in log, "request id missing from the audit"
    assert '"ra_key_id":"%s"' % RA_KEY_ID.hex() in log, "ra key id missing from the audit"
    assert '"event":"rpc.unimplemented","request_id":"py-unknown"' in log
    assert PIN not in log
    rc = subprocess.run([ENGINE, "audit-verify", audit], stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL).returncode
    assert rc == 0, "audit-verify failed"
    print("ok")


def unary(channel, method):
    return channel.unary_unary("/rssp.engine.v1.Engine/" + method)  # raw bytes both ways


def expect_code(fn, code, what):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, "%s: %s, expected %s" % (what, e.code(), code)
        return
    raise AssertionError("%s: succeeded, expected %s" % (what, code))


def run_checks(pb, channel):
    authorize = unary(channel, "Authorize")
    sign_hash = unary(channel, "SignHash")

    # an unknown method: UNIMPLEMENTED at once, not at the deadline
    t0 = time.monotonic()
    expect_code(lambda: unary(channel, "ExportKey")(b"", timeout=30,
                                                    metadata=(("x-request-id", "py-unknown"),)),
                grpc.StatusCode.UNIMPLEMENTED, "unknown method")
    assert time.monotonic() - t0 < 25

    # an ECDSA P-256 KAK for the EC credential, an RSASSA-PSS KAK for the RSA one
    ec_kak = ec.generate_private_key(ec.SECP256R1())
    rsa_kak = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def ec_sign(data):
        return ec_kak.sign(data, ec.ECDSA(hashes.SHA256()))

    def pss_sign(data):
        return rsa_kak.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                              salt_length=32), hashes.SHA256())

    for key_algo, sign_algo, cid, kak, kak_algo, kak_sign in (
            (KEY_EC_P256, SIGN_ECDSA, "py-ec", ec_kak, KAK_ECDSA_P256_SHA256, ec_sign),
            (KEY_RSA2048, SIGN_RSA_PKCS1_V15, "py-rsa", rsa_kak, KAK_RSASSA_PSS_SHA256, pss_sign)):
        spki = kak.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        kak_sha = hashlib.sha256(spki).digest()
        nonce = os.urandom(16)
        exp = int(time.time()) + 300
        ad = authdata(1, [f_str(1, cid), f_str(2, "py-owner"), f_str(3, "py-device"),
                          f_bytes(4, kak_sha), f_int(5, kak_algo),
                          f_int(6, key_algo), f_str(7, "Py Signer"), f_int(8, 30),
                          f_bytes(9, nonce), f_int(10, exp)])
        req = pb.AuthorizeRequest(
            request_id="py", kak=pb.Kak(public_key=spki, algo=kak_algo),
            signature=kak_sign(ad),
            activation=pb.Activation(credential_id=cid, owner_id="py-owner",
                                     device_uuid="py-device", key_algo=key_algo,
                                     validity_days=30, nonce=nonce, expires_at=exp,
                                     voucher=voucher(pb, "py-owner", "Py Signer", kak_sha,
                                                     "py-device")))
        rid = "py-activate-" + cid.split("-")[1]
        resp = pb.AuthorizeResponse.FromString(
            authorize(req.SerializeToString(), timeout=60, metadata=(("x-request-id", rid),)))
        act = resp.activation
        cert = x509.load_der_x509_certificate(act.certificate)
        subject = [(a.oid, a.value) for a in cert.subject]
        assert subject == [(x509.NameOID.COMMON_NAME, "Py Signer"),
                           (x509.NameOID.SERIAL_NUMBER, "py-owner")], subject

        digests = [os.urandom(32), os.urandom(32)]
        nonce = os.urandom(16)
        ad = authdata(2, [f_str(1, "py-approval-" + cid), f_str(2, cid), f_str(3, "py-owner"),
                          f_str(4, "py-device"), f_bytes(5, kak_sha), f_int(6, SHA256),
                          f_bytes(7, struct.pack(">I", 2) + b"".join(digests)), f_int(8, 2),
                          f_str(9, "Py RP"), f_str(10, "Py document"), f_bytes(11, nonce),
                          f_int(12, exp)])
        req = pb.AuthorizeRequest(
            request_id="py", kak=pb.Kak(public_key=spki, algo=kak_algo),
            signature=kak_sign(ad),
            approval=pb.Approval(approval_id="py-approval-" + cid, credential_id=cid,
                                 owner_id="py-owner", device_uuid="py-device",
                                 key_label=act.key_label, binding=act.binding,
                                 hash_algo=SHA256, hashes=digests, num_signatures=2,
                                 rp_name="Py RP", description="Py document", nonce=nonce,
                                 expires_at=exp))
        sad = pb.AuthorizeResponse.FromString(authorize(req.SerializeToString(), timeout=60)).approval.sad

        # a forged SAD (its MAC's last byte flipped): PERMISSION_DENIED
        forged = sad[:-1] + bytes([sad[-1] ^ 1])
        sreq = pb.SignHashRequest(request_id="py", credential_id=cid, sad=forged, hash_algo=SHA256,
                                  sign_algo=sign_algo, hashes=digests)
        expect_code(lambda: sign_hash(sreq.SerializeToString(), timeout=60),
                    grpc.StatusCode.PERMISSION_DENIED, "forged SAD")

        sreq.sad = sad
        sigs = pb.SignHashResponse.FromString(sign_hash(sreq.SerializeToString(), timeout=60)).signatures
        assert len(sigs) == 2
        pub = cert.public_key()
        for d, s in zip(digests, sigs):
            if sign_algo == SIGN_ECDSA:
                pub.verify(s, d, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            else:
                pub.verify(s, d, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
