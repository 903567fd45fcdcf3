#!/bin/sh
# run-demo.sh BUILD - what `make run` does: make a demo pico in
# ./var/picomail.db (once), print how to mail it, and run picomaild in the
# foreground on its built-in defaults (LMTP on 127.0.0.1:2424, socketmap on
# 127.0.0.1:2425, Sky Event/Cloud HTTP on 127.0.0.1:8080, mail domain
# picos.localhost) until Ctrl-C.
set -e
build=${1:-build}
pm="$build/picomail"
db=./var/picomail.db
"$pm" init >/dev/null
"$pm" pico show demo >/dev/null 2>&1 || "$pm" pico new demo >/dev/null
"$pm" ruleset register rulesets/hello.krl >/dev/null
"$pm" install demo picomail.hello >/dev/null
eci=$("$pm" channel list demo --json | python3 -c 'import json,sys
chans=[c for c in json.load(sys.stdin) if "demo" in c["tags"]]
print(chans[0]["eci"] if chans else "")')
if [ -z "$eci" ]; then
    eci=$("$pm" channel new demo --tag demo --json |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["eci"])')
fi
cat <<MSG
picomail demo: pico "demo" in $db, reachable by mail at

    $eci@picos.localhost

picomaild starts below (Ctrl-C stops it).  In another terminal, mail it
over LMTP, as Postfix would:

    swaks --protocol LMTP --server 127.0.0.1:2424 --from you@example.net \\
          --to $eci@picos.localhost --header 'Subject: hello pico' --body 'Hi!'
    $pm query $eci picomail.hello last_mail

or raise echo:hello with an attribute from a JSON body:

    swaks --protocol LMTP --server 127.0.0.1:2424 --from you@example.net \\
          --to $eci+echo.hello@picos.localhost --body '{"name": "Ada"}'
    $pm query $eci picomail.hello hellos
    $pm log demo

or over the Sky Event / Sky Cloud HTTP API:

    curl 'http://127.0.0.1:8080/sky/event/$eci/none/echo/hello?name=Bo'
    curl 'http://127.0.0.1:8080/sky/cloud/$eci/picomail.hello/hellos'

To put it behind Postfix, see contrib/postfix/ and INSTALL.

MSG
exec "$build/picomaild" --db "$db"
