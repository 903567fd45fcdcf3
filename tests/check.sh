#!/bin/sh
# check.sh - what `make check` runs: every test, once with a normal build
# and once with AddressSanitizer + UndefinedBehaviorSanitizer, then the
# parser fuzzer for a short while.  Each stage prints "N passed, N failed";
# the last line adds them all up.
#
# Environment: FUZZ_SECONDS (default 60) for the fuzzing stage; JOBS for
# make -j (default 2).
set -u
cd "$(dirname "$0")/.." || exit 2
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# count STAGE - add the last "N passed, N failed" line of $log to the totals
count() {
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "== $1: no result (build or run failed)"
        total_fail=$((total_fail + 1))
        return
    fi
    p=${line%% passed*}
    f=${line#*passed, }; f=${f%% failed*}
    echo "== $1: $line"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

stage() {
    name=$1; shift
    echo "== $name"
    "$@" >"$log" 2>&1
    rc=$?
    grep -v '^ok ' "$log" | tail -n 80
    count "$name"
    if [ $rc -ne 0 ] && ! grep -qE '^[0-9]+ passed, [1-9][0-9]* failed' "$log"; then
        # a non-zero exit that its counts do not explain
        total_fail=$((total_fail + 1))
    fi
}

for variant in normal asan; do
    if [ $variant = normal ]; then
        args="BUILD=build"
    else
        args="BUILD=build/asan SAN=1"
    fi
    # shellcheck disable=SC2086
    stage "build ($variant)" sh -c "make -s -j$JOBS $args all && echo '1 passed, 0 failed'"
    # shellcheck disable=SC2086
    stage "unit tests ($variant)" make -s $args unit
    dir=$( [ $variant = normal ] && echo build || echo build/asan )
    stage "krl tests ($variant)" python3 tests/krl/run.py "$dir"
    stage "picomail check of the conformance rulesets ($variant)" sh -c \
        "'$dir/picomail' check ../shared/conformance/cases/*.krl rulesets/*.krl && echo '1 passed, 0 failed'"
    stage "command line ($variant)" sh tests/cli.sh "$dir"
    stage "conformance ($variant)" \
        python3 ../shared/conformance/run --quiet --timeout 60 -- "$dir/picomail" replay
    stage "picomaild over LMTP and socketmap ($variant)" \
        python3 tests/mail/daemon.py "$dir"
    # as root with Postfix installed (contrib/deps.sh does both in CI)
    stage "picomaild behind a real Postfix, with kill -9 ($variant)" \
        python3 tests/mail/postfix_e2e.py "$dir"
    stage "IMAP fetcher against a real Dovecot ($variant)" \
        sh tests/mail/imap.sh "$dir"
    stage "picomail-milter in a real Postfix ($variant)" \
        sh tests/mail/milter.sh "$dir"
    stage "replies, notifications, SMS and events out ($variant)" \
        python3 tests/mail/outbound.py "$dir"
    stage "scheduled events ($variant)" python3 tests/mail/schedule.py "$dir"
    stage "Sky Event / Sky Cloud HTTP listener ($variant)" \
        python3 tests/http/sky.py "$dir"
done

# valgrind over the normal build: the unit tests and every replayed case
RUN_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9"
export RUN_WRAPPER
stage "unit tests (valgrind)" make -s BUILD=build unit
unset RUN_WRAPPER
stage "conformance replay (valgrind)" sh tests/leaks.sh build

if command -v clang >/dev/null 2>&1; then
    stage "parser fuzzing (${FUZZ_SECONDS}s)" sh tests/fuzz/run.sh "$FUZZ_SECONDS"
fi

echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
