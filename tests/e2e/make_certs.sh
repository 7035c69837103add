#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Test PKI, made at test time with openssl: a CA, a server certificate for 127.0.0.1, client
# certificates naming twins (SPIFFE URI SAN, or CN only), and one from another CA.
set -euo pipefail
out=$1
mkdir -p "$out"
cd "$out"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
ca() {  # name
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$1" -days 2 -out "$1.crt" 2>/dev/null
}
leaf() {  # name ca subject extensions
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$3" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
ca ca
ca other-ca
leaf server ca "/CN=pagi-exec" "subjectAltName=IP:127.0.0.1,DNS:localhost"
leaf trace ca "/CN=ignored-cn" "subjectAltName=URI:spiffe://pagi.test/twin/twin-trace"
leaf aegis-cn ca "/CN=twin-aegis" "basicConstraints=CA:FALSE"
leaf intruder other-ca "/CN=twin-aegis" "subjectAltName=URI:spiffe://pagi.test/twin/twin-aegis"
