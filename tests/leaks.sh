#!/bin/sh
# leaks.sh BUILD_DIR - every conformance case replayed under valgrind
# (memcheck, leak check): a case passes when valgrind finds no error and
# no definitely or indirectly lost block.  The conformance runner itself
# does not judge exit codes, so this is where leaks in replay show.
set -u
cd "$(dirname "$0")/.." || exit 2
bin=${1:-build}/picomail
cases=../shared/conformance/cases
pass=0; fail=0
for jsonl in "$cases"/*.jsonl; do
    name=$(basename "$jsonl" .jsonl)
    list=$(sed -n 's/^# rulesets: *//p' "$jsonl" | head -n 1)
    if [ -n "$list" ]; then
        list=$(printf '%s' "$list" | tr ',' '\n' | sed "s|^|$cases/|" | paste -sd, -)
    else
        list="$cases/$name.krl"
    fi
    if valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=9 "$bin" replay "$list" "$jsonl" >/dev/null 2>/tmp/leaks.$$; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $name"; head -n 30 /tmp/leaks.$$
    fi
done
rm -f /tmp/leaks.$$
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
