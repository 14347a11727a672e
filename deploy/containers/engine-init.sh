#!/bin/sh
# engine-init - the engine pod's init container (idempotent; safe to run on every start).
#  1. Copies the HSM PIN from the Secret mount ($RSSP_PIN_SECRET, default
#     /etc/rssp-pin-secret/pin) to $RSSP_PIN_FILE (an in-memory emptyDir) with mode 0400:
#     Kubernetes makes Secret files group-readable when fsGroup is set, and the engine
#     refuses a PIN file that group or other may read.
#  2. With SoftHSM2 (the default module) and no token labelled $RSSP_TOKEN_LABEL yet,
#     creates the token; the SO PIN comes from $RSSP_SO_PIN_SECRET when that file exists,
#     else a random one that nobody keeps (the SO PIN only re-initialises a token).
#     With a real HSM the token exists already (the vendor's tool made it).
#  3. Runs `rssp-engine init` (MAC key and CA in the token) unless the token is
#     initialised already.
set -eu
umask 077
secret=${RSSP_PIN_SECRET:-/etc/rssp-pin-secret/pin}
label=${RSSP_TOKEN_LABEL:-rssp}
module=${RSSP_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

[ -r "$secret" ] || { echo "engine-init: cannot read the PIN secret $secret" >&2; exit 1; }
mkdir -p "$(dirname "$RSSP_PIN_FILE")"
tr -d '\r\n' < "$secret" > "$RSSP_PIN_FILE.tmp"
chmod 0400 "$RSSP_PIN_FILE.tmp"
mv -f "$RSSP_PIN_FILE.tmp" "$RSSP_PIN_FILE"

marker=
case $module in
*softhsm2.so)
  tokendir=$(sed -n 's/^directories.tokendir *= *//p' "${SOFTHSM2_CONF:-/etc/softhsm/softhsm2.conf}")
  marker=$tokendir/.rssp-init-complete
  if ! softhsm2-util --show-slots 2>/dev/null | grep -q "Label: *$label *\$"; then
    rm -f "$marker"
    if [ -r "${RSSP_SO_PIN_SECRET:-/etc/rssp-pin-secret/so-pin}" ]; then
      sopin=$(tr -d '\r\n' < "${RSSP_SO_PIN_SECRET:-/etc/rssp-pin-secret/so-pin}")
    else
      sopin=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    fi
    softhsm2-util --init-token --free --label "$label" --so-pin "$sopin" --pin "$(cat "$RSSP_PIN_FILE")" >/dev/null
    echo "engine-init: created SoftHSM2 token '$label'"
  fi
  ;;
esac

# `rssp-engine init` refuses a token that holds its keys already ("already initialised"):
# that is success here. Never --force: it would replace the MAC key and the CA.
if [ -n "$marker" ] && [ -f "$marker" ]; then
  echo "engine-init: token '$label' already initialised"
  exit 0
fi
if out=$(rssp-engine init ${RSSP_CA_SUBJECT:+--ca-subject "$RSSP_CA_SUBJECT"} 2>&1); then
  echo "engine-init: $out"
elif printf '%s' "$out" | grep -q "already initialised"; then
  echo "engine-init: token '$label' already initialised"
else
  printf '%s\n' "$out" >&2
  exit 1
fi
if [ -n "$marker" ]; then date -u +%FT%TZ > "$marker"; fi
