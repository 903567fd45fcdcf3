#!/bin/sh
# outbox.sh [BUILD] - how fast picomaild's sender empties the outbox: N
# emails queued by one event (a foreach over email:send) and sent through
# smtp-sink (Postfix's test server) as the relay, then N SMS to a local
# Twilio-compatible HTTP endpoint (python3 http.server answering 201).
# Prints sends per second (median of 3 runs).  Environment: N (default
# 2000).
set -u
build=${1:-build}
pm="$build/picomail"
n=${N:-2000}
tmp=$(mktemp -d)
pids=
trap 'kill $pids 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
command -v smtp-sink >/dev/null || { echo "smtp-sink missing (postfix)"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

cat >"$tmp/burst.krl" <<'KRL'
ruleset bench.burst {
  rule mails {
    select when bench mails
    foreach 1.range(event:attrs{"n"}.as("Number")) setting(i)
    email:send("sink@example.net", "bench " + i, "a benchmark message")
  }
  rule sms {
    select when bench sms
    foreach 1.range(event:attrs{"n"}.as("Number")) setting(i)
    sms:send("+15551234567", "bench " + i)
  }
}
KRL
cat >"$tmp/sms.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536        # one write per response: no Nagle stalls
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"sid": "SM1", "status": "queued"}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY

run_one() {     # run_one mails|sms -> sends per second
    kind=$1
    rm -f "$tmp"/p.db*
    sink_port=$(free_port); sms_port=$(free_port)
    "$pm" --db "$tmp/p.db" init >/dev/null
    "$pm" --db "$tmp/p.db" pico new b >/dev/null
    "$pm" --db "$tmp/p.db" ruleset register "$tmp/burst.krl" >/dev/null
    "$pm" --db "$tmp/p.db" install b bench.burst >/dev/null
    eci=$("$pm" --db "$tmp/p.db" --json channel new b |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["eci"])')
    "$pm" --db "$tmp/p.db" event "$eci" bench "$kind" "n:=$n" >/dev/null
    cat >"$tmp/c.conf" <<CONF
database = $tmp/p.db
mail_domain = picos.test
lmtp_listen = unix:$tmp/lmtp.sock
socketmap_listen =
smtp_relay = smtp://127.0.0.1:$sink_port
smtp_tls = no
sms_url = http://127.0.0.1:$sms_port/Messages.json
sms_from = +15550000000
sms_account = AC1
CONF
    smtp-sink -u nobody "127.0.0.1:$sink_port" 1000 & pids="$pids $!"
    python3 "$tmp/sms.py" "$sms_port" & pids="$pids $!"
    sleep 0.3
    t0=$(now)
    "$build/picomaild" -c "$tmp/c.conf" 2>/dev/null & d=$!
    until [ "$(sqlite3 "$tmp/p.db" "select count(*) from outbox where state='sent'" 2>/dev/null)" = "$n" ]; do
        sleep 0.05
    done
    t1=$(now)
    kill $d $pids 2>/dev/null; wait 2>/dev/null; pids=
    echo "$t0 $t1" | awk -v n="$n" '{printf "%.0f\n", n/($2-$1)}'
}

echo "picomaild outbox sender, $n sends per run, median of 3 runs"
for kind in mails sms; do
    rate=$(for i in 1 2 3; do run_one $kind; done | median)
    printf "%-6s %8s sends/s\n" "$kind" "$rate"
done
