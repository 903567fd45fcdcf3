#!/usr/bin/env python3
"""outbound.py BUILD_DIR - what picos send, end to end.

A private Postfix (postfix-lib.sh) relays the test mail domain to
picomaild over LMTP and everything else (example.net) to smtp-sink, which
writes each message it receives to a file; picomaild's smtp_relay is that
Postfix.  A small HTTP server started here stands in for Twilio and for
another pico engine, recording the requests.  Checks:
  - mail into Postfix -> picomaild -> a rule's reply directive -> the
    reply in smtp-sink's files, threaded (In-Reply-To, References),
    Auto-Submitted: auto-replied, sent with MAIL FROM:<>; a forward
    directive sends the mail on;
  - no automatic reply to Auto-Submitted or list mail, to a bounce, or
    beyond the per-sender rate; two picos replying to each other stop;
  - email:send; header injection and bad addresses are KRL errors and
    queue nothing;
  - the relay down, then up: retried and delivered once; a permanent 5xx:
    the row fails and system:delivery_failed reaches the pico;
  - SMS: 429 then 201 from the provider, sent once with the right form;
  - event:send to a pico here and to another host over Sky Event HTTP;
  - the notification service: priority 2 reaches the SMS endpoint,
    priority 0 arrives as email (the pico's level for 0), -1 only goes
    into the timeline, and a pico with no address forwards to its parent.
Ends with "N passed, N failed".
"""
import base64
import glob
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mailtest import check, failed, free_port, summary, wait_for  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
PM = os.path.abspath(os.path.join(BUILD, "picomail"))
PMD = os.path.abspath(os.path.join(BUILD, "picomaild"))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIB = os.path.join(HERE, "postfix-lib.sh")
DOMAIN = "picos.test"

RULESET = r'''
ruleset test.outbound {
  meta { shares got, failures, ping }
  global {
    got = function() { ent:got.defaultsTo([]) }
    failures = function() { ent:failures.defaultsTo([]) }
    ping = function() { ent:ping }
  }
  rule mail_in {
    select when mail received
    send_directive("reply", {"text": "Thanks for: " + event:attrs{"subject"}})
    fired { ent:got := got().append(event:attrs{"subject"}) }
  }
  rule mail_forward {
    select when mail received subject re#^please forward#
    send_directive("forward", {"to": "frank@example.net"})
  }
  rule send {
    select when test send
    email:send(event:attrs{"to"}, event:attrs{"subject"}, "body",
               {"headers": event:attrs{"headers"}.defaultsTo({})})
  }
  rule sms {
    select when test sms
    sms:send(event:attrs{"to"}, event:attrs{"body"})
  }
  rule forward_event {
    select when test forward
    event:send({"eci": event:attrs{"eci"}, "domain": "test", "type": "ping",
                "attrs": {"n": event:attrs{"n"}}}, event:attrs{"host"})
  }
  rule ping {
    select when test ping
    fired { ent:ping := event:attrs }
  }
  rule failed {
    select when system delivery_failed
    fired { ent:failures := failures().append(event:attrs) }
  }
}
'''


class Recorder(http.server.BaseHTTPRequestHandler):
    """Twilio's Messages endpoint and a Sky Event endpoint: records every
    request; the SMS endpoint answers 429 the first time."""
    requests = []
    sms_calls = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.requests.append({"path": self.path, "body": body.decode(),
                                  "auth": self.headers.get("Authorization"),
                                  "type": self.headers.get("Content-Type")})
        if self.path.startswith("/sms"):
            Recorder.sms_calls += 1
            if Recorder.sms_calls == 1:
                self.send_response(429)
                self.send_header("Retry-After", "1")
                self.end_headers()
                return
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"sid": "SM0001", "status": "queued"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"eid": "x", "directives": []}')

    def log_message(self, *args):
        pass


def pf(func, *args):
    r = subprocess.run(["sh", "-c", f'. "{LIB}" && {func} "$@"', "pf"]
                       + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        print(f"# {func}: {r.stderr.strip()}")
    return r.returncode


class World:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="picomail-out.")
        os.chmod(self.tmp, 0o755)
        self.db = os.path.join(self.tmp, "p.db")
        self.sock = os.path.join(self.tmp, "lmtp.sock")
        self.sinkdir = os.path.join(self.tmp, "sink")
        os.mkdir(self.sinkdir)
        os.chmod(self.sinkdir, 0o777)
        self.pfdir = os.path.join(self.tmp, "pf")
        self.pf_port = free_port()
        self.sink_port = free_port()
        self.smap_port = free_port()
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                    Recorder)
        self.http_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.conf = os.path.join(self.tmp, "picomail.conf")
        with open(os.path.join(self.tmp, "sms.token"), "w") as f:
            f.write("s3cret\n")
        with open(self.conf, "w") as f:
            f.write(f"""database = {self.db}
mail_domain = {DOMAIN}
lmtp_listen = unix:{self.sock}
socketmap_listen = 127.0.0.1:{self.smap_port}
smtp_relay = smtp://127.0.0.1:{self.pf_port}
smtp_tls = no
sms_url = http://127.0.0.1:{self.http_port}/sms/Messages.json
sms_account = AC123
sms_token_file = {self.tmp}/sms.token
sms_from = +15550000000
""")
        self.proc = None
        self.sink = None

    def pm(self, *args, ok=True):
        r = subprocess.run([PM, "--db", self.db, "-c", self.conf, "--json"]
                           + list(args), capture_output=True, text=True)
        if ok and r.returncode != 0:
            raise RuntimeError(f"picomail {args}: {r.stderr}")
        return r

    def pmj(self, *args):
        out = self.pm(*args).stdout
        return json.loads(out) if out.strip() else None

    def start(self):
        log = open(os.path.join(self.tmp, "daemon.log"), "a")
        self.proc = subprocess.Popen([PMD, "-c", self.conf], stdout=log,
                                     stderr=log)
        if not wait_for(lambda: os.path.exists(self.sock), 30):
            raise RuntimeError("picomaild did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(60)
            self.proc = None
            return rc
        return None

    def start_sink(self):
        self.sink = subprocess.Popen(
            ["smtp-sink", "-u", "nobody", "-d", self.sinkdir + "/%M.",
             f"127.0.0.1:{self.sink_port}", "100"])
        wait_for(lambda: self.port_open(self.sink_port), 30)

    @staticmethod
    def port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False

    def sunk(self):
        """The messages smtp-sink wrote: (envelope lines, text)."""
        out = []
        for p in sorted(glob.glob(self.sinkdir + "/*")):
            with open(p, errors="replace") as f:
                out.append(f.read())
        return out

    def sunk_with(self, text):
        return [m for m in self.sunk() if text in m]

    def outbox(self):
        return self.pmj("outbox", "--limit", "200")

    def query(self, eci, name):
        return json.loads(self.pm("query", eci, "test.outbound",
                                  name).stdout)


def swaks(port, to, subject, extra=(), sender="alice@example.net"):
    return subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from", sender,
         "--to", to, "--header", f"Subject: {subject}", "--header",
         f"Message-Id: <{subject.replace(' ', '-')}@example.net>",
         "--body", "hello", "--timeout", "60"] + list(extra),
        capture_output=True, text=True)


def setup(w):
    w.pm("init")
    with open(os.path.join(w.tmp, "out.krl"), "w") as f:
        f.write(RULESET)
    w.pm("ruleset", "register", os.path.join(w.tmp, "out.krl"))
    w.pm("ruleset", "register", os.path.join(ROOT, "rulesets",
                                             "notifications.krl"))
    ecis = {}
    for name in ("a", "b"):
        w.pm("pico", "new", name)
        w.pm("install", name, "test.outbound")
        ecis[name] = w.pmj("channel", "new", name)["eci"]
    w.pm("pico", "new", "owner")
    w.pm("pico", "new", "car", "--parent", "owner")
    for name in ("owner", "car"):
        w.pm("install", name, "picomail.notifications")
        w.pm("install", name, "test.outbound")
        ecis[name] = w.pmj("channel", "new", name)["eci"]
    w.start_sink()
    if pf("pf_setup", w.pfdir, str(w.pf_port)) != 0:
        raise RuntimeError("pf_setup")
    pf("pf_master", w.pfdir,
       "picomail unix - - n - - lmtp -o lmtp_send_xforward_command=yes")
    pf("pf_conf", w.pfdir, f"relay_domains = {DOMAIN}",
       f"transport_maps = inline:{{ {DOMAIN}=picomail:unix:{w.sock}, "
       f"example.net=smtp:[127.0.0.1]:{w.sink_port} }}",
       f"relay_recipient_maps = proxy:socketmap:inet:127.0.0.1:"
       f"{w.smap_port}:picomail",
       "smtpd_recipient_restrictions = check_recipient_access "
       "inline:{ { refuse@example.net = REJECT no such user } } "
       "permit_mynetworks reject_unauth_destination")
    w.start()
    if pf("pf_start", w.pfdir) != 0:
        raise RuntimeError("pf_start")
    return ecis


def test_reply(w, ecis):
    r = swaks(w.pf_port, f"{ecis['a']}@{DOMAIN}", "question one")
    check(r.returncode == 0, "mail to pico a accepted by Postfix")
    got = wait_for(lambda: w.sunk_with("Re: question one"), 60)
    check(len(got) == 1, "the reply arrived in the mailbox", len(got or []))
    m = got[0] if got else ""
    check("In-Reply-To: <question-one@example.net>" in m, "In-Reply-To", m)
    check("References: <question-one@example.net>" in m, "References")
    check("Auto-Submitted: auto-replied" in m, "Auto-Submitted")
    check("X-Mail-Args: <>" in m, "sent with MAIL FROM:<>")
    check(f"From: {ecis['a']}@{DOMAIN}" in m, "from the channel's address")
    check("Thanks for: question one" in m, "the rule's text")

    before = len(w.outbox())
    swaks(w.pf_port, f"{ecis['a']}@{DOMAIN}", "auto one",
          ["--header", "Auto-Submitted: auto-replied"])
    swaks(w.pf_port, f"{ecis['a']}@{DOMAIN}", "list one",
          ["--header", "List-Id: <l.example.net>"])
    swaks(w.pf_port, f"{ecis['a']}@{DOMAIN}", "bounce one", sender="<>")
    check(wait_for(lambda: {"auto one", "list one", "bounce one"} <=
                   set(w.query(ecis["a"], "got")), 60),
          "the three mails reached the rule")
    check(len(w.outbox()) == before,
          "no reply to Auto-Submitted, list mail or a bounce",
          len(w.outbox()) - before)

    swaks(w.pf_port, f"{ecis['a']}@{DOMAIN}", "please forward this")
    fwd = wait_for(lambda: w.sunk_with("Subject: Fwd: please forward this"),
                   60)
    check(fwd and "X-Rcpt-Args: <frank@example.net>" in fwd[0] and
          "In-Reply-To: <please-forward-this@example.net>" in fwd[0],
          "a forward directive sends the mail on", fwd)

    # rate: at most 5 replies an hour to one sender
    for i in range(7):
        swaks(w.pf_port, f"{ecis['b']}@{DOMAIN}", f"rate {i}",
              sender="carol@example.net")
    check(wait_for(lambda: len([s for s in w.query(ecis["b"], "got")
                                if s.startswith("rate")]) == 7, 60),
          "seven mails from one sender reached the rule")
    replies = [o for o in w.outbox() if o["kind"] == "email" and
               o["request"]["to"] == ["carol@example.net"]]
    check(len(replies) == 5, "five replies, then the rate limit", len(replies))

    # two picos answering each other: a's mail to b gets no answer back
    w.pm("event", ecis["a"], "test", "send", f"to={ecis['b']}@{DOMAIN}",
         "subject=loop start")
    check(wait_for(lambda: "loop start" in w.query(ecis["b"], "got"), 60),
          "pico a's mail reached pico b")
    loop_rows = [o for o in w.outbox()
                 if "loop start" in o["request"].get("subject", "")]
    check(len(loop_rows) == 1, "b did not answer a (our own domain): the "
          "loop stops", [o["request"]["subject"] for o in loop_rows])


def test_email_send(w, ecis):
    r = w.pm("event", ecis["a"], "test", "send", "to=dave@example.net",
             "subject=From a rule")
    check(r.returncode == 0, "email:send queued")
    check(wait_for(lambda: w.sunk_with("Subject: From a rule"), 60),
          "email:send delivered")
    n = len(w.outbox())
    bad = [
        ("to=dave@example.net\r\nRCPT TO:<x@example.net>", "subject=x"),
        ("to=a@b@example.net", "subject=x"),
        ("to=dave@example.net", "subject=x",
         'headers:={"X-Note": "a\\r\\nBcc: evil@example.net"}'),
        ("to=dave@example.net", "subject=x",
         'headers:={"Bcc:X": "y"}'),
    ]
    for args in bad:
        r = w.pm("event", ecis["a"], "test", "send", *args, ok=False)
        check(r.returncode != 0 and "email:send" in r.stderr,
              "refused with a KRL error: " + args[-1][:30].replace("\r\n",
                                                                   "\\r\\n"),
              r.stderr.strip())
    check(len(w.outbox()) == n, "nothing queued by refused sends")


def test_relay_down_up(w, ecis):
    pf("pf_stop", w.pfdir)
    w.pm("event", ecis["a"], "test", "send", "to=erin@example.net",
         "subject=while down")

    def row():
        rows = [o for o in w.outbox()
                if o["request"].get("subject") == "while down"]
        return rows[0] if rows else None
    check(wait_for(lambda: row() and row()["attempts"] >= 1, 60),
          "relay down: attempted and kept pending", row())
    check(row()["state"] == "pending" and row()["last_error"],
          "pending with the error", row())
    pf("pf_start", w.pfdir)
    check(wait_for(lambda: row()["state"] == "sent", 120),
          "relay up: sent", row())
    check(wait_for(lambda: len(w.sunk_with("Subject: while down")) == 1, 60)
          and len(w.sunk_with("Subject: while down")) == 1,
          "delivered exactly once")

    w.pm("event", ecis["a"], "test", "send", "to=refuse@example.net",
         "subject=refused for good")

    def failures():
        return [f for f in w.query(ecis["a"], "failures")
                if f.get("request", {}).get("subject") ==
                "refused for good"]
    check(wait_for(failures, 60), "5xx: system:delivery_failed raised",
          w.query(ecis["a"], "failures"))
    f = failures()[0] if failures() else {}
    check("smtp 5" in f.get("error", "") or "smtp 55" in f.get("error", ""),
          "with the relay's reason", f.get("error"))
    rows = [o for o in w.outbox()
            if o["request"].get("subject") == "refused for good"]
    check(rows and rows[0]["state"] == "failed", "the row failed", rows)
    if rows:
        r = w.pm("outbox", "retry", str(int(rows[0]["id"])))
        check(r.returncode == 0, "picomail outbox retry requeues it")


def test_sms(w, ecis):
    w.pm("event", ecis["a"], "test", "sms", "to=+15551234567",
         "body=caf\u00e9 & more")
    check(wait_for(lambda: any(o["kind"] == "sms" and o["state"] == "sent"
                               for o in w.outbox()), 60),
          "SMS sent after a 429")
    sms = [o for o in w.outbox() if o["kind"] == "sms"][0]
    check(sms["attempts"] == 2 and "SM0001" in (sms.get("result") or ""),
          "two attempts, the provider's sid kept", sms)
    posts = [r for r in Recorder.requests if r["path"].startswith("/sms")]
    check(len(posts) == 2, "two requests (429, then 201)", len(posts))
    if posts:
        form = urllib.parse.parse_qs(posts[-1]["body"])
        check(form.get("To") == ["+15551234567"] and
              form.get("From") == ["+15550000000"] and
              form.get("Body") == ["caf\u00e9 & more"], "the form", form)
        want = "Basic " + base64.b64encode(b"AC123:s3cret").decode()
        check(posts[-1]["auth"] == want, "basic auth from the token file")
    r = w.pm("event", ecis["a"], "test", "sms", "to=5551234", "body=x",
             ok=False)
    check(r.returncode != 0 and "E.164" in r.stderr, "bad number refused")


def test_event_send(w, ecis):
    w.pm("event", ecis["a"], "test", "forward", f"eci={ecis['b']}", "n=1")
    check(wait_for(lambda: (w.query(ecis["b"], "ping") or {}).get("n") ==
                   "1", 60), "event:send to a pico here")
    host = f"http://127.0.0.1:{w.http_port}"
    w.pm("event", ecis["a"], "test", "forward", "eci=remote1", "n=2",
         f"host={host}")
    check(wait_for(lambda: [r for r in Recorder.requests
                            if "/sky/event/remote1/" in r["path"]], 60),
          "event:send to another host")
    posts = [r for r in Recorder.requests if "/sky/event/remote1/" in
             r["path"]]
    if posts:
        check(posts[0]["path"].endswith("/test/ping") and
              json.loads(posts[0]["body"]) == {"n": "2"} and
              posts[0]["type"] == "application/json",
              "Sky Event URL and JSON attributes", posts[0])


def test_notifications(w, ecis):
    owner = ecis["owner"]
    w.pm("event", owner, "notification", "settings",
         "email=owner@example.net", "phone=+15557654321",
         'levels:={"0": "email"}')
    w.pm("event", owner, "notification", "status", "application=fuel",
         "subject=tank low", "description=10% left", "priority:=2")
    check(wait_for(lambda: [r for r in Recorder.requests
                            if "tank+low" in r["body"] or
                            "tank%20low" in r["body"]], 60),
          "priority 2 reached the SMS endpoint")
    w.pm("event", owner, "notification", "status", "application=fuel",
         "subject=service due", "priority:=0")
    check(wait_for(lambda: w.sunk_with("Subject: fuel: service due"), 60),
          "priority 0 arrived as email (the owner's level for 0)")
    before = len(w.sunk())
    w.pm("event", owner, "notification", "status", "application=fuel",
         "subject=just so you know", "priority:=-1")
    # the car has no address: its notification goes to its parent, whose
    # settings send it by email
    w.pm("event", ecis["car"], "notification", "status", "application=car",
         "subject=crash detected", "priority:=1")
    check(wait_for(lambda: w.sunk_with("Subject: car: crash detected"), 60),
          "a pico without an address notified its parent")
    tl = json.loads(w.pm("query", owner, "picomail.notifications",
                         "timelineItems", "limit:=10").stdout)
    subjects = [t["subject"] for t in tl]
    check("just so you know" in subjects and "crash detected" in subjects,
          "timeline (priority -1 recorded only)", subjects)
    check(not w.sunk_with("just so you know") and len(w.sunk()) == before + 1,
          "priority -1 sent nothing")


def main():
    if os.geteuid() != 0:
        check(False, "runs as root (Postfix)")
        return summary()
    w = World()
    try:
        ecis = setup(w)
        test_reply(w, ecis)
        test_email_send(w, ecis)
        test_relay_down_up(w, ecis)
        test_sms(w, ecis)
        test_event_send(w, ecis)
        test_notifications(w, ecis)
    except Exception as e:  # noqa: BLE001 - any crash is a failure
        import traceback
        traceback.print_exc()
        check(False, "test run", repr(e))
    finally:
        pf("pf_stop", w.pfdir)
        rc = w.stop()
        check(rc == 0, "picomaild stops cleanly", rc)
        if w.sink is not None:
            w.sink.kill()
            w.sink.wait()
        w.http.shutdown()
        if failed():
            print("--- daemon log (tail) ---")
            try:
                with open(os.path.join(w.tmp, "daemon.log")) as f:
                    print("".join(f.readlines()[-40:]))
            except OSError:
                pass
        subprocess.run(["rm", "-rf", w.tmp])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
