#!/bin/sh
# lmtp.sh [BUILD] - picomaild's LMTP throughput, durable (every 250 after
# an fsync'd commit): smtp-source (Postfix's load generator) sends 1 KB
# messages over the UNIX socket with 1, 4 and 20 sessions, each session
# reusing its connection, to a channel whose pico runs the hello ruleset
# (a mail:received rule storing the mail).  Prints messages/s (median of 3
# runs), the time until every event had run, and picomaild's peak RSS.
# smtp-sink -L over the same socket kind is measured alongside as the
# protocol's ceiling on this machine.  Environment: MESSAGES (default 5000).
set -u
build=${1:-build}
pm="$build/picomail"
n=${MESSAGES:-5000}
tmp=$(mktemp -d)
pid=
sink=
trap 'kill $pid $sink 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
command -v smtp-source >/dev/null || { echo "smtp-source missing (postfix)"; exit 1; }

now() { date +%s.%N; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

run_one() {     # run_one SESSIONS -> messages/s and seconds to drain
    sessions=$1
    rm -f "$tmp"/p.db*
    "$pm" --db "$tmp/p.db" init >/dev/null
    "$pm" --db "$tmp/p.db" pico new demo >/dev/null
    "$pm" --db "$tmp/p.db" ruleset register rulesets/hello.krl >/dev/null
    "$pm" --db "$tmp/p.db" install demo picomail.hello >/dev/null
    eci=$("$pm" --db "$tmp/p.db" --json channel new demo |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["eci"])')
    cat >"$tmp/c.conf" <<CONF
database = $tmp/p.db
mail_domain = picos.test
lmtp_listen = unix:$tmp/lmtp.sock
socketmap_listen =
CONF
    "$build/picomaild" -c "$tmp/c.conf" 2>"$tmp/d.log" &
    pid=$!
    while [ ! -S "$tmp/lmtp.sock" ]; do sleep 0.05; done
    t0=$(now)
    smtp-source -L -s "$sessions" -d -m "$n" -l 1000 -f alice@example.net \
        -t "$eci@picos.test" "unix:$tmp/lmtp.sock"
    t1=$(now)
    until [ "$(sqlite3 "$tmp/p.db" "select count(*) from inbox where state='pending'")" = 0 ]; do
        sleep 0.05
    done
    t2=$(now)
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    kill $pid; wait $pid 2>/dev/null; pid=
    echo "$t0 $t1 $t2 $rss" | awk -v n="$n" '{printf "%.0f %.2f %.1f\n", n/($2-$1), $3-$1, $4/1024}'
}

sink_one() {    # sink_one SESSIONS -> messages/s into smtp-sink -L
    rm -f "$tmp/sink.sock"
    smtp-sink -L -u nobody "unix:$tmp/sink.sock" 1000 &
    sink=$!
    while [ ! -S "$tmp/sink.sock" ]; do sleep 0.05; done
    t0=$(now)
    smtp-source -L -s "$1" -d -m "$n" -l 1000 -f a@example.net -t b@picos.test \
        "unix:$tmp/sink.sock"
    t1=$(now)
    kill $sink; wait $sink 2>/dev/null; sink=
    echo "$t0 $t1" | awk -v n="$n" '{printf "%.0f\n", n/($2-$1)}'
}

echo "picomaild LMTP, $n messages of 1 KB per run, median of 3 runs"
printf "%-9s %12s %16s %12s %14s\n" sessions "messages/s" "all events (s)" "peak RSS MiB" "smtp-sink -L"
for s in 1 4 20; do
    : >"$tmp/r"
    for i in 1 2 3; do run_one $s >>"$tmp/r"; done
    rate=$(cut -d' ' -f1 "$tmp/r" | median)
    drain=$(cut -d' ' -f2 "$tmp/r" | median)
    rss=$(cut -d' ' -f3 "$tmp/r" | sort -n | tail -1)
    ceiling=$(for i in 1 2 3; do sink_one $s; done | median)
    printf "%-9s %12s %16s %12s %14s\n" "$s" "$rate" "$drain" "$rss" "$ceiling"
done
