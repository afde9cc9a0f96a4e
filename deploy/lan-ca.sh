#!/usr/bin/env bash
# A private certificate authority for a LAN without internet, with openssl alone (docs/deployment.md).
#
#   deploy/lan-ca.sh ca DIR [NAME]             once: DIR/ca.key (keep it offline) and DIR/ca.crt (give it out)
#   deploy/lan-ca.sh server DIR HOST [HOST...] DIR/HOST.key and DIR/HOST.crt, signed by DIR/ca.key, valid for
#                                              every HOST given: DNS names and IP addresses, as clients type them
#
# Keys are ECDSA P-256. The CA lasts 10 years, a server certificate 825 days (the longest some browsers accept):
# run `server` again before it ends (`openssl x509 -enddate -noout -in DIR/HOST.crt`).
set -euo pipefail
umask 077

die() { echo "lan-ca.sh: $*" >&2; exit 2; }

make_ca() {
    local dir=$1 name=${2:-Gel dispensers LAN CA} conf
    [[ -e $dir/ca.key ]] && die "$dir/ca.key exists: one CA per site, keep using it"
    mkdir -p "$dir"
    conf=$(mktemp)
    trap 'rm -f "$conf"' RETURN
    cat >"$conf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = $name
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    openssl req -utf8 -x509 -new -config "$conf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
        -days 3650 -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    chmod 644 "$dir/ca.crt"
    echo "$dir/ca.crt: the CA certificate to install on browsers, kiosks and dispensers"
    echo "$dir/ca.key: the CA's private key; keep it off the network (USB stick in a safe)"
}

subject_alt_names() {
    local host sans=()
    for host in "$@"; do
        if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then sans+=("IP:$host"); else sans+=("DNS:$host"); fi
    done
    local IFS=,
    echo "${sans[*]}"
}

make_server() {
    local dir=$1; shift
    [[ $# -ge 1 ]] || die "server: give at least one host name or address"
    [[ -r $dir/ca.key && -r $dir/ca.crt ]] || die "no CA in $dir: run '$0 ca $dir' first"
    local name=$1 conf csr
    conf=$(mktemp)
    csr=$(mktemp)
    trap 'rm -f "$conf" "$csr"' RETURN
    cat >"$conf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = $name
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $(subject_alt_names "$@")
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    openssl req -utf8 -new -config "$conf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/$name.key" -out "$csr" 2>/dev/null
    openssl x509 -req -in "$csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -sha256 -days 825 -extfile "$conf" -extensions v3_server -out "$dir/$name.crt" 2>/dev/null
    chmod 644 "$dir/$name.crt"
    echo "$dir/$name.crt and $dir/$name.key: for nginx (ssl_certificate, ssl_certificate_key)"
}

case ${1:-} in
    ca) [[ $# -ge 2 ]] || die "usage: $0 ca DIR [NAME]"; make_ca "${@:2}" ;;
    server) [[ $# -ge 3 ]] || die "usage: $0 server DIR HOST [HOST...]"; make_server "${@:2}" ;;
    *) die "usage: $0 ca DIR [NAME] | $0 server DIR HOST [HOST...]" ;;
esac
