#!/bin/sh
# compare_reference.sh [BUILD] - the same two rulesets (hello world, and a
# counter with one entity-variable write per event) through picomail's
# engine and through the reference pico engine (pico-engine-core 1.3.0,
# run by ../shared/reference-engine/harness.js, installed with `npm ci` in a
# temporary folder; needs node and the npm registry), 100 events in
# flight, side by side.  picomail's figures are durable (SQLite WAL,
# synchronous=FULL); the reference keeps its state in memory.  Prints
# figures only.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
ref=../shared/reference-engine
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== picomail ($build/bench_engine, one pico)"
BENCH_PICOS=0 "$build/bench_engine" | grep -E "in flight|one at a time|RSS"

if ! command -v npm >/dev/null 2>&1 || [ ! -f "$ref/harness.js" ]; then
    echo "== reference engine: skipped (needs npm and $ref)"
    exit 0
fi
cp -r "$ref/." "$tmp/"
chmod -R u+w "$tmp"
(cd "$tmp" && npm ci --no-audit --no-fund >/dev/null 2>&1) || {
    echo "== reference engine: npm ci failed"; exit 0; }
cat > "$tmp/hello.krl" <<'KRL'
ruleset bench.hello {
  rule hello {
    select when echo hello
    send_directive("say", {"something": "Hello World"})
  }
}
KRL
cat > "$tmp/counter.krl" <<'KRL'
ruleset bench.counter {
  rule inc {
    select when echo hello
    send_directive("say", {"n": ent:n.defaultsTo(0) + 1})
    fired { ent:n := ent:n.defaultsTo(0) + 1 }
  }
}
KRL
echo '{"event":{"domain":"echo","type":"hello","attrs":{}}}' > "$tmp/ev.jsonl"
echo "== reference engine (in memory), 100 in flight, median of 3"
for r in hello counter; do
    for i in 1 2 3; do
        (cd "$tmp" && node harness.js "$r.krl" ev.jsonl --bench 20000 \
            --concurrency 100 --warmup 2000)
    done | python3 -c '
import json, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
rates = sorted(r["events_per_sec"] for r in runs)
rss = max(r["rss_mb_end"] for r in runs)
print("%-28s %10.0f events/s  rss %.0f MiB" % (sys.argv[1], rates[len(rates) // 2], rss))
' "$r, 100 in flight"
done
