#!/bin/sh
# run-unit.sh - run unit test binaries and add up their "N passed, N failed".
# RUN_WRAPPER (e.g. "valgrind -q --error-exitcode=9") is put before each.
passed=0; failed=0
for t in "$@"; do
    # shellcheck disable=SC2086
    out=$(${RUN_WRAPPER:-} "$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | tail -n 1)
    p=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then
        printf '%s\n' "$out" | tail -n 20
        echo "FAIL $t: crashed or printed no summary (exit $rc)"
        failed=$((failed + 1)); continue
    fi
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | grep -v '^ok ' | head -n 60
        echo "FAIL $t: $f failed (exit $rc)"
        [ "$f" -eq 0 ] && f=1
    else
        echo "ok   $t: $p passed"
    fi
    passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
