#!/bin/sh
# The daemons are built hardened: position-independent, full RELRO (GNU_RELRO and
# BIND_NOW), a non-executable stack. Usage: hardening.sh BINARY...
set -eu
fail=0
for bin in "$@"; do
  h=$(readelf -h "$bin"); d=$(readelf -d "$bin"); l=$(readelf -lW "$bin")
  echo "$h" | grep -q 'Type:.*DYN' || { echo "$bin: not PIE"; fail=1; }
  echo "$d" | grep -q 'FLAGS_1.*PIE' || { echo "$bin: no PIE flag"; fail=1; }
  echo "$d" | grep -Eq 'BIND_NOW|FLAGS_1.*NOW' || { echo "$bin: lazy binding (no -z now)"; fail=1; }
  echo "$l" | grep -q 'GNU_RELRO' || { echo "$bin: no RELRO"; fail=1; }
  echo "$l" | grep 'GNU_STACK' | grep -q 'RWE' && { echo "$bin: executable stack"; fail=1; }
  [ "$fail" -eq 0 ] && echo "$bin: PIE, full RELRO, NX stack"
done
exit "$fail"
