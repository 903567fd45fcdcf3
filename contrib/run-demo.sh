#!/bin/sh
# run-demo.sh BUILD - what `make run` does while picomaild is not built yet:
# check the demo ruleset and evaluate a few KRL expressions with it.
build=${1:-build}
pm="$build/picomail"
echo "picomail: the daemon (picomaild) is not built yet - see README, Status."
echo "Meanwhile, the KRL core:"
echo
echo "\$ $pm check rulesets/hello.krl"
"$pm" check rulesets/hello.krl && echo "(no errors)"
for expr in \
    'double = function(x) { x * 2 }; [1, 2, 3].map(double)' \
    'who = "world"; <<Hello #{who}!>>' \
    '{"b": 1, "a": 2}.put(["c", "d"], 3)' \
    '0.1 + 0.2'; do
    echo
    echo "\$ $pm eval '$expr'"
    "$pm" eval "$expr"
done
