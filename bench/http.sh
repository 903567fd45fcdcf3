#!/bin/sh
# http.sh [BUILD_DIR] - Sky Event and Sky Cloud over HTTP with wrk: the
# hello event (rulesets/hello.krl, echo:hello name=x) and a query of the
# same ruleset (hellos), at 1, 16 and 64 connections; requests/s and
# latency percentiles, the median of RUNS runs (by requests/s).
#
# The server is tests/http/driver.c: the listener of src/http/ (one
# polling thread; events and queries handed to the backend without
# blocking it) in front of one engine thread that commits the events
# waiting together, durably (synchronous=FULL), and two query threads.
# It is built here against BUILD_DIR/libpicomail.a.  Each line starts
# from a new database.  wrk runs on the same machine.  The load average
# is printed before and after: other work on the machine moves the
# figures a lot.  A benchmark: it prints figures and asserts nothing.
#
# Environment: SECONDS_PER_RUN (default 5), RUNS (default 3), CONNS
# (default "1 16 64"), KINDS (default "event query"), DRIVER_ARGS (e.g.
# "--sync" or "--threads 2", see driver.c), WRK_THREADS (default 1; wrk
# shares the 2 cores with us).
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${1:-build}
SECS=${SECONDS_PER_RUN:-5}
RUNS=${RUNS:-3}
CONNS=${CONNS:-"1 16 64"}
KINDS=${KINDS:-"event query"}
WRK_THREADS=${WRK_THREADS:-1}
DRIVER_ARGS=${DRIVER_ARGS:-}
PM="$BUILD/picomail"

command -v wrk >/dev/null 2>&1 || { echo "http.sh: wrk is not installed (apt-get install wrk)"; exit 2; }
if [ ! -x "$PM" ] || [ ! -f "$BUILD/libpicomail.a" ]; then
    echo "http.sh: build $PM and $BUILD/libpicomail.a first"; exit 2
fi

tmp=$(mktemp -d /tmp/bench_http.XXXXXX)
driver_pid=
cleanup() {
    [ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PKGS="jansson libpcre2-8 sqlite3 libcrypto gmime-3.0 libmicrohttpd"
# shellcheck disable=SC2046,SC2086
cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 -g -iquote include \
    $(pkg-config --cflags $PKGS) -o "$tmp/driver" tests/http/driver.c src/http/*.c \
    "$BUILD/libpicomail.a" $(pkg-config --libs $PKGS) -lm -lpthread || exit 1

# start_server - a new database with the hello ruleset on one pico, and the
# driver on it; sets ECI and PORT
start_server() {
    rm -f "$tmp"/p.db*
    db="$tmp/p.db"
    "$PM" --db "$db" init >/dev/null &&
        "$PM" --db "$db" ruleset register rulesets/hello.krl >/dev/null &&
        "$PM" --db "$db" pico new bench >/dev/null &&
        "$PM" --db "$db" install bench picomail.hello >/dev/null || exit 1
    ECI=$("$PM" --db "$db" --json channel new bench --tag bench |
          sed -n 's/.*"eci":"\([^"]*\)".*/\1/p')
    # shellcheck disable=SC2086
    "$tmp/driver" --db "$db" $DRIVER_ARGS >"$tmp/port" 2>"$tmp/driver.log" &
    driver_pid=$!
    i=0
    while ! grep -q '^port ' "$tmp/port" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 1000 ] || ! kill -0 "$driver_pid" 2>/dev/null; then
            echo "http.sh: the driver did not start:"; cat "$tmp/driver.log"; exit 1
        fi
        sleep 0.01
    done
    PORT=$(sed -n 's/^port //p' "$tmp/port")
}

stop_server() {
    kill "$driver_pid" 2>/dev/null
    wait "$driver_pid" 2>/dev/null
    driver_pid=
}

# to_ms - a wrk duration (123.45us, 1.20ms, 2.00s) in milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# measure NAME PATH CONNS - RUNS runs; prints the median one
measure() {
    name=$1; path=$2; c=$3
    t=$WRK_THREADS; [ "$t" -gt "$c" ] && t=$c
    wrk -t"$t" -c"$c" -d1s "http://127.0.0.1:$PORT$path" >/dev/null 2>&1  # warm-up
    : >"$tmp/runs"
    r=0
    while [ $r -lt "$RUNS" ]; do
        wrk -t"$t" -c"$c" -d"${SECS}s" --latency "http://127.0.0.1:$PORT$path" >"$tmp/wrk.out" 2>&1
        rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$tmp/wrk.out")
        p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$tmp/wrk.out")")
        p90=$(to_ms "$(awk '$1 == "90%" {print $2}' "$tmp/wrk.out")")
        p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$tmp/wrk.out")")
        non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$tmp/wrk.out")
        if [ -z "$rps" ] || grep -q 'Socket errors' "$tmp/wrk.out"; then
            echo "http.sh: $name at $c connections:"; cat "$tmp/wrk.out"
            tail -n 5 "$tmp/driver.log"
        fi
        echo "${rps:-0} $p50 $p90 $p99 ${non2xx:-0}" >>"$tmp/runs"
        r=$((r + 1))
    done
    sort -n "$tmp/runs" | awk -v n="$RUNS" -v name="$name" -v c="$c" \
        'NR == int((n + 1) / 2) {
            printf "%-7s %3d conns %10.0f req/s   p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms%s\n",
                   name, c, $1, $2, $3, $4, ($5 > 0 ? "   (" $5 " non-2xx!)" : "") }'
}

echo "Sky API over HTTP (wrk -t$WRK_THREADS, ${SECS}s runs, median of $RUNS; driver $DRIVER_ARGS)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for kind in $KINDS; do
    for c in $CONNS; do
        start_server
        if [ "$kind" = event ]; then
            measure event "/sky/event/$ECI/none/echo/hello?name=x" "$c"
        else
            # one event first, so that the query reads a stored count
            wrk -t1 -c1 -d1s "http://127.0.0.1:$PORT/sky/event/$ECI/none/echo/hello?name=x" >/dev/null 2>&1
            measure query "/sky/cloud/$ECI/picomail.hello/hellos" "$c"
        fi
        stop_server
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
