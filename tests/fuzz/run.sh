#!/bin/sh
# run.sh SECONDS - build the parser fuzzer with clang's libFuzzer, replay
# every input under regress/parser/ (inputs that once crashed), then fuzz
# from a copy of corpus/parser/ for SECONDS seconds.
set -u
cd "$(dirname "$0")/../.." || exit 2
secs=${1:-60}
out=build/fuzz
mkdir -p "$out"
if ! clang -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 \
    -fsanitize=fuzzer,address,undefined -iquote include \
    -o "$out/fuzz_parser" tests/fuzz/fuzz_parser.c \
    src/util/*.c src/krl/lexer.c src/krl/parser.c src/krl/diag.c src/krl/ast_dump.c \
    $(pkg-config --cflags --libs jansson libpcre2-8) -lm; then
    echo "0 passed, 1 failed"
    exit 1
fi
pass=0; fail=0
for f in tests/fuzz/regress/parser/*; do
    [ -f "$f" ] || continue
    if "$out/fuzz_parser" "$f" >/dev/null 2>&1; then
        pass=$((pass + 1))
    else
        echo "regression input crashes: $f"; fail=$((fail + 1))
    fi
done
rm -rf "$out/corpus" && cp -r tests/fuzz/corpus/parser "$out/corpus"
if "$out/fuzz_parser" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$out/corpus" >"$out/fuzz.log" 2>&1; then
    pass=$((pass + 1))
    grep -E 'stat::number_of_executed_units' "$out/fuzz.log"
else
    fail=$((fail + 1))
    tail -n 40 "$out/fuzz.log"
    echo "fuzzer found a crash; the input is in $out (add it to tests/fuzz/regress/parser/)"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
