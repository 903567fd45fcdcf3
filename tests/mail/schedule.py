#!/usr/bin/env python3
"""schedule.py BUILD_DIR - scheduled events in picomaild, end to end.

A ruleset schedules `at` events (a second ahead, through LMTP so the
daemon itself runs the rule, and from the picomail command while the
daemon runs or is stopped) and `repeat "* * * * * *"` events, and counts
each firing per tag in an entity variable.  Checks: a bad cron is a KRL
error and schedules nothing; an `at` fires exactly once and its entry is
gone; a repeat fires again and again; schedule:remove stops exactly that
one; after a SIGTERM and a start the repeat goes on, firing once (not
once per missed second) for the time it was down, and an `at` that came
due while the daemon was down fires once at start; a schedule made
through a family channel (ctx:event from the parent) fires; a repeat
whose channel is removed is dropped; removing a pico takes its
schedules with it.  No check depends on timing: waits poll for a
condition with a generous deadline, and "did not fire" is judged against
a repeat still running (it has to fire 3 more times first).  Ends with
"N passed, N failed".
"""
import calendar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
PM = os.path.abspath(os.path.join(BUILD, "picomail"))
PMD = os.path.abspath(os.path.join(BUILD, "picomaild"))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mailtest import check, free_port, summary, wait_for  # noqa: E402
DOMAIN = "picos.test"
RID = "test.schedule"

RULESET = """ruleset test.schedule {
  meta { shares n_of, entries }
  global {
    n_of = function(tag) { ent:count{tag}.defaultsTo(0) }
    entries = function() { schedule:list() }
  }
  rule plan_at {
    select when test plan_at
    pre { secs = event:attrs{"secs"}.defaultsTo(1).as("Number") }
    fired {
      schedule test event "at_fired"
        at time:add(time:now(), {"seconds": secs})
        attributes {"tag": event:attrs{"tag"}} setting(entry);
      ent:ids{event:attrs{"tag"}} := entry{"id"}
    }
  }
  rule plan_repeat {
    select when test plan_repeat
    fired {
      schedule test event "tick"
        repeat event:attrs{"spec"}.defaultsTo("* * * * * *")
        attributes {"tag": event:attrs{"tag"}} setting(entry);
      ent:ids{event:attrs{"tag"}} := entry{"id"}
    }
  }
  rule stop {
    select when test stop
    schedule:remove(ent:ids{event:attrs{"tag"}}) setting(removed)
    fired { ent:removed{event:attrs{"tag"}} := removed }
  }
  rule counter {
    select when test at_fired or test tick
    fired { ent:count{event:attrs{"tag"}} := n_of(event:attrs{"tag"}) + 1 }
  }
}
"""

# on the parent: plan a repeat on a child through its family channel
RELAY = """ruleset test.relay {
  rule relay {
    select when test relay
    ctx:event(event:attrs{"to"}, "test", "plan_repeat", {"tag": "f1"})
  }
}
"""

FIRED = re.compile(r"schedule id=(\S+) .* due=(\S+) .*status=fired")


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="picomail-schedule.")
        self.db = os.path.join(self.dir, "p.db")
        self.lmtp_port = free_port()
        self.conf = os.path.join(self.dir, "picomail.conf")
        self.log = os.path.join(self.dir, "daemon.log")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write(f"database = {self.db}\nmail_domain = {DOMAIN}\n"
                    f"lmtp_listen = 127.0.0.1:{self.lmtp_port}\n"
                    "socketmap_listen =\n")

    def run(self, *args):
        return subprocess.run([PM, "--db", self.db, "-c", self.conf,
                               "--json"] + list(args),
                              capture_output=True, text=True)

    def pm(self, *args):
        r = self.run(*args)
        if r.returncode != 0:
            raise RuntimeError(f"picomail {args}: {r.stderr}")
        return json.loads(r.stdout) if r.stdout.strip() else None

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([PMD, "-c", self.conf],
                                     stdout=logf, stderr=logf)
        logf.close()
        if not wait_for(self.connectable, 30):
            raise RuntimeError("picomaild did not start:\n" + self.logtext())

    def connectable(self):
        try:
            socket.create_connection(("127.0.0.1", self.lmtp_port), 1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def logtext(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def ent(self, pico, name):
        r = self.run("ent", pico, RID, name)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def count(self, tag, pico="p"):
        v = self.ent(pico, "count")
        return v.get(tag, 0) if isinstance(v, dict) else 0

    def schedule_id(self, tag, pico="p"):
        v = self.ent(pico, "ids")
        return v.get(tag) if isinstance(v, dict) else None

    def entries(self, eci):
        return self.pm("query", eci, RID, "entries")

    def pending(self):
        inbox = self.pm("inbox", "--limit", "1000") or []
        return [e for e in inbox if e.get("state") == "pending"]

    def fired_lines(self, since=0):
        """(schedule id, due ms) of each firing logged after offset SINCE"""
        out = []
        for line in self.logtext()[since:].splitlines():
            m = FIRED.search(line)
            if m:
                due = time.strptime(m.group(2)[:19], "%Y-%m-%dT%H:%M:%S")
                ms = calendar.timegm(due) * 1000 + int(m.group(2)[20:23])
                out.append((m.group(1), ms))
        return out

    def rows_of(self, pico_id):
        """schedule rows of PICO_ID, read from the database itself"""
        con = sqlite3.connect(self.db, timeout=30)
        try:
            return con.execute("SELECT count(*) FROM schedules WHERE "
                               "pico_id = ?", (pico_id,)).fetchone()[0]
        finally:
            con.close()


def lmtp_event(env, eci, domain, type_, attrs):
    """raise DOMAIN:TYPE on ECI by mail (the JSON body gives the
    attributes); the LMTP reply to the data"""
    s = socket.create_connection(("127.0.0.1", env.lmtp_port), 30)
    f = s.makefile("rwb")

    def reply():
        lines = [f.readline().decode()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(f.readline().decode())
        return lines[-1].strip()

    def cmd(text):
        f.write((text + "\r\n").encode())
        f.flush()
        return reply()

    reply()
    cmd("LHLO test.example")
    cmd("MAIL FROM:<alice@example.net>")
    rc = cmd(f"RCPT TO:<{eci}+{domain}.{type_}@{DOMAIN}>")
    if not rc.startswith("250"):
        s.close()
        return rc
    cmd("DATA")
    body = json.dumps(attrs)
    f.write((f"From: alice@example.net\r\nTo: {eci}@{DOMAIN}\r\n"
             f"Subject: plan\r\nContent-Type: application/json\r\n\r\n"
             f"{body}\r\n.\r\n").encode())
    f.flush()
    r = reply()
    cmd("QUIT")
    s.close()
    return r


def ticks_pass(env, tag, n, pico="p"):
    """wait until repeat TAG fired N more times (a clock that does not
    depend on our own timing); whether it did"""
    start = env.count(tag, pico)
    return wait_for(lambda: env.count(tag, pico) >= start + n, 60, 0.1)


def quiet(env):
    """wait until the dispatcher ran every pending inbox entry"""
    return wait_for(lambda: env.pending() == [], 30, 0.05)


def main():
    env = Env()
    krl = os.path.join(env.dir, "schedule.krl")
    with open(krl, "w") as f:
        f.write(RULESET)
    root = env.pm("init")["root"]
    p = env.pm("pico", "new", "p")
    env.pm("ruleset", "register", krl)
    env.pm("install", "p", RID)
    relay = os.path.join(env.dir, "relay.krl")
    with open(relay, "w") as f:
        f.write(RELAY)
    env.pm("ruleset", "register", relay)
    env.pm("install", root, "test.relay")
    eci = env.pm("channel", "new", "p")["eci"]

    # a bad cron is a KRL error: nothing is scheduled
    for spec in ("61 * * * *", "* * * *", "0 0 30 2 *", "* * * * * * *"):
        r = env.run("event", eci, "test", "plan_repeat", "tag=bad",
                    f"spec={spec}")
        check(r.returncode != 0 and "bad cron" in r.stderr,
              f"repeat \"{spec}\" refused with a bad cron error",
              r.stdout + r.stderr)
    check(env.entries(eci) == [], "nothing scheduled by the refusals",
          env.entries(eci))

    try:
        env.start()

        # an `at` a second ahead, planned by mail: the daemon's own event
        r = lmtp_event(env, eci, "test", "plan_at", {"tag": "a1", "secs": 1})
        check(r.startswith("250"), "plan_at delivered over LMTP", r)
        check(wait_for(lambda: env.count("a1") >= 1, 30),
              "the at event fired", env.logtext()[-2000:])
        a1 = env.schedule_id("a1")
        quiet(env)
        check(env.count("a1") == 1, "the at event fired once",
              env.count("a1"))
        check(all(e["id"] != a1 for e in env.entries(eci)),
              "the at entry is gone after firing")
        fired = [x for x in env.fired_lines() if x[0] == a1]
        check(len(fired) == 1, "one firing logged for the at event", fired)

        # repeats, planned with the picomail command (another process)
        env.pm("event", eci, "test", "plan_repeat", "tag=r1")
        env.pm("event", eci, "test", "plan_repeat", "tag=r2")
        check(wait_for(lambda: env.count("r1") >= 3, 60, 0.1),
              "a repeat fires again and again", env.count("r1"))
        ents = {e["id"]: e for e in env.entries(eci)}
        r1, r2 = env.schedule_id("r1"), env.schedule_id("r2")
        check(r1 in ents and ents[r1]["type"] == "repeat" and
              ents[r1]["timespec"] == "* * * * * *",
              "schedule:list shows the repeat with its timespec", ents)
        check(wait_for(lambda: env.count("r2") >= 2, 60, 0.1),
              "a second repeat fires too")

        # schedule:remove stops exactly that one
        env.pm("event", eci, "test", "stop", "tag=r2")
        check((env.ent("p", "removed") or {}).get("r2") is True,
              "schedule:remove says it removed the entry")
        ids = [e["id"] for e in env.entries(eci)]
        check(r2 not in ids and r1 in ids,
              "the removed repeat is gone, the other stays", ids)
        quiet(env)
        stopped_at = env.count("r2")
        check(ticks_pass(env, "r1", 3), "the other repeat keeps firing")
        check(env.count("r2") == stopped_at,
              "the removed repeat fired no more",
              (stopped_at, env.count("r2")))

        # a restart: the repeat goes on; an `at` due while down fires once
        before = env.count("r1")
        check(env.stop() == 0, "SIGTERM stops picomaild cleanly")
        env.pm("event", eci, "test", "plan_at", "tag=a2", "secs=1")
        a2 = env.schedule_id("a2")
        due = [e for e in env.entries(eci) if e["id"] == a2][0]["time"]
        # let the at come due and several repeat slots pass while down
        wait_for(lambda: time.time() * 1000 > due + 3000, 30, 0.1)
        check(env.count("a2") == 0 and env.count("r1") == before,
              "nothing fires while the daemon is down")
        offset = len(env.logtext())
        started = int(time.time() * 1000)
        env.start()
        check(wait_for(lambda: env.count("a2") >= 1, 30),
              "the at that came due while down fires at start")
        check(wait_for(lambda: env.count("r1") >= before + 3, 60, 0.1),
              "the repeat goes on after the restart")
        quiet(env)
        check(env.count("a2") == 1, "the late at fired once",
              env.count("a2"))
        check(all(e["id"] != a2 for e in env.entries(eci)),
              "the late at entry is gone")
        late = [x for x in env.fired_lines(offset)
                if x[0] == r1 and x[1] < started]
        check(len(late) == 1,
              "the repeat fired once for its missed seconds, not once each",
              late)

        # a schedule made by an event that came through a family channel
        # (ctx:event from the parent) fires on that channel too
        family = [c["eci"] for c in env.pm("channel", "list", "p")
                  if c.get("family_pico_id") == root]
        root_eci = env.pm("channel", "new", root)["eci"]
        env.pm("event", root_eci, "test", "relay", f"to={family[0]}")
        check(wait_for(lambda: env.count("f1") >= 2, 60, 0.1),
              "a repeat planned through a family channel fires",
              env.logtext()[-1500:])
        env.pm("event", eci, "test", "stop", "tag=f1")

        # a repeat whose channel is removed is dropped, not fired in vain
        c2 = env.pm("channel", "new", "p")["eci"]
        env.pm("event", c2, "test", "plan_repeat", "tag=r4")
        check(wait_for(lambda: env.count("r4") >= 1, 60, 0.1),
              "a repeat on a second channel fires")
        r4 = env.schedule_id("r4")
        env.pm("channel", "rm", c2)
        check(wait_for(lambda: re.search(
            f"schedule id={r4} .*status=dropped: channel {c2} is gone",
            env.logtext()), 30), "the repeat of a removed channel is dropped")
        check(all(e["id"] != r4 for e in env.entries(eci)),
              "the dropped repeat is no longer listed")

        # removing a pico takes its schedules with it
        q = env.pm("pico", "new", "q")
        env.pm("install", "q", RID)
        q_eci = env.pm("channel", "new", "q")["eci"]
        env.pm("event", q_eci, "test", "plan_repeat", "tag=r3")
        env.pm("event", q_eci, "test", "plan_at", "tag=a3", "secs=3600")
        check(wait_for(lambda: env.count("r3", "q") >= 1, 60, 0.1),
              "the other pico's repeat fires")
        r3 = env.schedule_id("r3", "q")
        check(env.rows_of(q["id"]) == 2, "the other pico has two schedules",
              env.rows_of(q["id"]))
        env.pm("pico", "rm", "q")
        check(env.rows_of(q["id"]) == 0,
              "pico rm removed the pico's schedules", env.rows_of(q["id"]))
        offset = len(env.logtext())
        check(ticks_pass(env, "r1", 3), "the first pico's repeat goes on")
        check(not [x for x in env.fired_lines(offset) if x[0] == r3],
              "the removed pico's repeat fires no more")
        check(env.rows_of(p["id"]) == 1, "the first pico keeps its repeat",
              env.rows_of(p["id"]))

        check(env.stop() == 0, "picomaild stops cleanly at the end")
    except Exception as e:  # a crash of the test is a failure, not a pass
        check(False, "the test ran to its end", repr(e))
        print(env.logtext()[-3000:])
    finally:
        env.stop()
        subprocess.run(["rm", "-rf", env.dir])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
