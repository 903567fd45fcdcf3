#!/usr/bin/env python3
"""daemon.py BUILD_DIR - picomaild end to end, without Postfix.

Starts BUILD_DIR/picomaild on a temporary database and configuration and
talks LMTP and socketmap to it over real sockets: deliveries becoming
events (attributes, envelope, XFORWARD), pipelining with mixed recipient
results, RSET/NOOP/HELO/VRFY, the size limit (SIZE= and data), bare LF,
NUL bytes, dot-stuffing, overlong lines, an abrupt disconnect in DATA,
deduplication of a redelivered message, policy and sender refusals, a
ruleset that recurses forever, concurrent sessions, the UNIX socket, the
connection limit, SIGHUP reload, a restart keeping state, and a graceful
SIGTERM.  No check depends on timing: waits poll for a condition with a
generous deadline.  Ends with "N passed, N failed".
"""
import json
import os
import signal
import socket
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
DOMAIN = "picos.test"







class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="picomaild-test.")
        self.db = os.path.join(self.dir, "p.db")
        self.lmtp_port = free_port()
        self.smap_port = free_port()
        self.http_port = free_port()
        self.sock = os.path.join(self.dir, "lmtp.sock")
        self.conf = os.path.join(self.dir, "picomail.conf")
        self.log = os.path.join(self.dir, "daemon.log")
        self.proc = None
        self.write_conf()

    def write_conf(self, extra=""):
        with open(self.conf, "w") as f:
            f.write(f"""database = {self.db}
mail_domain = {DOMAIN}
lmtp_listen = 127.0.0.1:{self.lmtp_port}, unix:{self.sock}
socketmap_listen = 127.0.0.1:{self.smap_port}
http_listen = 127.0.0.1:{self.http_port}
max_message_size = 20000
max_connections = 40
trusted_authserv_id = mx.{DOMAIN}
{extra}""")

    def pm(self, *args):
        r = subprocess.run([PM, "--db", self.db, "-c", self.conf, "--json"]
                           + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"picomail {args}: {r.stderr}")
        return json.loads(r.stdout) if r.stdout.strip() else None

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([PMD, "-c", self.conf, "-d"],
                                     stdout=logf, stderr=logf)
        ok = wait_for(lambda: self.connectable(), 20)
        if not ok:
            raise RuntimeError("picomaild did not start:\n" + self.logtext())

    def connectable(self):
        try:
            socket.create_connection(("127.0.0.1", self.lmtp_port), 1).close()
            return True
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def logtext(self):
        try:
            return open(self.log).read()
        except OSError:
            return ""

    def ent(self, pico, rid, name):
        r = subprocess.run([PM, "--db", self.db, "--json", "ent", pico, rid,
                            name], capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def inbox(self, limit=1000):
        return self.pm("inbox", "--limit", str(limit))


class Lmtp:
    """A raw LMTP client: sends what it is told, reads reply lines."""

    def __init__(self, env, unix=False):
        if unix:
            self.s = socket.socket(socket.AF_UNIX)
            self.s.connect(env.sock)
        else:
            self.s = socket.create_connection(("127.0.0.1", env.lmtp_port))
        self.s.settimeout(60)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """One whole (possibly multi-line) reply."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def close(self):
        self.s.close()


def message(subject, body="hello\r\n", extra=""):
    return (f"From: Alice <alice@example.net>\r\nTo: x@{DOMAIN}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@example.net>\r\n"
            f"{extra}\r\n{body}")


def deliver(c, rcpts, msg, mail_from="alice@example.net"):
    """A whole transaction; the replies after the final dot."""
    c.cmd(f"MAIL FROM:<{mail_from}>")
    accepted = 0
    for r in rcpts:
        if c.cmd(f"RCPT TO:<{r}>").startswith("250"):
            accepted += 1
    if accepted == 0:
        return []
    c.cmd("DATA")
    c.send(msg + ("" if msg.endswith("\r\n") else "\r\n") + ".\r\n")
    return [c.reply() for _ in range(accepted)]


def setup(env):
    env.pm("init")
    env.pm("pico", "new", "box")
    env.pm("ruleset", "register", os.path.join(HERE, "krl", "inbox.krl"))
    env.pm("install", "box", "test.mail.inbox")
    open_ch = env.pm("channel", "new", "box", "--alias", "desk")
    strict = env.pm("channel", "new", "box", "--sender", "example.net",
                    "--deny", "test:*")
    env.pm("pico", "new", "loop")
    with open(os.path.join(env.dir, "loop.krl"), "w") as f:
        f.write("ruleset test.loop { global { f = function(n) { f(n + 1) } }"
                " rule spin { select when mail received"
                " pre { x = f(0) } } }\n")
    env.pm("ruleset", "register", os.path.join(env.dir, "loop.krl"))
    env.pm("install", "loop", "test.loop")
    env.pm("install", "loop", "test.mail.inbox")
    loop_ch = env.pm("channel", "new", "loop")
    return open_ch["eci"], strict["eci"], loop_ch["eci"]


def received(env, pico="box"):
    v = env.ent(pico, "test.mail.inbox", "received")
    return v if isinstance(v, (int, float)) else 0


def wait_received(env, n, pico="box"):
    return wait_for(lambda: received(env, pico) >= n, 30) and \
        received(env, pico) == n


def test_delivery(env, eci):
    c = Lmtp(env)
    check(c.greeting.startswith("220 "), "greeting", c.greeting)
    lhlo = c.cmd("LHLO mx.test")
    for ext in ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8",
                "SIZE 20000", "XFORWARD"):
        check(ext in lhlo, "LHLO offers " + ext, lhlo)
    check(c.cmd("HELO x").startswith("500"), "HELO refused")
    check(c.cmd("NOOP").startswith("250"), "NOOP")
    check(c.cmd("XFORWARD ADDR=192.0.2.7 NAME=client.example")
          .startswith("250"), "XFORWARD")
    check(c.cmd("XFORWARD IDENT=4ABCDEF123 PROTO=ESMTP").startswith("250"),
          "XFORWARD IDENT")
    r = deliver(c, [f"{eci}@{DOMAIN}"],
                message("first", "caf\xe9 line\r\n..dotted\r\n"),
                "alice@example.net")
    check(len(r) == 1 and r[0].startswith("250 2.0.0"), "delivered", r)
    eid = r[0].split()[-1] if r else ""
    check(wait_received(env, 1), "event processed")
    last = env.ent("box", "test.mail.inbox", "last") or {}
    check(last.get("subject") == "first", "subject attribute", last)
    check(last.get("text") == "caf\xe9 line\n.dotted\n",
          "text: dot-stuffing removed, LF line ends", last.get("text"))
    envl = last.get("envelope", {})
    check(envl.get("queue_id") == "4ABCDEF123", "envelope queue id", envl)
    check(envl.get("client_addr") == "192.0.2.7", "envelope client", envl)
    check(envl.get("mail_from") == "alice@example.net", "envelope sender")
    check(envl.get("rcpt_to") == f"{eci}@{DOMAIN}", "envelope recipient")
    # an attachment: described in the event, its content kept
    att = ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
           "boundary=b\r\n")
    body = ("--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            "--b\r\nContent-Type: text/plain; name=n.txt\r\n"
            "Content-Disposition: attachment; filename=n.txt\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            "aGVsbG8gd29ybGQ=\r\n--b--\r\n")
    r2 = deliver(c, [f"{eci}@{DOMAIN}"], message("attached", body, att))
    check(r2 and r2[0].startswith("250"), "message with an attachment")
    check(wait_received(env, 2), "its event processed")
    last2 = env.ent("box", "test.mail.inbox", "last") or {}
    atts = last2.get("attachments") or [{}]
    check(atts[0].get("filename") == "n.txt" and atts[0].get("size") == 11,
          "attachment described", atts)
    sha = atts[0].get("sha256", "")
    got = env.pm("query", eci, "test.mail.inbox", "attachment",
                 f"sha256={sha}")
    check(isinstance(got, dict) and got.get("data") == "hello world",
          "mail:attachment reads the kept content", got)
    log = env.pm("log", "box", "--limit", "5")
    check(any(e.get("eid") == eid for e in log), "event id as replied", eid)
    check(c.cmd("QUIT").startswith("221"), "QUIT")
    c.close()


def test_pipelining(env, eci, strict):
    c = Lmtp(env)
    c.cmd("LHLO mx.test")
    before = received(env)
    msg = message("piped")
    # everything up to DATA in one write, as Postfix does
    c.send(f"MAIL FROM:<alice@example.net> SIZE={len(msg)}\r\n"
           f"RCPT TO:<{eci}@{DOMAIN}>\r\n"
           f"RCPT TO:<nosuch@{DOMAIN}>\r\n"
           f"RCPT TO:<{strict}+test.ping@{DOMAIN}>\r\n"
           f"RCPT TO:<DESK@{DOMAIN.upper()}>\r\n"
           "DATA\r\n")
    replies = [c.reply() for _ in range(6)]
    check(replies[0].startswith("250"), "pipelined MAIL")
    check(replies[1].startswith("250"), "pipelined good RCPT")
    check(replies[2].startswith("550 5.1.1"), "unknown channel 550 5.1.1",
          replies[2])
    check(replies[3].startswith("550 5.7.1"), "policy 550 5.7.1", replies[3])
    check(replies[4].startswith("250"), "alias, case-folded", replies[4])
    check(replies[5].startswith("354"), "DATA after mixed RCPTs")
    # the message, and the next transaction pipelined right behind it
    c.send(msg + ".\r\nRSET\r\nNOOP\r\n")
    after = [c.reply() for _ in range(4)]
    check(after[0].startswith("250 2.0.0") and after[1].startswith(
        "250 2.0.0"), "one reply per accepted recipient", after)
    check(after[2].startswith("250") and after[3].startswith("250"),
          "pipelined input after the message", after)
    check(wait_received(env, before + 2), "two events from one message")
    # RSET drops a transaction
    c.cmd("MAIL FROM:<a@example.net>")
    c.cmd(f"RCPT TO:<{eci}@{DOMAIN}>")
    check(c.cmd("RSET").startswith("250"), "RSET")
    check(c.cmd("DATA").startswith("503"), "no DATA after RSET")
    c.close()


def test_refusals(env, eci, strict):
    c = Lmtp(env)
    c.cmd("LHLO mx.test")
    c.cmd("MAIL FROM:<eve@evil.example>")
    r = c.cmd(f"RCPT TO:<{strict}@{DOMAIN}>")
    check(r.startswith("550 5.7.1") and "sender" in r, "sender refused", r)
    c.cmd("RSET")
    # a From: header the channel does not accept: refused after DATA
    c.cmd("MAIL FROM:<bob@example.net>")
    check(c.cmd(f"RCPT TO:<{strict}@{DOMAIN}>").startswith("250"),
          "listed envelope sender")
    c.cmd("DATA")
    c.send(message("spoof").replace("alice@example.net",
                                    "eve@evil.example") + ".\r\n")
    r = c.reply()
    check(r.startswith("550 5.7.1") and "From:" in r, "From: refused", r)
    # size: announced too big, then data too big
    r = c.cmd("MAIL FROM:<a@example.net> SIZE=999999")
    check(r.startswith("552"), "SIZE over the limit", r)
    before = received(env)
    r = deliver(c, [f"{eci}@{DOMAIN}", f"desk@{DOMAIN}"],
                message("big", "x" * 70 + "\r\n") * 1 +
                ("y" * 70 + "\r\n") * 400)
    check(len(r) == 2 and all(x.startswith("552 5.3.4") for x in r),
          "oversized data: 552 per recipient", r)
    check(c.cmd("NOOP").startswith("250"), "session usable after 552")
    # overlong command line
    r = c.cmd("NOOP " + "z" * 5000)
    check(r.startswith("500"), "overlong line refused", r)
    check(c.cmd("NOOP").startswith("250"), "session usable after it")
    # bare LF and NUL bytes in the message
    c.cmd("MAIL FROM:<a@example.net>")
    c.cmd(f"RCPT TO:<{eci}@{DOMAIN}>")
    c.cmd("DATA")
    c.send(("From: a@example.net\nSubject: barelf\n\nline1\nli\x00ne2\n"
            ".\r\n").encode())
    r = c.reply()
    check(r.startswith("250"), "bare LF and NUL accepted", r)
    check(wait_received(env, before + 1), "bare-LF message processed")
    last = env.ent("box", "test.mail.inbox", "last") or {}
    check(last.get("subject") == "barelf", "bare-LF headers parsed", last)
    c.close()
    # an abrupt disconnect in the middle of DATA stores nothing
    n_before = len(env.inbox())
    c = Lmtp(env)
    c.cmd("LHLO mx.test")
    c.cmd("MAIL FROM:<a@example.net>")
    c.cmd(f"RCPT TO:<{eci}@{DOMAIN}>")
    c.cmd("DATA")
    c.send("Subject: cut\r\n\r\npartial")
    c.s.shutdown(socket.SHUT_RDWR)
    c.close()
    c = Lmtp(env)   # the daemon is still there
    check(c.cmd("NOOP").startswith("250"), "alive after a disconnect")
    c.close()
    check(len(env.inbox()) == n_before, "nothing stored from a cut message")


def test_dedupe(env, eci):
    before = received(env)
    replies = []
    for _ in range(2):
        c = Lmtp(env)
        c.cmd("LHLO mx.test")
        c.cmd("XFORWARD IDENT=DUP0001")
        replies += deliver(c, [f"{eci}@{DOMAIN}"], message("dup"))
        c.close()
    check(all(r.startswith("250") for r in replies), "both deliveries 250",
          replies)
    check("already delivered" in replies[1], "second one recognised",
          replies)
    check(replies[0].split()[4] == replies[1].split()[4],
          "same event id both times", replies)
    wait_for(lambda: received(env) >= before + 1)
    entries = [e for e in env.inbox() if e.get("queue_id") == "DUP0001"]
    check(len(entries) == 1, "one inbox entry", entries)
    check(wait_received(env, before + 1), "one event")


def test_loop(env, loop_eci):
    c = Lmtp(env)
    c.cmd("LHLO mx.test")
    r = deliver(c, [f"{loop_eci}@{DOMAIN}"], message("spin"))
    check(r and r[0].startswith("250"), "mail to a looping ruleset accepted")
    r = deliver(c, [f"{loop_eci}@{DOMAIN}"], message("after-spin"))
    c.close()

    def states():
        return [e for e in env.inbox() if e["eci"] == loop_eci]
    wait_for(lambda: all(e["state"] != "pending" for e in states())
             and len(states()) == 2)
    st = states()
    check(len(st) == 2 and all(e["state"] == "failed" for e in st) and
          "Maximum call stack" in (st[0].get("error") or ""),
          "runaway recursion: event failed with an error", st)
    # the other ruleset of that pico: the failing rule's event stops, but
    # the daemon goes on with the next message of other picos
    before = received(env)
    c = Lmtp(env)
    c.cmd("LHLO mx.test")
    deliver(c, [f"desk@{DOMAIN}"], message("after-loop"))
    c.close()
    check(wait_received(env, before + 1), "next event still processed")


def test_concurrent(env, eci):
    before = received(env)
    errors = []
    n_threads, n_msgs = 16, 10

    def worker(k):
        try:
            c = Lmtp(env, unix=(k % 2 == 0))
            c.cmd("LHLO mx.test")
            for i in range(n_msgs):
                r = deliver(c, [f"{eci}@{DOMAIN}"], message(f"c{k}-{i}"))
                if not (r and r[0].startswith("250")):
                    errors.append(r)
            c.cmd("QUIT")
            c.close()
        except Exception as e:  # noqa: BLE001 - reported as a failure
            errors.append(repr(e))
    ts = [threading.Thread(target=worker, args=(k,))
          for k in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "16 concurrent sessions (TCP and UNIX socket)",
          errors[:3])
    check(wait_received(env, before + n_threads * n_msgs),
          "every concurrent message became one event",
          received(env) - before)


def test_socketmap(env, eci):
    def ns(s):
        b = s.encode()
        return str(len(b)).encode() + b":" + b + b","
    s = socket.create_connection(("127.0.0.1", env.smap_port))
    s.settimeout(30)
    s.sendall(ns(f"picomail {eci}@{DOMAIN}") + ns(f"x nosuch@{DOMAIN}") +
              ns(f"picomail DESK+A.B@{DOMAIN}") + ns("picomail @" + DOMAIN))
    want = [f"OK {eci}", "NOTFOUND ", f"OK {eci}", "NOTFOUND "]
    got = b""
    end = time.time() + 30
    while got.count(b",") < 4 and time.time() < end:
        got += s.recv(4096)
    answers = []
    rest = got
    while rest:
        n, rest = rest.split(b":", 1)
        answers.append(rest[:int(n)].decode())
        rest = rest[int(n) + 1:]
    check(answers == want, "socketmap answers", answers)
    s.sendall(b"5:abcdeX")      # no comma: not a netstring, so hang up
    try:
        data = s.recv(100)
        check(data == b"", "broken netstring closes the connection", data)
    except OSError as e:
        check(False, "broken netstring closes the connection", repr(e))
    s.close()


def test_connection_limit(env):
    conns = []
    try:
        for _ in range(40):
            conns.append(Lmtp(env))
        s = socket.create_connection(("127.0.0.1", env.lmtp_port))
        s.settimeout(30)
        data = s.recv(200).decode()
        check(data.startswith("421 4.3.2"), "over max_connections: 421",
              data)
        s.close()
    finally:
        for c in conns:
            c.close()
    check(wait_for(lambda: Lmtp(env).greeting.startswith("220"), 30),
          "accepting again afterwards")


def test_reload_restart(env, eci):
    env.write_conf("max_message_size = 30000\n")
    env.proc.send_signal(signal.SIGHUP)

    def size_now():
        c = Lmtp(env)
        r = c.cmd("LHLO x")
        c.close()
        return "SIZE 30000" in r
    check(wait_for(size_now, 30), "SIGHUP applied the new size limit")
    before = received(env)
    # an idle session at shutdown gets 421; the daemon exits 0
    c = Lmtp(env)
    c.cmd("LHLO mx.test")
    rc = env.stop()
    try:
        r = c.reply()
    except EOFError:
        r = ""
    check(r.startswith("421"), "idle session told 421 at shutdown", r)
    check(rc == 0, "SIGTERM: clean exit", rc)
    check(not os.path.exists(env.sock), "UNIX socket removed at exit")
    env.start()
    check(received(env) == before, "state kept across a restart")
    c = Lmtp(env)
    c.cmd("LHLO mx.test")
    deliver(c, [f"{eci}@{DOMAIN}"], message("after-restart"))
    c.close()
    check(wait_received(env, before + 1), "delivery after a restart")


def test_http(env, eci):
    """The Sky Event / Sky Cloud listener in picomaild: events run by the
    dispatcher (sharing its commits), queries, errors, /metrics."""
    import http.client

    def get(path):
        c = http.client.HTTPConnection("127.0.0.1", env.http_port, timeout=60)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body
    before = received(env)
    st, body = get(f"/sky/event/{eci}/none/test/ping?subject=by%20http")
    check(st == 200 and '"eid"' in body and '"directives"' in body,
          "Sky Event through picomaild", (st, body))
    check(wait_received(env, before + 1), "the HTTP event ran")
    st, body = get(f"/sky/cloud/{eci}/test.mail.inbox/received")
    check(st == 200 and body.strip() == str(before + 1),
          "Sky Cloud query through picomaild", (st, body))
    st, body = get("/sky/event/nosuchchannel/none/test/ping")
    check(st == 404 and "ECI not found" in body, "unknown ECI: 404",
          (st, body))
    st, body = get(f"/c/{eci}/event/test/ping?subject=async")
    check(st == 200 and body.startswith('"'), "async event: its eid",
          (st, body))
    check(wait_received(env, before + 2), "the async event ran")
    st, body = get("/metrics")
    check(st == 200 and 'picomail_events_total{status="done"}' in body and
          "picomail_inbox_pending" in body, "/metrics", body[:200])


def test_privileges():
    """As root with user = nobody: serves as nobody, writes its database."""
    if os.geteuid() != 0:
        check(True, "user = nobody (skipped: not root)")
        return
    env = Env()
    os.chmod(env.dir, 0o755)
    os.makedirs(os.path.join(env.dir, "db"))
    env.db = os.path.join(env.dir, "db", "p.db")
    env.write_conf("user = nobody\nhttp_listen =\n")
    try:
        env.pm("init")
        env.pm("pico", "new", "box")
        env.pm("ruleset", "register", os.path.join(HERE, "krl", "inbox.krl"))
        env.pm("install", "box", "test.mail.inbox")
        eci = env.pm("channel", "new", "box")["eci"]
        env.start()
        owner = subprocess.run(["ps", "-o", "user=", "-p",
                                str(env.proc.pid)], capture_output=True,
                               text=True).stdout.strip()
        check(owner == "nobody", "runs as the configured user", owner)
        c = Lmtp(env)
        c.cmd("LHLO x")
        r = deliver(c, [f"{eci}@{DOMAIN}"], message("as-nobody"))
        c.close()
        check(r and r[0].startswith("250"), "stores as that user", r)
        check(wait_received(env, 1), "and runs the event")
        check(env.stop() == 0, "stops cleanly")
    finally:
        env.stop()
        subprocess.run(["rm", "-rf", env.dir])


def main():
    for p in (PM, PMD):
        if not os.access(p, os.X_OK):
            check(False, f"{p} is built")
            return summary()
    env = Env()
    try:
        eci, strict, loop_eci = setup(env)
        env.start()
        test_delivery(env, eci)
        test_pipelining(env, eci, strict)
        test_refusals(env, eci, strict)
        test_dedupe(env, eci)
        test_loop(env, loop_eci)
        test_concurrent(env, eci)
        test_socketmap(env, eci)
        test_http(env, eci)
        test_connection_limit(env)
        test_reload_restart(env, eci)
        test_privileges()
    except Exception as e:  # noqa: BLE001 - any crash is a failure
        import traceback
        traceback.print_exc()
        check(False, "test run", repr(e))
    finally:
        alive = env.proc is not None and env.proc.poll() is None
        rc = env.stop()
        if rc is not None and alive:
            check(rc == 0, "final clean exit", rc)
        text = env.logtext()
        check("Sanitizer" not in text and "runtime error" not in text,
              "no sanitizer report in the daemon's log")
        if failed():
            print("--- daemon log (tail) ---")
            print("\n".join(text.splitlines()[-40:]))
        subprocess.run(["rm", "-rf", env.dir])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
