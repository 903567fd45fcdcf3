#!/usr/bin/env python3
"""postfix_e2e.py BUILD_DIR - picomaild behind a real Postfix.

A private Postfix instance (tests/mail/postfix-lib.sh) on loopback relays
the test mail domain to picomaild over LMTP on a UNIX socket (with
XFORWARD) and asks picomaild's socketmap, as relay_recipient_maps, whether
a recipient exists.  Checks:
  - mail sent with swaks reaches a KRL rule, which sees its attributes and
    Postfix's queue id in envelope.queue_id;
  - an unknown channel is rejected at RCPT time (no bounce);
  - a 451 from picomaild (its database locked by another process) makes
    Postfix defer, and the message is delivered once when it retries;
  - the crash test: under continuous load through Postfix, picomaild is
    killed with SIGKILL several times and restarted; every message that
    Postfix accepted produces exactly one event.
No check depends on timing: the test waits for conditions with deadlines.
Ends with "N passed, N failed".
"""
import json
import os
import random
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
PM = os.path.abspath(os.path.join(BUILD, "picomail"))
PMD = os.path.abspath(os.path.join(BUILD, "picomaild"))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mailtest import check, failed, free_port, summary, wait_for  # noqa: E402
LIB = os.path.join(HERE, "postfix-lib.sh")
DOMAIN = "picos.test"
CRASH_MESSAGES = int(os.environ.get("CRASH_MESSAGES", "600"))
CRASH_KILLS = int(os.environ.get("CRASH_KILLS", "4"))







def pf(func, *args):
    """Run a postfix-lib.sh function; its exit status."""
    r = subprocess.run(["sh", "-c", f'. "{LIB}" && {func} "$@"', "pf"]
                       + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        print(f"# {func} {args}: {r.stderr.strip()}")
    return r.returncode


class Daemon:
    def __init__(self, tmp):
        self.dir = tmp
        self.db = os.path.join(tmp, "p.db")
        self.sock = os.path.join(tmp, "lmtp.sock")
        self.smap = free_port()
        self.conf = os.path.join(tmp, "picomail.conf")
        self.log = os.path.join(tmp, "daemon.log")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write(f"database = {self.db}\nmail_domain = {DOMAIN}\n"
                    f"lmtp_listen = unix:{self.sock}\n"
                    f"socketmap_listen = 127.0.0.1:{self.smap}\n"
                    "max_message_size = 10240000\n")

    def pm(self, *args):
        r = subprocess.run([PM, "--db", self.db, "-c", self.conf, "--json"]
                           + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"picomail {args}: {r.stderr}")
        return json.loads(r.stdout) if r.stdout.strip() else None

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([PMD, "-c", self.conf], stdout=logf,
                                     stderr=logf)
        if not wait_for(lambda: os.path.exists(self.sock) and
                        self.smap_up(), 30):
            raise RuntimeError("picomaild did not start")

    def smap_up(self):
        try:
            socket.create_connection(("127.0.0.1", self.smap), 1).close()
            return True
        except OSError:
            return False

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self):
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def ent(self, name):
        r = subprocess.run([PM, "--db", self.db, "--json", "ent", "box",
                            "test.mail.inbox", name], capture_output=True,
                           text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def received(self):
        v = self.ent("received")
        return v if isinstance(v, (int, float)) else 0

    def inbox_counts(self):
        con = sqlite3.connect(self.db, timeout=30)
        try:
            rows = con.execute("SELECT state, count(*) FROM inbox "
                               "GROUP BY state").fetchall()
        finally:
            con.close()
        return dict(rows)


def maillog(pfdir):
    try:
        return open(os.path.join(pfdir, "maillog")).read()
    except OSError:
        return ""


def swaks(port, to, subject, body="hello from swaks", extra=()):
    return subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from",
         "alice@example.net", "--to", to, "--header", f"Subject: {subject}",
         "--body", body, "--timeout", "60"] + list(extra),
        capture_output=True, text=True)


def test_basic(d, pfdir, port, eci):
    r = swaks(port, f"{eci}@{DOMAIN}", "through postfix")
    check(r.returncode == 0 and "250 2.0.0 Ok: queued" in r.stdout,
          "Postfix accepts mail for a channel", r.stdout[-300:])
    check(wait_for(lambda: d.received() >= 1, 60), "the rule ran")
    last = d.ent("last") or {}
    check(last.get("subject") == "through postfix", "subject attribute",
          last.get("subject"))
    qid = (last.get("envelope") or {}).get("queue_id")
    check(bool(qid) and f"{qid}: to=<{eci}@{DOMAIN}>" in maillog(pfdir)
          and "status=sent" in maillog(pfdir),
          "envelope.queue_id is Postfix's queue id (XFORWARD)", qid)
    check(last.get("envelope", {}).get("client_addr") == "127.0.0.1",
          "client address from XFORWARD", last.get("envelope"))

    r = swaks(port, f"nosuchchannel@{DOMAIN}", "unknown")
    check(r.returncode != 0 and "<** 550 5.1.1" in r.stdout and
          "Recipient address rejected" in r.stdout and
          " -> DATA" not in r.stdout,
          "unknown channel rejected at RCPT time", r.stdout[-300:])
    check("bounced" not in maillog(pfdir), "no bounce for it")


def test_tempfail_retry(d, pfdir, port, eci):
    """Lock the database from another process: picomaild answers 451,
    Postfix defers, and delivers once when the lock is gone."""
    before = d.received()
    release = os.path.join(d.dir, "release-lock")
    holder = subprocess.Popen([sys.executable, "-c", f"""
import os, sqlite3, time
con = sqlite3.connect({d.db!r}, timeout=60, isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
open({d.dir!r} + "/locked", "w").close()
while not os.path.exists({release!r}):
    time.sleep(0.05)
con.execute("ROLLBACK")
"""])
    check(wait_for(lambda: os.path.exists(os.path.join(d.dir, "locked")),
                   30), "database locked by another process")
    r = swaks(port, f"{eci}@{DOMAIN}", "retried")
    check(r.returncode == 0, "Postfix queued it", r.stdout[-200:])
    check(wait_for(lambda: "451 4.3.0" in maillog(pfdir) and
                   "status=deferred" in maillog(pfdir), 120),
          "picomaild answered 451 and Postfix deferred",
          maillog(pfdir)[-600:])
    open(release, "w").close()
    holder.wait(60)
    check(pf("pf_wait_empty", pfdir, "120") == 0, "delivered on retry")
    check(wait_for(lambda: d.received() >= before + 1, 60) and
          d.received() == before + 1, "exactly one event for it",
          d.received() - before)


def test_crash(d, pfdir, port, eci):
    """kill -9 picomaild under load; every accepted message, one event."""
    before = d.received()
    accepted = []
    refused = []
    lock = threading.Lock()
    stop_load = threading.Event()
    counter = iter(range(CRASH_MESSAGES))

    def sender():
        conn = None
        i = None
        tries = 0
        while not stop_load.is_set():
            if i is None:
                with lock:
                    i = next(counter, None)
                tries = 0
            if i is None:
                break
            subject = f"crash-{i}"
            msg = (f"From: alice@example.net\r\nTo: {eci}@{DOMAIN}\r\n"
                   f"Subject: {subject}\r\nMessage-ID: <{subject}@t>\r\n"
                   f"\r\nmessage {i}\r\n")
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", port, timeout=120)
                    conn.ehlo("load.test")
                conn.sendmail("alice@example.net", [f"{eci}@{DOMAIN}"], msg)
                with lock:
                    accepted.append(subject)
                i = None
            except (smtplib.SMTPException, OSError) as e:
                # refused (4xx at RCPT while the socketmap is down) or a
                # dropped session: Postfix did not accept it; like an MTA,
                # try the same message again a little later
                tries += 1
                if tries >= 400:
                    with lock:
                        refused.append((subject, repr(e)))
                    i = None
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001 - best effort
                    pass
                conn = None
                time.sleep(0.05)
        if conn is not None:
            try:
                conn.quit()
            except Exception:  # noqa: BLE001 - best effort
                pass

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    kills = 0
    rng = random.Random(7)
    while kills < CRASH_KILLS:
        # kill when a share of the events has run: spread over the load
        target = before + (kills + 1) * CRASH_MESSAGES // (CRASH_KILLS + 1)
        wait_for(lambda: d.received() >= target, 120)
        d.kill()
        kills += 1
        time.sleep(rng.random() * 0.3)   # a real outage, of random length
        d.start()
    for t in threads:
        t.join()
    check(kills == CRASH_KILLS, f"picomaild killed {kills} times under load",
          kills)
    check(len(accepted) == CRASH_MESSAGES,
          f"Postfix accepted all {CRASH_MESSAGES} messages (with retries)",
          f"{len(accepted)}; refused for good: {refused[:3]}")
    check(pf("pf_wait_empty", pfdir, "300") == 0,
          "Postfix delivered everything it accepted")
    n = len(accepted)
    check(wait_for(lambda: d.received() >= before + n, 180) and
          d.received() == before + n,
          "one event per accepted message: none lost, none doubled",
          f"{d.received() - before} events for {n} messages")
    seen = d.ent("seen") or []
    crash_seen = [s for s in seen if isinstance(s, str) and
                  s.startswith("crash-")]
    check(sorted(crash_seen) == sorted(accepted),
          "the events are exactly the accepted messages",
          f"{len(crash_seen)} seen, {len(set(crash_seen))} distinct")
    counts = d.inbox_counts()
    check(counts.get("pending", 0) == 0 and counts.get("failed", 0) == 0,
          "no inbox entry left pending or failed", counts)
    dups = maillog(pfdir).count("already delivered")
    print(f"# crash test: {n} accepted, {kills} kills, {dups} redeliveries "
          "deduplicated")


def main():
    for p in (PM, PMD):
        if not os.access(p, os.X_OK):
            check(False, f"{p} is built")
            return summary()
    if os.geteuid() != 0 or subprocess.run(
            ["sh", "-c", "command -v postconf && command -v swaks"],
            capture_output=True).returncode != 0:
        check(False, "root, Postfix and swaks (contrib/deps.sh)")
        return summary()
    tmp = tempfile.mkdtemp(prefix="picomail-postfix.")
    os.chmod(tmp, 0o755)
    pfdir = os.path.join(tmp, "pf")
    port = free_port()
    d = Daemon(tmp)
    try:
        d.pm("init")
        d.pm("pico", "new", "box")
        d.pm("ruleset", "register", os.path.join(HERE, "krl", "inbox.krl"))
        d.pm("install", "box", "test.mail.inbox")
        eci = d.pm("channel", "new", "box")["eci"]
        d.start()
        if pf("pf_setup", pfdir, str(port)) != 0:
            raise RuntimeError("pf_setup failed")
        pf("pf_master", pfdir,
           "picomail unix - - n - - lmtp -o lmtp_send_xforward_command=yes"
           " -o lmtp_assume_final=yes")
        pf("pf_conf", pfdir, f"relay_domains = {DOMAIN}",
           f"transport_maps = inline:{{ {DOMAIN}=picomail:unix:{d.sock} }}",
           # through proxymap, which reconnects when picomaild restarts
           f"relay_recipient_maps = proxy:socketmap:inet:127.0.0.1:"
           f"{d.smap}:picomail",
           "picomail_destination_recipient_limit = 50",
           "picomail_destination_concurrency_limit = 4",
           "message_size_limit = 10240000")
        if pf("pf_start", pfdir) != 0:
            raise RuntimeError("pf_start failed")
        test_basic(d, pfdir, port, eci)
        test_tempfail_retry(d, pfdir, port, eci)
        test_crash(d, pfdir, port, eci)
    except Exception as e:  # noqa: BLE001 - any crash is a failure
        import traceback
        traceback.print_exc()
        check(False, "test run", repr(e))
    finally:
        pf("pf_stop", pfdir)
        if d.proc is not None:
            check(d.stop() == 0, "picomaild stops cleanly")
        if failed():
            print("--- maillog (tail) ---")
            print("\n".join(maillog(pfdir).splitlines()[-30:]))
            print("--- daemon log (tail) ---")
            try:
                print("\n".join(open(d.log).read().splitlines()[-30:]))
            except OSError:
                pass
        subprocess.run(["rm", "-rf", tmp])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
