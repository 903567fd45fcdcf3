#!/bin/sh
# milter.sh BUILD_DIR - picomail-milter end to end through a real Postfix:
# a private Postfix instance (postfix-lib.sh) on 127.0.0.1:$SMTP_PORT with
# smtpd_milters pointing at BUILD_DIR/picomail-milter on a temporary
# database made with BUILD_DIR/picomail; mail to the test mail_domain is
# relayed to discard: (the daemon is not needed).  swaks speaks SMTP to it
# and each case checks the SMTP replies, Postfix's maillog and the milter's
# log.  Needs root, postfix and swaks.  Ends with "N passed, N failed".
#
# Ports: SMTP_PORT (default 2526) and MILTER_PORT (default 2427) from the
# environment; KEEP=1 keeps the temporary directory (logs) for a post-mortem.
set -u
cd "$(dirname "$0")/../.." || exit 2
build=${1:-build}
case $build in
/*) ;;
*) build=$(pwd)/$build ;;
esac
pm=$build/picomail
milter=$build/picomail-milter
SMTP_PORT=${SMTP_PORT:-2526}
MILTER_PORT=${MILTER_PORT:-2427}
DOMAIN=picos.test

. tests/mail/postfix-lib.sh

for need in "$pm" "$milter"; do
    [ -x "$need" ] || { echo "milter.sh: $need not built"; echo "0 passed, 1 failed"; exit 1; }
done
for need in postfix swaks; do
    command -v $need >/dev/null 2>&1 ||
        { echo "milter.sh: $need is not installed"; echo "0 passed, 1 failed"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "milter.sh: must run as root"; echo "0 passed, 1 failed"; exit 1; }

tmp=$(mktemp -d /tmp/picomail-milter.XXXXXX) || exit 2
chmod 755 "$tmp"
pf=$tmp/pf
mlog=$tmp/milter.log
mpid=
cleanup() {
    if [ -n "$mpid" ] && kill -0 "$mpid" 2>/dev/null; then
        kill "$mpid" 2>/dev/null
        wait "$mpid" 2>/dev/null
    fi
    pf_stop "$pf"
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

pass=0; fail=0
ok() {      # ok NAME : a check passed
    pass=$((pass + 1))
}
bad() {     # bad NAME [FILE] : a check failed; show FILE
    fail=$((fail + 1)); echo "FAIL $1"
    [ $# -ge 2 ] && cut -c1-200 "$2" | grep -v '^ *-> ' | tail -25 | sed 's/^/    /'
}
# wait_for FILE TEXT SECONDS : until FILE contains TEXT (fixed string)
wait_for() {
    _end=$(( $(date +%s) + $3 ))
    until grep -qF -- "$2" "$1" 2>/dev/null; do
        [ "$(date +%s)" -ge "$_end" ] && return 1
        sleep 0.1
    done
}

# ---- the database: one pico and its channels ----
conf=$tmp/picomail.conf
db=$tmp/p.db
cat > "$conf" <<EOF
database = $db
mail_domain = $DOMAIN
milter_listen = inet:$MILTER_PORT@127.0.0.1
trusted_authserv_id = mx.$DOMAIN
log = stderr
EOF
json() {    # json KEY : a member of the JSON object in $tmp/out
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/out" "$1"
}
newch() {   # newch ARGS... : make a channel of alice, print its ECI
    "$pm" -c "$conf" --db "$db" channel new alice --json "$@" > "$tmp/out" &&
        json eci
}
if ! "$pm" -c "$conf" --db "$db" init >/dev/null ||
   ! "$pm" -c "$conf" --db "$db" pico new alice >/dev/null; then
    echo "cannot make the database"; echo "0 passed, 1 failed"; exit 1
fi
ch_open=$(newch --alias helpdesk)                   # anyone
ch_policy=$(newch --deny 'secret:*')                # no secret:* events
ch_senders=$(newch --sender bob@example.net --sender trusted.example)
ch_bob=$(newch --sender bob@example.net)            # bob only
ch_dkim=$(newch)                                    # needs a DKIM pass
for v in "$ch_open" "$ch_policy" "$ch_senders" "$ch_bob" "$ch_dkim"; do
    [ -n "$v" ] || { echo "cannot make the channels"; echo "0 passed, 1 failed"; exit 1; }
done
# require_dkim: "channel new --require-dkim" when the CLI has it, else set
# the column directly
if "$pm" channel --help 2>&1 | grep -q -- --require-dkim; then
    "$pm" -c "$conf" --db "$db" channel rm "$ch_dkim" >/dev/null
    ch_dkim=$(newch --require-dkim)
else
    sqlite3 "$db" "UPDATE channels SET require_dkim = 1 WHERE eci = '$ch_dkim'"
fi

# ---- the milter ----
"$milter" -c "$conf" -f -d 2> "$mlog" &
mpid=$!
if wait_for "$mlog" "listening on" 20; then
    ok
else
    bad "the milter starts" "$mlog"
    echo "$pass passed, $fail failed"; exit 1
fi

# ---- Postfix ----
pf_setup "$pf" "$SMTP_PORT" || { echo "pf_setup failed"; echo "$pass passed, 1 failed"; exit 1; }
pf_conf "$pf" "myhostname = mx.$DOMAIN" \
    "relay_domains = $DOMAIN, relay.test" \
    "transport_maps = inline:{ $DOMAIN=discard:, relay.test=discard: }" \
    "smtpd_relay_restrictions = reject_unauth_destination" \
    "smtpd_milters = inet:127.0.0.1:$MILTER_PORT" \
    "milter_default_action = tempfail" || exit 1
pf_start "$pf" || { echo "pf_start failed"; echo "$pass passed, 1 failed"; exit 1; }
maillog=$(pf_log "$pf")

# ---- cases ----
n=0
# smtp ARGS... : one swaks session; the transcript goes to $tmp/smtp.N and
# its name to $out
smtp() {
    n=$((n + 1)); out=$tmp/smtp.$n
    swaks --server "127.0.0.1:$SMTP_PORT" --helo client.test --timeout 60 \
        "$@" > "$out" 2>&1
}
# replied NAME REGEX : the last transcript has a server line matching REGEX
replied() {
    if grep -Eq -- "^<(-|\*\*) +$2" "$out"; then ok; else bad "$1" "$out"; fi
}
# not_replied NAME REGEX : ... and none matching REGEX
not_replied() {
    if grep -Eq -- "^<(-|\*\*) +$2" "$out"; then bad "$1" "$out"; else ok; fi
}
# queued : the queue id of the last transcript's accepted message
queued() {
    sed -n 's/^<-  250 .*queued as \([0-9A-Za-z]*\).*/\1/p' "$out" | tail -1
}
# delivered NAME QID ADDR : Postfix delivered message QID to ADDR
delivered() {
    if [ -n "$2" ] && wait_for "$maillog" "$2: to=<$3>" 30 &&
        grep -F "$2: to=<$3>" "$maillog" | grep -q 'status=sent'; then
        ok
    else
        bad "$1 (queue id '$2', to $3)" "$maillog"
    fi
}
# logged NAME TEXT : the milter logged a line with TEXT
logged() {
    if wait_for "$mlog" "$2" 10; then ok; else bad "$1" "$mlog"; fi
}

# unknown channel: 550 5.1.1 at RCPT
smtp --from alice@example.net --to "nosuch@$DOMAIN" --quit-after RCPT
replied "unknown channel refused at RCPT" "550 5.1.1 <nosuch@$DOMAIN>: no such channel"
logged "the refusal is logged" "to=<nosuch@$DOMAIN>: reject: 550 5.1.1"

# known channel: accepted, queued, delivered
smtp --from alice@example.net --to "$ch_open@$DOMAIN"
replied "known channel accepted" "250 2.0.0 Ok: queued as"
delivered "known channel delivered" "$(queued)" "$ch_open@$DOMAIN"
logged "the acceptance is logged" "to=<$ch_open@$DOMAIN>: accept (channel $ch_open)"

# an alias, with an explicit event, is a channel address too
smtp --from alice@example.net --to "helpdesk+note.add@$DOMAIN"
replied "alias accepted" "250 2.0.0 Ok: queued as"

# channel names fold case (MTAs may fold them)
smtp --from alice@example.net --to "$(echo "$ch_open" | tr "[:lower:]" "[:upper:]")@$DOMAIN"
replied "upper-case ECI accepted" "250 2.0.0 Ok: queued as"

# a channel address whose event part has no DOMAIN.TYPE
smtp --from alice@example.net --to "$ch_open+nodot@$DOMAIN" --quit-after RCPT
replied "malformed channel address refused" "550 5.1.3"

# event policy: secret:* denied, other events allowed
smtp --from alice@example.net --to "$ch_policy+secret.read@$DOMAIN" --quit-after RCPT
replied "denied event refused at RCPT" "550 5.7.1 .*event not allowed by channel policy"
smtp --from alice@example.net --to "$ch_policy+public.read@$DOMAIN"
replied "allowed event accepted" "250 2.0.0 Ok: queued as"

# envelope sender not in the channel's sender list: 550 5.7.1 at RCPT
smtp --from eve@evil.example --to "$ch_senders@$DOMAIN" --quit-after RCPT
replied "unlisted envelope sender refused at RCPT" "550 5.7.1 .*sender not accepted by this channel"
smtp --from '<>' --to "$ch_senders@$DOMAIN" --quit-after RCPT
replied "null sender refused by a sender list" "550 5.7.1"
smtp --from bob@example.net --to "$ch_senders@$DOMAIN"
replied "listed envelope sender accepted" "250 2.0.0 Ok: queued as"
smtp --from carol@mx.trusted.example --to "$ch_senders@$DOMAIN" --quit-after RCPT
replied "a domain rule is that domain only" "550 5.7.1"

# From: not accepted: 550 5.7.1 after DATA
smtp --from bob@example.net --to "$ch_senders@$DOMAIN" --header "From: Bob <eve@evil.example>"
replied "unlisted From: refused after DATA" "550 5.7.1 .*From: address not accepted"
not_replied "no queue id for the refused message" "250 2.0.0 Ok: queued"
logged "the From: refusal is logged" "header_from=<eve@evil.example>: reject: 550 5.7.1"
smtp --from bob@example.net --to "$ch_senders@$DOMAIN" --header "From: Carol <carol@trusted.example>"
replied "listed From: domain accepted" "250 2.0.0 Ok: queued as"
# the display name is never the address
smtp --from bob@example.net --to "$ch_bob@$DOMAIN" --header 'From: "bob@example.net" <eve@evil.example>'
replied "display name not taken for the address" "550 5.7.1 .*From: address not accepted"

# require_dkim: a trusted A-R with dkim=pass (folded, as milters write it)
msg() {     # msg FILE A-R-LINES... : a message with these header lines
    _f=$1; shift
    {
        for _h in "$@"; do printf '%s\r\n' "$_h"; done
        printf 'From: bob@example.net\r\nTo: x@%s\r\nSubject: dkim\r\n\r\nbody\r\n' "$DOMAIN"
    } > "$_f"
}
msg "$tmp/ar-pass.eml" "Authentication-Results: mx.$DOMAIN;" \
    "	dkim=pass (2048-bit key) header.d=example.net header.i=@example.net;" \
    "	spf=pass smtp.mailfrom=bob@example.net"
smtp --from bob@example.net --to "$ch_dkim@$DOMAIN" --data "@$tmp/ar-pass.eml"
replied "trusted dkim=pass accepted" "250 2.0.0 Ok: queued as"
delivered "trusted dkim=pass delivered" "$(queued)" "$ch_dkim@$DOMAIN"
msg "$tmp/ar-fail.eml" "Authentication-Results: mx.$DOMAIN; dkim=fail header.d=example.net"
smtp --from bob@example.net --to "$ch_dkim@$DOMAIN" --data "@$tmp/ar-fail.eml"
replied "trusted dkim=fail refused" "550 5.7.1 .*requires a DKIM pass"
msg "$tmp/ar-other.eml" "Authentication-Results: other.example; dkim=pass header.d=example.net"
smtp --from bob@example.net --to "$ch_dkim@$DOMAIN" --data "@$tmp/ar-other.eml"
replied "untrusted authserv-id refused" "550 5.7.1 .*requires a DKIM pass"
smtp --from bob@example.net --to "$ch_dkim@$DOMAIN"
replied "no A-R at all refused" "550 5.7.1 .*requires a DKIM pass"

# mixed at RCPT: the good recipient is delivered, the unknown one refused
smtp --from alice@example.net --to "$ch_open@$DOMAIN,nosuch2@$DOMAIN"
replied "mixed: unknown recipient refused" "550 5.1.1 <nosuch2@$DOMAIN>"
replied "mixed: message queued" "250 2.0.0 Ok: queued as"
delivered "mixed: good recipient delivered" "$(queued)" "$ch_open@$DOMAIN"

# mixed at end of message: From: carol@trusted.example suits ch_senders but
# not ch_bob, which is removed; the other is delivered
smtp --from bob@example.net --to "$ch_senders@$DOMAIN,$ch_bob@$DOMAIN" \
    --header "From: carol@trusted.example"
replied "mixed after DATA: message queued" "250 2.0.0 Ok: queued as"
qid=$(queued)
delivered "mixed after DATA: accepted recipient delivered" "$qid" "$ch_senders@$DOMAIN"
logged "mixed after DATA: removal logged" "to=<$ch_bob@$DOMAIN> header_from=<carol@trusted.example>: recipient removed: 550 5.7.1"
pf_wait_empty "$pf" 30 || bad "the queue empties"
if [ -n "$qid" ] && grep -F "$qid: to=<$ch_bob@$DOMAIN>" "$maillog" >/dev/null; then
    bad "mixed after DATA: removed recipient not delivered" "$maillog"
else
    ok
fi

# other domains are not the milter's business
smtp --from alice@example.net --to "someone@elsewhere.test" --quit-after RCPT
replied "other domain relay-denied by Postfix" "554 5.7.1 .*Relay access denied"
smtp --from alice@example.net --to "someone@relay.test"
replied "relayed domain accepted" "250 2.0.0 Ok: queued as"
delivered "relayed domain delivered" "$(queued)" "someone@relay.test"
# a relayed recipient keeps a message whose channel recipient is refused
smtp --from bob@example.net --to "$ch_bob@$DOMAIN,other@relay.test" \
    --header "From: eve@evil.example"
replied "refused channel + relayed recipient: queued" "250 2.0.0 Ok: queued as"
delivered "refused channel + relayed recipient: relayed one delivered" "$(queued)" "other@relay.test"
if grep -Eq 'elsewhere\.test|relay\.test' "$mlog"; then
    bad "the milter logged nothing about other domains" "$mlog"
else
    ok
fi

# hostile headers: 300 A-R fields (only the first 50 are read, so the
# trusted pass in the last is not seen) and a 60 KB field; then an open
# channel takes the same message
{
    i=0
    while [ $i -lt 300 ]; do
        printf 'Authentication-Results: other%d.example; dkim=pass\r\n' $i
        i=$((i + 1))
    done
    printf 'Authentication-Results: mx.%s; dkim=pass header.d=example.net\r\n' "$DOMAIN"
    printf 'X-Big: %s\r\n' "$(head -c 60000 /dev/zero | tr '\0' a)"
    printf 'From: bob@example.net\r\nSubject: big\r\n\r\nbody\r\n'
} > "$tmp/hostile.eml"
smtp --from bob@example.net --to "$ch_dkim@$DOMAIN" --data "@$tmp/hostile.eml"
replied "A-R fields past the bound not read" "550 5.7.1 .*requires a DKIM pass"
logged "A-R fields past the bound logged" "Authentication-Results fields past the first 50 ignored"
smtp --from alice@example.net --to "$ch_open@$DOMAIN" --data "@$tmp/hostile.eml"
replied "hostile headers on an open channel accepted" "250 2.0.0 Ok: queued as"
# the trusted A-R as the 50th field is read
sed '1,251d' "$tmp/hostile.eml" > "$tmp/hostile50.eml"
smtp --from bob@example.net --to "$ch_dkim@$DOMAIN" --data "@$tmp/hostile50.eml"
replied "trusted A-R within the bound read" "250 2.0.0 Ok: queued as"

# the milter down: milter_default_action = tempfail gives 451
kill -TERM "$mpid"
wait "$mpid"; rc=$?
mpid=
if [ "$rc" -eq 0 ] && grep -q 'stopped$' "$mlog"; then ok; else bad "SIGTERM stops the milter cleanly (exit $rc)" "$mlog"; fi
smtp --from alice@example.net --to "$ch_open@$DOMAIN" --quit-after RCPT
replied "milter down: 451" "451 4.7.1"
not_replied "milter down: nothing accepted" "250 2.1.5"

if pf_wait_empty "$pf" 30; then ok; else bad "the queue empties at the end"; fi
if pf_stop "$pf"; then ok; else bad "pf_stop"; fi
if pf_stop "$pf"; then ok; else bad "pf_stop twice"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
