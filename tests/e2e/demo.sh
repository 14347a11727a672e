#!/usr/bin/env bash
# rssp demo: from a running local service (deploy/local/up) to a verified signature,
# with curl, jq, openssl and the reference SIC client rssp-sic. Runs unattended: the
# codes a signer would get by email/SMS are read from the admin outbox.
#
#   deploy/local/up          # once: starts SoftHSM2, PostgreSQL, rssp-engine, rssp-gateway
#   tests/e2e/demo.sh        # this script; RSSP_LOCAL_DIR=... if not .local
# The registration officer's step (rssp-ra vouch) uses the local RA key of deploy/local/up.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# RSSP_URL, RSSP_ADMIN_USER, RSSP_ADMIN_PASSWORD_FILE, ... written by deploy/local/up
L=${RSSP_LOCAL_DIR:-$ROOT/.local}
. "$L/env"
SIC="$ROOT/tests/sic/rssp-sic"
RA="$ROOT/tests/sic/rssp-ra"          # signs with $RSSP_RA_KEY_FILE (written by deploy/local/up)
# The demo's files (the signer's passphrase, the app's KAK, ...) stay in the local state
# directory: deploy/local/down --purge deletes them with it; nothing is left in /tmp.
mkdir -p "$L/demo"
DEMO=$(mktemp -d "$L/demo/run.XXXXXX")
KEY_ALGO=${DEMO_KEY_ALGO:-ecp256}     # rsa2048 | rsa3072 | ecp256 | ecp384
KAK_ALGO=${DEMO_KAK_ALGO:-ec-p256}    # ec-p256 | rsa-pss
step() { printf '\n== %s\n' "$*"; }

# POST a JSON body with a bearer token; fails on any HTTP error and shows its body.
api() { # api PATH TOKEN JSON
  curl -sS --fail-with-body -X POST "$RSSP_URL/rssp/$1" \
    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d "$3"
}
# Log in with HTTP Basic (or Digest with --digest), reading "user:secret" from stdin so
# that no secret appears on a command line.
login() { # printf 'user:secret' | login [--digest]
  local cred; cred=$(cat)
  printf 'user = "%s"\n' "$cred" | curl -sS --fail-with-body -K - "$@" -X POST \
    -H 'Content-Type: application/json' -d '{}' "$RSSP_URL/rssp/auth/login" | jq -r .access_token
}
# The newest outbox message of a kind for a recipient (what email/SMS would deliver).
outbox() { # outbox RECIPIENT KIND FIELD
  api admin/outbox/list "$ADMIN" "$(jq -nc --arg r "$1" --arg k "$2" '{recipient:$r, kind:$k}')" |
    jq -er ".messages[0].data.$3"
}

step "service info"
curl -sS -X POST "$RSSP_URL/rssp/info" -H 'Content-Type: application/json' -d '{}' |
  jq '{name, version, authTypes, signAlgorithms}'

step "admin logs in; creates a relying-party client"
ADMIN=$(printf '%s:%s' "$RSSP_ADMIN_USER" "$(cat "$RSSP_ADMIN_PASSWORD_FILE")" | login)
RPC=$(api admin/clients/create "$ADMIN" '{"name":"Demo Bank"}')
RP_ID=$(jq -r .clientID <<<"$RPC"); RP_SECRET=$(jq -r .secretKey <<<"$RPC")
echo "clientID $RP_ID"

step "the RP logs in with HTTP Digest (SHA-256)"
RP=$(printf '%s:%s' "$RP_ID" "$RP_SECRET" | login --digest)

step "the RP registers a signer; the signer confirms from the email link"
EMAIL="alice.$(date +%s).$$@example.com"
USER_ID=$(api users/register "$RP" "$(jq -nc --arg e "$EMAIL" \
  '{email:$e, mobile:"+33612345678", fullName:"Alice Example"}')" | jq -r .userID)
PASS="demo passphrase $(head -c 6 /dev/urandom | base64)"
TOKEN=$(outbox "$EMAIL" confirmation token)
curl -sS --fail-with-body -X POST "$RSSP_URL/rssp/users/confirm" -H 'Content-Type: application/json' \
  -d "$(jq -nc --arg t "$TOKEN" --arg p "$PASS" '{token:$t, passphrase:$p}')" | jq -c .
umask 077; printf '%s\n' "$PASS" > "$DEMO/passphrase"

step "the signer's app: log in, make a KAK, activate the device with the emailed code"
api sic/activationCode "$RP" "$(jq -nc --arg u "$USER_ID" '{userID:$u, channel:"email"}')" | jq -c .
CODE=$(outbox "$EMAIL" sic_activation_code code)
"$SIC" --state "$DEMO/app" login --url "$RSSP_URL" --user "$EMAIL" --password-file "$DEMO/passphrase"
"$SIC" --state "$DEMO/app" keygen --algo "$KAK_ALGO"
"$SIC" --state "$DEMO/app" activate --code "$CODE" --name "Alice's phone"

step "the registration officer checks Alice's identity, then vouches for her phone (rssp-ra)"
# The engine activates keys only for a device a registration authority it trusts vouched
# for, and takes the certificate's subject from the voucher alone.
DEVICE=$(jq -r .deviceUUID "$DEMO/app/config.json")
ra() { "$RA" --state "$DEMO/ra" --key "${RSSP_RA_KEY_FILE:?run deploy/local/up first}" "$@"; }
ra login --url "$RSSP_URL" --user "$RSSP_ADMIN_USER" \
  --password-file "$RSSP_ADMIN_PASSWORD_FILE"
ra list
ra show "$DEVICE"
ra vouch "$DEVICE" --yes

step "the RP creates a $KEY_ALGO credential; the app activates it (the engine makes the key in the HSM)"
CRED=$(api credentials/create "$RP" "$(jq -nc --arg u "$USER_ID" --arg k "$KEY_ALGO" \
  '{userID:$u, keyAlgo:$k, description:"Demo signing key"}')" | jq -r .credentialID)
"$SIC" --state "$DEMO/app" credential-activate "$CRED" --yes

step "the RP asks to sign a document's hash"
printf 'I, Alice, agree to the demo contract of %s.\n' "$(date -u +%F)" > "$DEMO/contract.txt"
HASH=$(openssl dgst -sha256 -binary "$DEMO/contract.txt" | base64)
REQ=$(api credentials/authorize "$RP" "$(jq -nc --arg c "$CRED" --arg h "$HASH" \
  '{credentialID:$c, numSignatures:1, hashes:[$h], hashAlgorithmOID:"2.16.840.1.101.3.4.2.1",
    description:"Demo contract"}')" | jq -r .requestID)

step "the app shows the request (checked against the authData it signs) and approves it"
"$SIC" --state "$DEMO/app" requests
"$SIC" --state "$DEMO/app" show "$REQ"
"$SIC" --state "$DEMO/app" confirm "$REQ" --yes

step "the RP collects the SAD and signs"
SAD=$(api credentials/authorizeCheck "$RP" "$(jq -nc --arg r "$REQ" '{requestID:$r}')" | jq -r .SAD)
case $KEY_ALGO in rsa*) SIGN_ALGO=1.2.840.113549.1.1.11 ;; *) SIGN_ALGO=1.2.840.10045.4.3.2 ;; esac
api signatures/signHash "$RP" "$(jq -nc --arg c "$CRED" --arg s "$SAD" --arg h "$HASH" --arg a "$SIGN_ALGO" \
  '{credentialID:$c, SAD:$s, hashes:[$h], hashAlgorithmOID:"2.16.840.1.101.3.4.2.1", signAlgo:$a}')" |
  jq -r '.signatures[0]' | base64 -d > "$DEMO/contract.sig"

step "anyone verifies: the signature with the certificate, the certificate with the CA"
api credentials/info "$RP" "$(jq -nc --arg c "$CRED" '{credentialID:$c, certificates:"chain"}')" |
  jq -r '.cert.certificates[]' > "$DEMO/chain.b64"
n=0
while read -r c; do
  printf '%s\n' "$c" | base64 -d | openssl x509 -inform DER -out "$DEMO/cert$n.pem"; n=$((n + 1))
done < "$DEMO/chain.b64"
openssl x509 -in "$DEMO/cert0.pem" -noout -subject -issuer
cat "$DEMO"/cert[1-9]*.pem > "$DEMO/ca.pem"
openssl verify -CAfile "$DEMO/ca.pem" "$DEMO/cert0.pem"
openssl x509 -in "$DEMO/cert0.pem" -noout -pubkey > "$DEMO/pub.pem"
echo "files in $DEMO"
openssl dgst -sha256 -verify "$DEMO/pub.pem" -signature "$DEMO/contract.sig" "$DEMO/contract.txt"   # the last line: Verified OK
