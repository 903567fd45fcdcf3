#!/bin/sh
# run-demo.sh BUILD - what `make run` does while picomaild (the daemon with
# the LMTP, socketmap and HTTP listeners) is not built yet: make a demo
# pico in ./var/picomail.db with the picomail command, raise an event on
# it and query it, and show how to do more.
set -e
build=${1:-build}
pm="$build/picomail"
db=./var/picomail.db
run() {
    echo "\$ $*"
    "$@"
}
echo "picomail: the daemon (picomaild) is not built yet - see README, Status."
echo "Meanwhile, a demo pico in $db, driven by the picomail command:"
echo
run "$pm" init
"$pm" pico show demo >/dev/null 2>&1 || run "$pm" pico new demo
run "$pm" ruleset register rulesets/hello.krl
run "$pm" install demo picomail.hello
eci=$("$pm" channel list demo --json | python3 -c 'import json,sys
chans=[c for c in json.load(sys.stdin) if "system" not in c["tags"]]
print(chans[0]["eci"] if chans else "")')
if [ -z "$eci" ]; then
    eci=$("$pm" channel new demo --tag demo --json |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["eci"])')
    echo "\$ $pm channel new demo --tag demo    # made $eci"
fi
run "$pm" event "$eci" echo hello name=Ada
run "$pm" query "$eci" picomail.hello hellos
echo
echo "Try: $pm eval 'double = function(x) { x * 2 }; [1, 2, 3].map(double)'"
echo "     $pm log demo"
echo "When picomaild exists, the channel's address will be $eci@picos.localhost."
