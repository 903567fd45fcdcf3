#!/bin/sh
# imap.sh BUILD_DIR - the IMAP fetcher of picomaild (src/daemon/
# imap_fetch.c) end to end against a private Dovecot IMAP server started
# here: its own configuration, directories and log under a temporary
# directory, listening on two free loopback ports (IMAP with STARTTLS, and
# IMAPS) with a self-signed certificate, one passwd-file user, Maildir.
#
# The fetcher runs inside tests/mail/imap_driver.c (built here against
# BUILD_DIR/libpicomail.a) on a database made with BUILD_DIR/picomail.
# Cases: fetch and flag \Seen, a second run fetches nothing, messages
# made unseen again (as after a crash between commit and flag) are
# deduplicated, IDLE picks up a new message, the connection drops (Dovecot
# stopped and started again) and the fetcher reconnects, a message refused
# by the channel's policy is flagged anyway, an unknown channel leaves the
# mail alone, move mode, imaps and STARTTLS with the certificate checked
# (and refused without the CA or under another name), bad configurations.
#
# Needs root (Dovecot drops to its own users), dovecot-imapd, openssl,
# python3, libetpan-dev.  Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
pm="$build/picomail"
tmp=$(mktemp -d)
chmod 755 "$tmp"            # Dovecot's unprivileged processes look inside
pass=0; fail=0
dv_pid=; drv_pid=

cleanup() {
    if [ -n "$drv_pid" ]; then kill "$drv_pid" 2>/dev/null; wait "$drv_pid" 2>/dev/null; fi
    if [ -n "$dv_pid" ]; then kill "$dv_pid" 2>/dev/null; wait "$dv_pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ok()   { pass=$((pass + 1)); echo "ok $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; }
# check NAME COMMAND... : the command succeeds
check() {
    name=$1; shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
# expect NAME FILE PYTHON_EXPR : EXPR holds for o = the JSON in FILE
expect() {
    if python3 -c 'import json, sys
o = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3" 2>"$tmp/expect.err"; then
        ok "$1"
    else
        bad "$1: $3"; cat "$tmp/expect.err"; head -c 3000 "$2"; echo
    fi
}
# logged NAME PATTERN : the last driver log has a line matching PATTERN
logged() {
    if grep -qE -- "$2" "$tmp/drv.log"; then ok "$1"; else bad "$1: no log line /$2/"; cat "$tmp/drv.log"; fi
}
# poll_until SECONDS COMMAND... : until COMMAND succeeds, or SECONDS pass
poll_until() {
    end=$(($(date +%s) + $1)); shift
    while ! "$@"; do
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.1
    done
}

# ---- the driver ----
pkgs="jansson libpcre2-8 sqlite3 libcrypto gmime-3.0"
san=
if nm "$build/libpicomail.a" 2>/dev/null | grep -q __asan_; then
    san="-fsanitize=address,undefined"
fi
# shellcheck disable=SC2046,SC2086
if ! cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra \
        -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
        -Wformat=2 -O1 -g $san -iquote include $(pkg-config --cflags $pkgs) \
        -o "$tmp/imap_driver" tests/mail/imap_driver.c src/daemon/imap_fetch.c \
        "$build/libpicomail.a" -letpan $(pkg-config --libs $pkgs) -lm -lpthread; then
    bad "build the driver"
    echo "$pass passed, $fail failed"; exit 1
fi
ok "build the driver"

# ---- Dovecot ----
# shellcheck disable=SC2046
set -- $(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
port=$1; sport=$2
mkdir -p "$tmp/run" "$tmp/state" "$tmp/mail"
uid=$(id -u nobody); gid=$(id -g nobody)
chown "$uid:$gid" "$tmp/mail"
# "old" is a server without IDLE, MOVE and UIDPLUS (only IMAP4rev1)
{
    echo "test:{PLAIN}s3cret:$uid:$gid::$tmp/mail/test::"
    echo "old:{PLAIN}s3cret:$uid:$gid::$tmp/mail/old::userdb_imap_capability=IMAP4rev1"
} >"$tmp/passwd"
printf 's3cret\n' >"$tmp/password"; chmod 600 "$tmp/password"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" \
    -out "$tmp/cert.pem" 2>/dev/null || { bad "make a certificate"; exit 1; }
cat >"$tmp/dovecot.conf" <<EOF
base_dir = $tmp/run
state_dir = $tmp/state
log_path = $tmp/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$tmp/cert.pem
ssl_key = <$tmp/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$tmp/mail/%u/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $tmp/passwd
}
userdb {
  driver = passwd-file
  args = $tmp/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $sport
  }
}
service anvil {
  chroot =
}
EOF
listening() {
    python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null
}
not_listening() { ! listening "$1"; }
dv_start() {
    dovecot -F -c "$tmp/dovecot.conf" &
    dv_pid=$!
    poll_until 30 listening "$port" && poll_until 30 listening "$sport"
}
dv_stop() {
    kill "$dv_pid"; wait "$dv_pid" 2>/dev/null; dv_pid=
    poll_until 30 not_listening "$port"
}
if ! dv_start; then
    bad "start dovecot"; cat "$tmp/dovecot.log"
    echo "$pass passed, $fail failed"; exit 1
fi
ok "start dovecot"

# imap COMMAND FOLDER [FILE...] - talk to the mailbox of $imap_user (test)
# with imaplib:
#   append (creating the folder), flags (a JSON map uid -> flags),
#   count, unsee (remove \Seen from all)
cat >"$tmp/imap.py" <<'EOF'
import imaplib, json, re, sys
port, user, cmd, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
files = sys.argv[5:]
m = imaplib.IMAP4("127.0.0.1", port)
m.login(user, "s3cret")
if cmd == "append":
    m.create(folder)
    for f in files:
        typ, data = m.append(folder, None, None, open(f, "rb").read())
        assert typ == "OK", data
else:
    typ, data = m.select(folder)
    if typ != "OK":
        print("{}" if cmd == "flags" else 0)
    elif cmd == "count":
        print(int(data[0]))
    elif cmd == "flags":
        out = {}
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
        for d in data:
            if d is None:
                continue
            mm = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", d)
            if mm:
                out[int(mm.group(1))] = mm.group(2).decode().split()
        print(json.dumps(out))
    elif cmd == "unsee":
        m.uid("STORE", "1:*", "-FLAGS.SILENT", "(\\Seen)")
m.logout()
EOF
imap() { python3 "$tmp/imap.py" "$port" "${imap_user:-test}" "$@"; }
# msg NAME FROM SUBJECT [RETURN_PATH] - a message file
msg() {
    {
        [ $# -ge 4 ] && printf 'Return-Path: <%s>\r\n' "$4"
        printf 'From: %s\r\nTo: someone@example.org\r\nSubject: %s\r\n' "$2" "$3"
        printf 'Message-ID: <%s@test.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n' "$1"
        printf '\r\nHello from %s.\r\n' "$1"
    } >"$tmp/$1.eml"
}

# ---- the database, pico, channels ----
db="$tmp/p.db"
if ! { "$pm" --db "$db" init --json >/dev/null &&
       "$pm" --db "$db" pico new alice --json >/dev/null &&
       "$pm" --db "$db" channel new alice --json >"$tmp/ch1.json" &&
       "$pm" --db "$db" channel new alice --sender allowed.example \
           --json >"$tmp/ch2.json"; }; then
    bad "make the pico and channels"; echo "$pass passed, $fail failed"; exit 1
fi
eci=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eci"])' "$tmp/ch1.json")
eci2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eci"])' "$tmp/ch2.json")
ok "make the pico and channels"

# conf NAME KEY=VALUE... - a picomail.conf with mailbox "box": plain IMAP
# on loopback, the password file, the first channel, unless overridden
conf() {
    f="$tmp/$1.conf"; shift
    {
        echo "database = $db"
        echo "mail_domain = picos.localhost"
        echo "imap_mailboxes = box"
        echo "imap_reconnect_max = 2s"
        for kv in host=127.0.0.1 port=$port tls=none user=test \
                  password_file=$tmp/password channel=$eci "$@"; do
            echo "imap_box_${kv%%=*} = ${kv#*=}"
        done
    } >"$f"
    echo "$f"
}
# drv_start CONF [COUNT] - run the driver in the background (until COUNT
# entries, or until drv_stop when 0)
drv_start() {
    # empty the log here, not in the background job: a wait for a line
    # must never see the previous run's log
    : >"$tmp/drv.log"
    "$tmp/imap_driver" "$1" "${2:-0}" 120 >"$tmp/out.json" 2>>"$tmp/drv.log" &
    drv_pid=$!
}
# drv_wait_log PATTERN [N] - until the log has N (1) lines matching PATTERN
log_has() { [ "$(grep -cE -- "$1" "$tmp/drv.log")" -ge "$2" ]; }
drv_wait_log() { poll_until 60 log_has "$1" "${2:-1}"; }
drv_stop() { kill -TERM "$drv_pid"; wait "$drv_pid"; drv_rc=$?; drv_pid=; }
drv_wait() { wait "$drv_pid"; drv_rc=$?; drv_pid=; }
# run_until CONF PATTERN [N] - run the driver until its log shows PATTERN
run_until() {
    drv_start "$1"
    if drv_wait_log "$2" "${3:-1}"; then drv_stop; else drv_stop; drv_rc=99; fi
}

# ---- 1. three messages fetched, flagged \Seen ----
msg m1 'Ann <ann@sender.example>' 'first one' bounce@sender.example
msg m2 'bob@sender.example' 'second one'
msg m3 'cy@sender.example' 'third one'
imap append INBOX "$tmp/m1.eml" "$tmp/m2.eml" "$tmp/m3.eml"
c=$(conf seen)
run_until "$c" 'INBOX checked, 3 message'
check "fetch: the driver ran" [ "$drv_rc" -eq 0 ]
cp "$tmp/out.json" "$tmp/first.json"
expect "fetch: 3 entries" "$tmp/first.json" 'o["count"] == 3'
expect "fetch: subjects" "$tmp/first.json" \
    'sorted(e["attrs"]["subject"] for e in o["entries"]) == ["first one", "second one", "third one"]'
expect "fetch: from" "$tmp/first.json" \
    'sorted(e["attrs"]["from"] for e in o["entries"]) == ["ann@sender.example", "bob@sender.example", "cy@sender.example"]'
expect "fetch: mail:received on the channel" "$tmp/first.json" \
    "all(e['eci'] == '$eci' and e['domain'] == 'mail' and e['type'] == 'received' for e in o['entries'])"
expect "fetch: envelope.queue_id names user, host, folder, uidvalidity, uid" "$tmp/first.json" \
    'sorted(int(e["attrs"]["envelope"]["queue_id"].split("/")[-1]) for e in o["entries"]) == [1, 2, 3] and all(e["attrs"]["envelope"]["queue_id"].startswith("imap:test@127.0.0.1/INBOX/") for e in o["entries"])'
expect "fetch: envelope.mail_from from Return-Path" "$tmp/first.json" \
    '{e["attrs"]["subject"]: e["attrs"]["envelope"]["mail_from"] for e in o["entries"]} == {"first one": "bounce@sender.example", "second one": "", "third one": ""}'
expect "fetch: envelope.rcpt_to is the channel address" "$tmp/first.json" \
    "all(e['attrs']['envelope']['rcpt_to'] == '$eci@picos.localhost' for e in o['entries'])"
expect "fetch: the engine was woken" "$tmp/first.json" 'o["wakes"] >= 3'
imap flags INBOX >"$tmp/flags.json"
expect "fetch: all three flagged \\Seen" "$tmp/flags.json" \
    'sorted(o) == ["1", "2", "3"] and all("\\Seen" in f for f in o.values())'
expect "stop is prompt (in IDLE)" "$tmp/first.json" 'o["stop_ms"] < 10000'

# ---- 2. run again: nothing new ----
run_until "$c" 'INBOX checked, 0 message'
check "again: the driver ran" [ "$drv_rc" -eq 0 ]
expect "again: still 3 entries" "$tmp/out.json" 'o["count"] == 3'

# ---- 3. made unseen again (a crash between commit and flag): deduplicated
imap unsee INBOX
run_until "$c" 'INBOX checked, 3 message'
check "dedupe: the driver ran" [ "$drv_rc" -eq 0 ]
expect "dedupe: still 3 entries" "$tmp/out.json" 'o["count"] == 3'
logged "dedupe: answered as already delivered" 'already delivered'
imap flags INBOX >"$tmp/flags.json"
expect "dedupe: flagged \\Seen again" "$tmp/flags.json" \
    'all("\\Seen" in f for f in o.values())'

# ---- 4. IDLE: a message appended while the fetcher waits ----
drv_start "$c" 4
if drv_wait_log 'INBOX checked, 0 message'; then
    msg m4 'dee@sender.example' 'fourth one'
    imap append INBOX "$tmp/m4.eml"
    drv_wait
else
    drv_stop; drv_rc=99
fi
check "idle: the new message arrived" [ "$drv_rc" -eq 0 ]
logged "idle: the session used IDLE" 'folder INBOX uidvalidity [0-9]+, IDLE'
expect "idle: 4 entries" "$tmp/out.json" 'o["count"] == 4'

# ---- 5. the connection drops: Dovecot stopped and started again ----
drv_start "$c" 5
if drv_wait_log 'INBOX checked, 0 message'; then
    dv_stop
    drv_wait_log 'reconnecting in'
    dv_start
    msg m5 'eve@sender.example' 'fifth one'
    imap append INBOX "$tmp/m5.eml"
    drv_wait
else
    drv_stop; drv_rc=99
fi
check "reconnect: the message sent after the restart arrived" [ "$drv_rc" -eq 0 ]
logged "reconnect: the drop was noticed" 'reconnecting in'
check "reconnect: logged in twice" log_has 'logged in to' 2
expect "reconnect: 5 entries" "$tmp/out.json" \
    'o["count"] == 5 and "fifth one" in [e["attrs"]["subject"] for e in o["entries"]]'

# ---- 6. the channel refuses a sender: flagged anyway, no event ----
msg p1 'mallory@elsewhere.example' 'not allowed'
msg p2 'friend@allowed.example' 'allowed'
imap append Policy "$tmp/p1.eml" "$tmp/p2.eml"
c=$(conf policy folder=Policy channel="$eci2")
run_until "$c" 'Policy checked, 2 message'
check "policy: the driver ran" [ "$drv_rc" -eq 0 ]
expect "policy: only the allowed one became an event" "$tmp/out.json" \
    "o['count'] == 6 and [e['attrs']['subject'] for e in o['entries'] if e['eci'] == '$eci2'] == ['allowed']"
logged "policy: the refusal is logged" '550 5.7.1 .*marked done in the mailbox anyway'
imap flags Policy >"$tmp/flags.json"
expect "policy: both flagged \\Seen" "$tmp/flags.json" \
    'len(o) == 2 and all("\\Seen" in f for f in o.values())'

# ---- 7. an unknown channel: the mail stays, unflagged ----
msg o1 'ann@sender.example' 'orphan'
imap append Orphans "$tmp/o1.eml"
c=$(conf orphan folder=Orphans channel=nosuchchannel)
run_until "$c" 'reconnecting in'
check "unknown channel: the driver ran" [ "$drv_rc" -eq 0 ]
logged "unknown channel: logged" '550 5.1.1 .*left in the mailbox'
expect "unknown channel: no entry" "$tmp/out.json" 'o["count"] == 6'
imap flags Orphans >"$tmp/flags.json"
expect "unknown channel: not flagged" "$tmp/flags.json" \
    'len(o) == 1 and all("\\Seen" not in f for f in o.values())'

# ---- 8. move mode, another event, polling without IDLE ----
msg v1 'ann@sender.example' 'move me'
msg v2 'bob@sender.example' 'me too'
imap append Inbound "$tmp/v1.eml" "$tmp/v2.eml"
c=$(conf move folder=Inbound after=move move_to=Processed event=test:moved \
        idle=no poll_interval=1s)
run_until "$c" 'Inbound checked, 0 message'
check "move: the driver ran" [ "$drv_rc" -eq 0 ]
logged "move: polled (IDLE off)" 'folder Inbound uidvalidity [0-9]+, polling'
expect "move: two test:moved events" "$tmp/out.json" \
    "sorted(e['attrs']['subject'] for e in o['entries'] if e['domain'] == 'test' and e['type'] == 'moved') == ['me too', 'move me']"
check "move: Inbound is empty" [ "$(imap count Inbound)" -eq 0 ]
check "move: Processed has both" [ "$(imap count Processed)" -eq 2 ]

# ---- 8b. a server without IDLE, MOVE, UIDPLUS: polling, COPY + \Deleted
imap_user="old"
imap append INBOX "$tmp/v1.eml" "$tmp/v2.eml"
c=$(conf old user=old after=move move_to=Done poll_interval=1s)
run_until "$c" 'INBOX checked, 0 message'
check "old server: the driver ran" [ "$drv_rc" -eq 0 ]
logged "old server: polling, as it has no IDLE" 'folder INBOX uidvalidity [0-9]+, polling'
expect "old server: two more events" "$tmp/out.json" 'o["count"] == 10'
check "old server: copied to Done" [ "$(imap count Done)" -eq 2 ]
imap flags INBOX >"$tmp/flags.json"
expect "old server: left \\Deleted (no UID EXPUNGE without UIDPLUS)" "$tmp/flags.json" \
    'len(o) == 2 and all("\\Deleted" in f and "\\Seen" in f for f in o.values())'
imap_user="test"

# ---- 9. TLS: imaps and STARTTLS, the certificate checked ----
c=$(conf imaps port="$sport" tls=imaps tls_ca_file="$tmp/cert.pem")
run_until "$c" 'INBOX checked'
check "imaps: the driver ran" [ "$drv_rc" -eq 0 ]
logged "imaps: logged in over TLS" "logged in to 127.0.0.1 port $sport as test \\(imaps\\)"
c=$(conf starttls tls=starttls tls_ca_file="$tmp/cert.pem")
run_until "$c" 'INBOX checked'
check "starttls: the driver ran" [ "$drv_rc" -eq 0 ]
logged "starttls: logged in over TLS" "logged in to 127.0.0.1 port $port as test \\(starttls\\)"
c=$(conf untrusted port="$sport" tls=imaps)
run_until "$c" 'reconnecting in'
logged "imaps without the CA: refused" 'certificate of 127.0.0.1 not trusted'
check "imaps without the CA: no login" [ "$(grep -c 'logged in' "$tmp/drv.log")" -eq 0 ]
c=$(conf wrongname host=localhost tls=starttls tls_ca_file="$tmp/cert.pem")
run_until "$c" 'reconnecting in'
logged "starttls under another name: refused" 'certificate of localhost not trusted: hostname mismatch'
check "starttls under another name: no login" [ "$(grep -c 'logged in' "$tmp/drv.log")" -eq 0 ]

# ---- 10. configuration errors ----
# bad_conf NAME TEXT CONF : the driver refuses CONF, saying TEXT
bad_conf() {
    "$tmp/imap_driver" "$3" 0 10 >/dev/null 2>"$tmp/drv.log"; rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$2" "$tmp/drv.log"; then ok "$1"; else
        bad "$1: exit $rc"; cat "$tmp/drv.log"; fi
}
c=$(conf nochan channel=)
bad_conf "conf: channel missing" "imap_box_channel: missing" "$c"
c=$(conf badtls tls=ssl)
bad_conf "conf: bad tls mode" 'imap_box_tls: "ssl"' "$c"
c=$(conf nomove after=move)
bad_conf "conf: move without a folder" "imap_box_move_to: missing" "$c"
c=$(conf nopw password_file="$tmp/none")
bad_conf "conf: password file missing" "imap_box_password_file: $tmp/none" "$c"
c=$(conf twopw password_env=HOME)
bad_conf "conf: two password sources" "give exactly one of" "$c"
c=$(conf badtime poll_interval=soon)
bad_conf "conf: bad time" 'imap_box_poll_interval: "soon"' "$c"
printf 'database = %s\n' "$db" >"$tmp/none.conf"
"$tmp/imap_driver" "$tmp/none.conf" 0 1 >"$tmp/out.json" 2>"$tmp/drv.log"
check "conf: no mailbox is valid and does nothing" [ $? -eq 1 ]

# ---- 11. the password from the environment ----
c=$(conf env password_file= password_env=IMAP_TEST_PASSWORD)
export IMAP_TEST_PASSWORD=s3cret
run_until "$c" 'INBOX checked'
unset IMAP_TEST_PASSWORD
logged "password from the environment" 'logged in to 127.0.0.1'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
