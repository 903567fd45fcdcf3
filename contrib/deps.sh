#!/bin/sh
# deps.sh - install the Debian packages picomail needs to build and test,
# when they are missing.  Non-interactive; needs root (or sudo) only when
# something is missing.
set -e

# Build: compiler, pkg-config, libraries.  Test: clang's libFuzzer for the
# parser fuzzer, python3 for the conformance runner, valgrind; Postfix
# (with smtp-source and smtp-sink), swaks and Dovecot for the end-to-end
# mail tests, which start and stop them themselves (openssl makes the
# test IMAP server's certificate; wrk drives bench/http.sh).  libcurl is the GnuTLS flavour because
# libetpan-dev depends on it (the two flavours exclude each other).
PACKAGES="gcc make pkg-config libjansson-dev libpcre2-dev libsqlite3-dev libssl-dev
libgmime-3.0-dev libmilter-dev libetpan-dev libcurl4-gnutls-dev libmicrohttpd-dev sqlite3 clang python3 valgrind
postfix swaks dovecot-imapd openssl wrk"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Postfix: install no main.cf and start nothing; the tests configure their
# own instance (tests/mail/postfix.sh).
echo "postfix postfix/main_mailer_type select No configuration" |
    $SUDO debconf-set-selections
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
