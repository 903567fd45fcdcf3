#!/bin/sh
# cli.sh BUILD_DIR - the picomail command end to end on a temporary
# database: every command's normal use, --json output, options before the
# command word, and the exit status and message of errors.
set -u
cd "$(dirname "$0")/.." || exit 2
pm="${1:-build}/picomail"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
db="$tmp/p.db"
pass=0; fail=0

ok() {      # ok NAME COMMAND... : the command succeeds
    name=$1; shift
    if "$@" >"$tmp/out" 2>"$tmp/err"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); echo "FAIL $name"; cat "$tmp/err"
    fi
}
has() {     # has NAME TEXT : the last output contains TEXT
    if grep -qF -- "$2" "$tmp/out"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); echo "FAIL $1: output lacks $2"; cat "$tmp/out"
    fi
}
refused() { # refused NAME STATUS TEXT COMMAND... : fails so, saying TEXT
    name=$1; want=$2; text=$3; shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
    if [ "$rc" -eq "$want" ] && grep -qF -- "$text" "$tmp/err"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $name: exit $rc (want $want), stderr:"; cat "$tmp/err"
    fi
}
json() {    # json KEY : a member of the last output's JSON object
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/out" "$1"
}

ok "init" "$pm" init --db "$db" --json
has "init prints the root" '"root"'
ok "init again" "$pm" --db "$db" init
ok "pico new" "$pm" pico new alice --db "$db" --json
has "pico new prints the name" '"name":"alice"'
ok "child pico" "$pm" pico new bob --parent alice --db "$db"
ok "pico list" "$pm" pico list --db "$db"
has "pico list shows both" "bob"
ok "pico show" "$pm" pico show alice --db "$db" --json
has "pico show has channels" '"channels"'
ok "register" "$pm" ruleset register rulesets/hello.krl --db "$db" --json
has "register prints the rid" '"rid":"picomail.hello"'
ok "ruleset list" "$pm" ruleset list --db "$db"
has "ruleset list" "picomail.hello"
ok "ruleset show" "$pm" ruleset show picomail.hello --db "$db" --json
has "ruleset show has the source" "select when echo hello"
ok "install" "$pm" install alice picomail.hello --db "$db"
ok "channel new" "$pm" channel new alice --tag mail --deny echo:secret --db "$db" --json
has "channel new prints the address" '@picos.localhost'
eci=$(json eci)
ok "channel list" "$pm" channel list alice --db "$db"
has "channel list shows it" "$eci"
ok "event" "$pm" event "$eci" echo hello name=Ada --db "$db" --json
has "event directive" '"Hello Ada!"'
ok "event with a JSON attribute" "$pm" event "$eci" echo hello 'name:="Bea"' --db "$db"
has "JSON attribute" 'Hello Bea!'
ok "query" "$pm" query "$eci" picomail.hello hellos --db "$db"
has "query result" "2"
ok "query with an argument" "$pm" query "$eci" picomail.hello greeting name=Cy --db "$db" --json
has "query argument" '"Hello Cy!"'
ok "ent" "$pm" ent alice picomail.hello count --db "$db"
has "ent value" "2"
ok "log" "$pm" log alice --db "$db"
has "log shows the event" "echo:hello"
ok "channel with sender rules" "$pm" channel new alice --sender example.net \
    --require-dkim --require-dmarc --db "$db"
ok "channel list" "$pm" channel list alice --json --db "$db"
has "sender rules stored" '"senders":["example.net"],"require_dkim":true,"require_dmarc":true'
ok "inbox" "$pm" inbox --db "$db" --json
has "inbox empty without mail" '[]'
refused "inbox takes no argument" 2 "usage: picomail inbox" "$pm" inbox x --db "$db"
ok "flush" "$pm" ruleset flush picomail.hello --db "$db"

refused "unknown command" 2 "unknown command" "$pm" frobnicate
refused "usage error" 2 "usage: picomail event" "$pm" event --db "$db"
refused "unknown ECI" 1 "ECI not found" "$pm" event nosuch echo hello --db "$db"
refused "policy" 1 "Denied by channel policy" "$pm" event "$eci" echo secret --db "$db"
refused "unknown pico" 1 "no such pico" "$pm" pico show nobody --db "$db"
refused "duplicate pico" 1 "already named" "$pm" pico new alice --db "$db"
refused "unknown ruleset" 1 "no such ruleset" "$pm" install alice no.such --db "$db"
refused "not installed" 1 "doesn't have" "$pm" query "$eci" no.such f --db "$db"
printf 'ruleset broken {\n  rule r { select when a b\n    send_directive( }\n}\n' > "$tmp/broken.krl"
refused "broken KRL" 1 "broken.krl:3:" "$pm" ruleset register "$tmp/broken.krl" --db "$db"
refused "check" 1 "broken.krl:3:" "$pm" check "$tmp/broken.krl"
refused "bad attribute" 2 "NAME=VALUE" "$pm" event "$eci" echo hello novalue --db "$db"
refused "bad config" 2 "--config" "$pm" install alice picomail.hello --config '{bad' --db "$db"
refused "missing file" 1 "No such file" "$pm" ruleset register "$tmp/none.krl" --db "$db"
refused "root cannot go" 1 "root pico" "$pm" pico rm root --db "$db"
ok "pico rm" "$pm" pico rm alice --db "$db"
refused "gone with its child" 1 "no such pico" "$pm" pico show bob --db "$db"
ok "help" "$pm" --help
has "help lists commands" "replay"
ok "command help" "$pm" channel --help
has "command help" "usage: picomail channel"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
