#!/bin/sh
# runtime-deps.sh BINARY... - the Debian packages that hold the shared libraries the
# binaries load (run in the build stage; the runtime stage installs exactly these).
set -eu
for b in "$@"; do
  ldd "$b" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }'
done | sort -u | while read -r lib; do
  real=$(readlink -f "$lib")
  for p in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    if pkg=$(dpkg -S "$p" 2>/dev/null); then echo "${pkg%%:*}"; break; fi
  done
done | sort -u
