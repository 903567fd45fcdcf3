#!/usr/bin/env python3
"""sky.py BUILD_DIR - the Sky Event / Sky Cloud listener (src/http/)
end to end.

Builds tests/http/driver.c (the listener in front of an engine) and the
parser's unit test (t_sky_parse.c) against BUILD_DIR/libpicomail.a, with
the sanitizers when the library has them, makes picos with
BUILD_DIR/picomail on a temporary database, and talks HTTP to the driver
over real sockets: every route and method, query strings, JSON and form
bodies, _headers, every status code (400 403 404 413 500), malformed URLs
and percent-encoding, the body limit at N and N+1 bytes (and chunked),
CORS and OPTIONS, .txt/.html/.json, _cookie/_redirect, /metrics,
keep-alive, concurrent clients, the listener both with event_start
(suspended connections) and with blocking calls (a thread per
connection), a stop with events in flight, and that Sky Event and Sky
Cloud answer exactly as `picomail event` / `picomail query` do for
conformance rulesets.  Waits poll with generous deadlines; nothing depends
on timing.  Ends with "N passed, N failed".
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import http.client

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PM = os.path.abspath(os.path.join(BUILD, "picomail"))
LIB = os.path.abspath(os.path.join(BUILD, "libpicomail.a"))
CASES = os.path.join(ROOT, "..", "shared", "conformance", "cases")
MAX_BODY = 4096
sys.path.insert(0, os.path.join(ROOT, "tests", "mail"))
from mailtest import check, summary, wait_for  # noqa: E402

# conformance cases compared with the command line: directives, shared
# functions, errors, module use, several rulesets
COMPARE = ["query_shares", "app_cart", "act_choose", "act_defaction",
           "raise_chain", "rule_order", "ent_basic", "err_runtime",
           "mod_use", "map_ops", "ee_compound", "rule_foreach"]

tmp = tempfile.mkdtemp(prefix="http-test.")


def build():
    pkgs = "jansson libpcre2-8 sqlite3 libcrypto gmime-3.0 libmicrohttpd"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"]
                           + pkgs.split(), capture_output=True, text=True)
    san = []
    nm = subprocess.run(["nm", LIB], capture_output=True, text=True)
    if "__asan_" in nm.stdout:
        san = ["-fsanitize=address,undefined"]
    common = ["cc", "-std=c11", "-D_POSIX_C_SOURCE=200809L",
              "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", "-Wshadow",
              "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wvla",
              "-Wformat=2", "-O1", "-g"] + san + [
              "-iquote", os.path.join(ROOT, "include"),
              "-iquote", os.path.join(ROOT, "tests", "unit")]
    srcs = [os.path.join(ROOT, "src", "http", f)
            for f in sorted(os.listdir(os.path.join(ROOT, "src", "http")))
            if f.endswith(".c")]
    libs = [LIB] + flags.stdout.split() + ["-lm", "-lpthread"]
    out = {}
    for name in ("driver", "t_sky_parse"):
        exe = os.path.join(tmp, name)
        r = subprocess.run(common + ["-o", exe, os.path.join(HERE, name + ".c")]
                           + srcs + libs, capture_output=True, text=True)
        check(r.returncode == 0, "build " + name, r.stderr[-2000:])
        out[name] = exe if r.returncode == 0 else None
    return out


def pm(db, *args):
    r = subprocess.run([PM, "--db", db, "--json"] + list(args),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"picomail {args}: {r.stderr}")
    return json.loads(r.stdout) if r.stdout.strip() else None


class Server:
    """The driver on DB; args as driver.c takes them."""

    def __init__(self, exe, db, *args):
        self.log = open(os.path.join(tmp, "driver.log"), "a")
        self.proc = subprocess.Popen(
            [exe, "--db", db, "--max-body", str(MAX_BODY)] + list(args),
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError("the driver did not start: " + line
                               + open(self.log.name).read()[-2000:])
        self.port = int(line.split()[1])

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        return rc


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case name -> [values]
        self.body = body

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None

    def __repr__(self):
        return f"{self.status} {self.headers} {self.body[:300]!r}"


def read_response(f, method="GET"):
    """One response from the file F of a socket."""
    line = f.readline()
    if not line:
        return None
    status = int(line.split()[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    body = b""
    if method == "HEAD":
        return Resp(status, headers, body)
    if "content-length" in headers:
        body = f.read(int(headers["content-length"][0]))
    elif headers.get("transfer-encoding", [""])[0].lower() == "chunked":
        while True:
            n = int(f.readline().split(b";")[0], 16)
            chunk = f.read(n + 2)
            if n == 0:
                break
            body += chunk[:-2]
    return Resp(status, headers, body)


def raw(port, method, target, headers=(), body=b"", chunked=None):
    """One request on a new connection, sent exactly as given (plus Host
    and Content-Length, and Connection: close)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), 60)
    except OSError:
        return None             # a server that is stopping
    s.settimeout(60)
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if chunked is not None:
        lines.append("Transfer-Encoding: chunked")
    elif body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    try:
        s.sendall(data)
        if chunked is not None:
            for c in chunked:
                s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
            s.sendall(b"0\r\n\r\n")
    except OSError:
        pass                    # the server may answer and close first
    f = s.makefile("rb")
    try:
        return read_response(f, method)
    except OSError:
        return None
    finally:
        f.close()
        s.close()


def raw_bytes(port, data):
    """DATA as it is, on a new connection; the response or None."""
    s = socket.create_connection(("127.0.0.1", port), 60)
    s.settimeout(60)
    f = s.makefile("rb")
    try:
        s.sendall(data)
        return read_response(f)
    except OSError:
        return None
    finally:
        f.close()
        s.close()


def get(port, target, **kw):
    return raw(port, "GET", target, **kw)


def post_json(port, target, obj, method="POST"):
    return raw(port, method, target, [("Content-Type", "application/json")],
               json.dumps(obj).encode())


def is_error(r, status, text=None):
    """R is STATUS with {"error": ...} (containing TEXT)."""
    if r is None or r.status != status:
        return False
    j = r.json()
    return isinstance(j, dict) and isinstance(j.get("error"), str) and \
        (text is None or text in j["error"])


# ---- the picos ----

def setup(db):
    pm(db, "init")
    pm(db, "ruleset", "register", os.path.join(ROOT, "rulesets", "hello.krl"))
    pm(db, "ruleset", "register", os.path.join(HERE, "sky_test.krl"))
    p = pm(db, "pico", "new", "web")
    pm(db, "install", "web", "picomail.hello")
    pm(db, "install", "web", "picomail.test.http")
    open_ch = pm(db, "channel", "new", "web", "--tag", "open")["eci"]
    strict = pm(db, "channel", "new", "web", "--tag", "strict",
                "--allow", "echo:hello")["eci"]
    # a query policy: only picomail.hello's greeting
    pm(db, "pico", "new", "other")
    return {"eci": open_ch, "strict": strict, "pico": p["id"]}


def set_query_policy(db, pico):
    """A channel of PICO whose queries may only reach picomail.hello's
    greeting.  The command line has no flag for query policies, so a rule
    makes it with ctx:newChannel."""
    src = os.path.join(tmp, "mkchan.krl")
    with open(src, "w") as f:
        f.write("""ruleset test.mkchan {
  rule make {
    select when test mkchan
    ctx:newChannel(["qpol"], {"allow": [{"domain": "*", "name": "*"}]},
                   {"allow": [{"rid": "picomail.hello", "name": "greeting"}]})
  }
}
""")
    pm(db, "ruleset", "register", src)
    pm(db, "install", pico, "test.mkchan")
    pm(db, "install", pico, "picomail.hello")
    pm(db, "install", pico, "picomail.test.http")
    chans = pm(db, "channel", "list", pico)
    ch = pm(db, "channel", "new", pico)["eci"]
    pm(db, "event", ch, "test", "mkchan")
    for c in pm(db, "channel", "list", pico):
        if "qpol" in c.get("tags", []):
            return c.get("id") or c.get("eci")
    print("# no qpol channel among", chans)
    return None


# ---- the checks ----

def test_routes(port, ids):
    eci = ids["eci"]
    r = get(port, f"/sky/event/{eci}/none/echo/hello?name=Ada")
    j = r.json() if r else None
    ok = r is not None and r.status == 200 and isinstance(j, dict) and \
        isinstance(j.get("eid"), str) and len(j["directives"]) == 1
    check(ok, "sky event: 200 {eid, directives}", r)
    if ok:
        d = j["directives"][0]
        check(d.get("type") == "directive" and d.get("name") == "say" and
              d.get("options") == {"something": "Hello Ada!"} and
              d.get("meta", {}).get("rid") == "picomail.hello" and
              d["meta"].get("rule_name") == "hello" and
              d["meta"].get("txnId") == j["eid"],
              "sky event: the reference's directive shape", d)
        check(r.header("content-type").startswith("application/json"),
              "sky event: JSON content type", r.headers)

    # attrs: query string (nested) + JSON body (wins) + _headers + __eid
    r = raw(port, "POST", f"/sky/event/{eci}/my-eid/test/attrs?"
            "a[b]=1&a[c][]=x&a[c][]=y&k=query&sp=a+b%20c",
            [("Content-Type", "application/json"), ("X-Custom", "one"),
             ("x-custom", "two")],
            json.dumps({"k": "body", "n": 2, "deep": {"x": [1, None]}})
            .encode())
    a = (r.json() or {}).get("directives", [{}])[0].get("options", {}) \
        .get("attrs") if r and r.status == 200 else None
    check(a is not None and a.get("a") == {"b": "1", "c": ["x", "y"]} and
          a.get("k") == "body" and a.get("n") == 2 and
          a.get("deep") == {"x": [1, None]} and a.get("sp") == "a b c",
          "attrs: nested query string, JSON body wins", a)
    h = (a or {}).get("_headers", {})
    check(h.get("x-custom") == "one, two" and
          h.get("content-type") == "application/json" and
          h.get("host") == f"127.0.0.1:{port}" and
          all(k == k.lower() for k in h),
          "attrs: _headers with lower-case names, repeats joined", h)
    check(a is not None and a.get("__eid") == "my-eid",
          "attrs: __eid from the URL's eid", a)
    r = post_json(port, f"/sky/event/{eci}/my-eid/test/attrs",
                  {"__eid": "mine"})
    a = r.json()["directives"][0]["options"]["attrs"] \
        if r and r.status == 200 else {}
    check(a.get("__eid") == "mine", "attrs: __eid in the body is kept", a)
    r = get(port, f"/sky/event/{eci}/none/test/attrs")
    a = r.json()["directives"][0]["options"]["attrs"] \
        if r and r.status == 200 else {"x": 1}
    check(set(a) == {"_headers"}, "attrs: eid none adds no __eid", a)

    # a form body
    r = raw(port, "POST", f"/sky/event/{eci}/none/test/attrs?q=1",
            [("Content-Type", "application/x-www-form-urlencoded")],
            b"name=Bo+b&x=%C3%A9&x=2&q=form")
    a = r.json()["directives"][0]["options"]["attrs"] \
        if r and r.status == 200 else {}
    check(a.get("name") == "Bo b" and a.get("x") == ["\u00e9", "2"] and
          a.get("q") == "form", "attrs: form body (flat, repeats a list)", a)
    # another content type: the body is not read as attributes
    r = raw(port, "POST", f"/sky/event/{eci}/none/test/attrs?q=1",
            [("Content-Type", "text/plain")], b"name=x")
    a = r.json()["directives"][0]["options"]["attrs"] \
        if r and r.status == 200 else {}
    check(set(a) == {"q", "_headers"}, "attrs: a text/plain body is ignored",
          a)

    # any method
    for m in ("PUT", "DELETE", "PATCH", "POST", "GET"):
        r = raw(port, m, f"/sky/event/{eci}/none/echo/hello?name={m}")
        check(r is not None and r.status == 200 and
              r.json()["directives"][0]["options"]["something"] ==
              f"Hello {m}!", f"sky event: method {m}", r)
    r = raw(port, "HEAD", f"/sky/cloud/{eci}/picomail.hello/greeting")
    check(r is not None and r.status == 200 and r.body == b"",
          "sky cloud: HEAD", r)

    # percent-encoded path segments
    r = get(port, f"/sky/event/{eci}/none/ech%6F/hell%6f?name=%E2%82%AC")
    check(r is not None and r.status == 200 and
          r.json()["directives"][0]["options"]["something"] ==
          "Hello \u20ac!", "sky event: percent-decoded path and query", r)
    r = get(port, f"/sky/event/{eci}/none/echo/hello/?name=slash")
    check(r is not None and r.status == 200, "sky event: trailing slash", r)

    # Sky Cloud and its formats
    r = get(port, f"/sky/cloud/{eci}/picomail.hello/greeting?name=Bob")
    check(r is not None and r.status == 200 and r.json() == "Hello Bob!",
          "sky cloud: JSON value", r)
    r = post_json(port, f"/sky/cloud/{eci}/picomail.test.http/echo?a=q&b=q",
                  {"b": [1, 2]})
    check(r is not None and r.json() == {"a": "q", "b": [1, 2]},
          "sky cloud: args from query and body", r)
    r = get(port, f"/sky/cloud/{eci}/picomail.test.http/headers",
            headers=[("X-Thing", "t")])
    check(r is not None and (r.json() or {}).get("x-thing") == "t",
          "sky cloud: _headers as an argument", r)
    r = get(port, f"/sky/cloud/{eci}/picomail.test.http/text.txt")
    check(r is not None and r.status == 200 and
          r.body == b"plain <b>text</b>" and
          r.header("content-type").startswith("text/plain"),
          "sky cloud: .txt is the raw string as text/plain", r)
    r = get(port, f"/sky/cloud/{eci}/picomail.test.http/page.html")
    check(r is not None and r.status == 200 and r.body == b"<p>Hello</p>" and
          r.header("content-type").startswith("text/html"),
          "sky cloud: .html is text/html", r)
    r = get(port, f"/sky/cloud/{eci}/picomail.test.http/text.json")
    check(r is not None and r.json() == "plain <b>text</b>" and
          r.header("content-type").startswith("application/json"),
          "sky cloud: .json is JSON", r)
    r = get(port, f"/sky/cloud/{eci}/picomail.test.http/echo.txt?a=1&b=2")
    check(r is not None and r.json() == {"a": "1", "b": "2"},
          "sky cloud: .txt of a map is its JSON", r)
    r = get(port, f"/sky/cloud/{eci}/picomail.test.http/nothing")
    check(r is not None and r.status == 200 and r.body == b"",
          "sky cloud: null is an empty body", r)

    # /c/ routes
    before = get(port, f"/c/{eci}/query/picomail.test.http/count").json()
    r = get(port, f"/c/{eci}/event/test/count")
    check(r is not None and r.status == 200 and isinstance(r.json(), str)
          and len(r.json()) > 10, "/c/ECI/event: a JSON string eid", r)
    check(wait_for(lambda: get(port, f"/c/{eci}/query/picomail.test.http/"
                                     "count").json() == before + 1, 30),
          "/c/ECI/event: the event runs")
    r = get(port, f"/c/{eci}/event-wait/test/count")
    j = r.json() if r else None
    check(r is not None and r.status == 200 and isinstance(j, dict) and
          j["directives"][0]["name"] == "counted",
          "/c/ECI/event-wait: {eid, directives}", r)
    r = get(port, f"/c/{eci}/query/picomail.hello/greeting.txt?name=C")
    check(r is not None and r.body == b"Hello C!" and
          r.header("content-type").startswith("text/plain"),
          "/c/ECI/query with .txt", r)
    r = get(port, f"/c/{eci}/event/test/count/query/picomail.test.http/count")
    check(r is not None and r.status == 200 and r.json() == before + 3,
          "/c/ECI/event/../query/..: the query after the event", r)
    r = get(port, f"/c/{eci}/event/echo/hello/query/picomail.hello/"
                  "greeting?name=Q")
    check(r is not None and r.json() == "Hello Q!",
          "/c/ECI/event/../query/..: the attrs are the args", r)

    # special directives
    r = get(port, f"/sky/event/{eci}/none/test/cookie")
    check(r is not None and r.status == 200 and
          r.headers.get("set-cookie") == ["session=abc; Path=/",
                                          "theme=dark"],
          "_cookie directives: Set-Cookie headers", r)
    r = get(port, f"/sky/event/{eci}/none/test/redirect")
    check(r is not None and r.status == 302 and
          r.header("location") == "https://example.org/next",
          "_redirect directive: 302 and Location", r)

    # /metrics
    r = get(port, "/metrics")
    check(r is not None and r.status == 200 and
          b"picomail_http_responses_total{code=\"2xx\"}" in r.body and
          b"picomail_events_total" in r.body and
          r.header("content-type").startswith("text/plain"),
          "/metrics: Prometheus text", r)


def test_statuses(port, ids, qpol):
    eci = ids["eci"]
    # 400
    cases400 = [
        (f"/sky/event/{eci}/none/echo/hello?name=%zz", "query string"),
        (f"/sky/event/{eci}/none/ec%ho/hello", "percent-encoding in the path"),
        (f"/sky/event/{eci}/none/ec%FFho/hello", "percent-encoding in the path"),
        (f"/sky/event/{eci}/none/a%2Fb/hello", "'/' or NUL"),
        (f"/sky/event/{eci}/none/a%00b/hello", "'/' or NUL"),
        (f"/sky/event/{eci}/none/echo", "malformed path"),
        (f"/sky/event/{eci}/none/echo/hello/x", "malformed path"),
        (f"/sky/event/{eci}//echo/hello", "empty segment"),
        (f"/sky/cloud/{eci}/picomail.hello", "malformed path"),
        (f"/c/{eci}/event/echo/hello/query/x", "malformed path"),
        (f"/sky/event/{eci}/none/%20/hello", "missing event.domain"),
    ]
    for target, text in cases400:
        r = get(port, target)
        check(is_error(r, 400, text), f"400 {text}: {target}", r)
    r = raw(port, "POST", f"/sky/event/{eci}/none/echo/hello",
            [("Content-Type", "application/json")], b'{"name": ')
    check(is_error(r, 400, "not valid JSON"), "400 bad JSON body", r)
    r = raw(port, "POST", f"/sky/event/{eci}/none/echo/hello",
            [("Content-Type", "application/json")], b'["a"]')
    check(is_error(r, 400, "must be an object"), "400 JSON array body", r)
    r = raw(port, "POST", f"/sky/event/{eci}/none/echo/hello",
            [("Content-Type", "application/x-www-form-urlencoded")],
            b"name=%G1")
    check(is_error(r, 400, "form body"), "400 bad form encoding", r)
    r = raw(port, "GET", "sky/event/x/none/a/b")
    check(r is None or r.status == 400, "400 a target without '/'", r)
    # requests libmicrohttpd itself refuses: a broken header line, a
    # request line longer than the connection's memory
    r = raw_bytes(port, f"GET /sky/event/{eci}/none/echo/hello HTTP/1.1\r\n"
                  "Host: x\r\nno colon in this line\r\n\r\n".encode())
    check(r is not None and r.status == 400, "400 a malformed header", r)
    r = get(port, f"/sky/event/{eci}/none/echo/hello?name=" + "x" * 40000)
    check(r is not None and r.status in (414, 431),
          "414 a request target too long", r)
    # 403
    r = get(port, f"/sky/event/{ids['strict']}/none/test/count")
    check(is_error(r, 403, "Not allowed by channel policy"),
          "403 event policy", r)
    r = get(port, f"/sky/event/{ids['strict']}/none/echo/hello?name=ok")
    check(r is not None and r.status == 200, "the policy allows echo:hello", r)
    r = get(port, f"/sky/event/{ids['pico']}/none/echo/hello")
    check(is_error(r, 403, "family channel"), "403 family (self) channel", r)
    if qpol is not None:
        r = get(port, f"/sky/cloud/{qpol}/picomail.test.http/count")
        check(is_error(r, 403, "Not allowed by channel policy"),
              "403 query policy", r)
        r = get(port, f"/sky/cloud/{qpol}/picomail.hello/greeting")
        check(r is not None and r.status == 200,
              "the query policy allows greeting", r)
    else:
        check(False, "a channel with a query policy")
    # 404
    r = get(port, "/sky/event/nosuchchannel/none/echo/hello")
    check(is_error(r, 404, "ECI not found nosuchchannel"), "404 unknown ECI "
          "(event)", r)
    r = get(port, "/sky/cloud/nosuchchannel/picomail.hello/greeting")
    check(is_error(r, 404, "ECI not found"), "404 unknown ECI (query)", r)
    r = get(port, f"/sky/cloud/{eci}/no.such.rid/f")
    check(is_error(r, 404, "doesn't have no.such.rid installed"),
          "404 rid not installed", r)
    r = get(port, f"/sky/cloud/{eci}/picomail.hello/nope")
    check(is_error(r, 404, "does not have query function"),
          "404 function not shared", r)
    for target in ("/", "/nothing/here", f"/c/{eci}/other/a/b",
                   "/sky/clouds/a/b/c"):
        r = get(port, target)
        check(is_error(r, 404, "Cannot GET"), f"404 unknown route {target}", r)
    # 413, at the limit and one past it
    pad = MAX_BODY - len('{"name":""}')
    body = json.dumps({"name": "x" * pad}, separators=(",", ":")).encode()
    r = raw(port, "POST", f"/sky/event/{eci}/none/echo/hello",
            [("Content-Type", "application/json")], body)
    check(len(body) == MAX_BODY and r is not None and r.status == 200,
          f"a body of exactly {MAX_BODY} bytes", r)
    body = json.dumps({"name": "x" * (pad + 1)},
                      separators=(",", ":")).encode()
    r = raw(port, "POST", f"/sky/event/{eci}/none/echo/hello",
            [("Content-Type", "application/json")], body)
    check(is_error(r, 413, "larger than"), f"413 at {MAX_BODY + 1} bytes", r)
    r = raw(port, "POST", f"/sky/event/{eci}/none/echo/hello",
            [("Content-Type", "application/json")],
            chunked=[b'{"name":"', b"y" * MAX_BODY, b'"}'])
    check(is_error(r, 413, "larger than"), "413 for a chunked body", r)
    r = raw(port, "POST", f"/sky/event/{eci}/none/echo/hello",
            [("Content-Type", "application/json")],
            chunked=[b'{"name":', b'"chunks"}'])
    check(r is not None and r.status == 200 and
          r.json()["directives"][0]["options"]["something"] ==
          "Hello chunks!", "a small chunked body", r)
    # 500
    r = get(port, f"/sky/event/{eci}/none/test/fail")
    check(is_error(r, 500), "500 runtime error in a rule", r)
    r = get(port, f"/sky/cloud/{eci}/picomail.test.http/boom")
    check(is_error(r, 500), "500 runtime error in a query", r)
    r = get(port, f"/sky/event/{eci}/none/echo/hello?name=after")
    check(r is not None and r.status == 200, "fine after the errors", r)
    # every answer has CORS
    r = get(port, "/nothing")
    check(r is not None and r.header("access-control-allow-origin") == "*",
          "CORS on an error", r)


def test_cors(port, ids):
    r = raw(port, "OPTIONS", f"/sky/event/{ids['eci']}/none/echo/hello",
            [("Origin", "https://app.example"),
             ("Access-Control-Request-Method", "POST"),
             ("Access-Control-Request-Headers", "content-type, x-token")])
    check(r is not None and r.status == 200 and
          r.header("access-control-allow-origin") == "*" and
          "POST" in (r.header("access-control-allow-methods") or "") and
          r.header("access-control-allow-headers") == "content-type, x-token",
          "OPTIONS preflight: 200 with CORS headers", r)
    r = raw(port, "OPTIONS", "/anything/at/all")
    check(r is not None and r.status == 200, "OPTIONS on any path", r)
    r = get(port, f"/sky/cloud/{ids['eci']}/picomail.hello/greeting",
            headers=[("Origin", "https://app.example")])
    check(r is not None and r.header("access-control-allow-origin") == "*" and
          "Content-Type" in (r.header("access-control-allow-headers") or ""),
          "CORS on a query", r)


def test_keepalive(port, ids):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ok = True
    for i in range(20):
        c.request("GET", f"/sky/event/{ids['eci']}/none/echo/hello?name=k{i}")
        r = c.getresponse()
        body = json.loads(r.read())
        ok = ok and r.status == 200 and \
            body["directives"][0]["options"]["something"] == f"Hello k{i}!"
        c.request("GET", f"/sky/cloud/{ids['eci']}/picomail.hello/greeting")
        r = c.getresponse()
        ok = ok and r.status == 200 and json.loads(r.read()) == "Hello world!"
    c.close()
    check(ok, "40 requests on one keep-alive connection")


def test_concurrent(port, ids, label):
    eci = ids["eci"]
    start = get(port, f"/sky/cloud/{eci}/picomail.test.http/count").json()
    n_threads, per = 24, 40
    results = []
    lock = threading.Lock()

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        for i in range(per):
            try:
                if i % 4 == 3:
                    c.request("GET", f"/sky/cloud/{eci}/picomail.test.http/"
                                     "count")
                    r = c.getresponse()
                    mine.append(("q", r.status, json.loads(r.read())))
                else:
                    c.request("POST", f"/sky/event/{eci}/none/test/count",
                              body=json.dumps({"k": k}),
                              headers={"Content-Type": "application/json"})
                    r = c.getresponse()
                    mine.append(("e", r.status, json.loads(r.read())))
            except (OSError, http.client.HTTPException, ValueError) as e:
                mine.append(("x", 0, str(e)))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.close()
        with lock:
            results.extend(mine)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    events = [r for r in results if r[0] == "e"]
    bad = [r for r in results if r[1] != 200]
    check(not bad, f"{label}: {len(results)} concurrent requests all 200",
          bad[:3])
    eids = [r[2].get("eid") for r in events if isinstance(r[2], dict)]
    check(len(set(eids)) == len(events),
          f"{label}: every event its own eid", len(set(eids)))
    end = get(port, f"/sky/cloud/{eci}/picomail.test.http/count").json()
    check(end == start + len(events),
          f"{label}: the count went up by {len(events)}",
          f"{start} -> {end}")
    qs = [r[2] for r in results if r[0] == "q"]
    check(all(isinstance(v, (int, float)) and start <= v <= end for v in qs),
          f"{label}: queries meanwhile see consistent counts")


# ---- Sky API vs the command line on conformance rulesets ----

def case_rulesets(name):
    path = os.path.join(CASES, name + ".jsonl")
    files = [name + ".krl"]
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*#\s*rulesets:\s*(\S+)", line)
            if m:
                files = m.group(1).split(",")
    return [os.path.join(CASES, x) for x in files]


def normalize(obj, subst):
    text = json.dumps(obj, sort_keys=True)
    for a, b in subst:
        text = text.replace(a, b)
    v = json.loads(text)
    if isinstance(v, dict) and "directives" in v:
        v.pop("eid", None)
        for d in v["directives"]:
            if isinstance(d, dict) and isinstance(d.get("meta"), dict):
                d["meta"].pop("txnId", None)
    return v


def cli(db, *args):
    r = subprocess.run([PM, "--db", db, "--json"] + list(args),
                       capture_output=True, text=True)
    if r.returncode == 0:
        return json.loads(r.stdout)
    msg = r.stderr.strip()
    if msg.startswith("picomail: "):
        msg = msg[len("picomail: "):]
    return {"error": msg}


def compare_case(port, db, name):
    """Replay case NAME on two new picos, one through HTTP and one through
    the command line; the number of lines that differ."""
    rulesets = case_rulesets(name)
    rids = [pm(db, "ruleset", "register", f)["rid"] for f in rulesets]
    picos = []
    for side in ("http", "cli"):
        p = pm(db, "pico", "new", f"{name}-{side}")["id"]
        for rid in rids:
            pm(db, "install", p, rid)
        picos.append((p, pm(db, "channel", "new", p)["eci"]))
    (hp, he), (cp, ce) = picos
    subst = [(he, "ECI"), (ce, "ECI"), (hp, "PICO"), (cp, "PICO")]
    bad = 0
    n = 0
    with open(os.path.join(CASES, name + ".jsonl")) as f:
        lines = [x for x in f if x.strip() and not x.lstrip().startswith(("#", "//"))]
    for line in lines:
        item = json.loads(line)
        n += 1
        if "event" in item:
            ev = item["event"]
            target = f"/sky/event/{he}/none/{ev['domain']}/{ev['type']}"
            attrs = ev.get("attrs", {})
            body = json.dumps(attrs).encode()
        else:
            q = item["query"]
            target = f"/sky/cloud/{he}/{q['rid']}/{q['name']}"
            attrs = q.get("args", {})
            body = json.dumps(attrs).encode()
        r = raw(port, "POST", target, [("Content-Type", "application/json")],
                body)
        headers = {"host": f"127.0.0.1:{port}",
                   "content-type": "application/json",
                   "content-length": str(len(body)), "connection": "close"}
        args = [f"{k}:={json.dumps(v)}" for k, v in attrs.items()]
        args.append("_headers:=" + json.dumps(headers))
        if "event" in item:
            want = cli(db, "event", ce, ev["domain"], ev["type"], *args)
        else:
            want = cli(db, "query", ce, q["rid"], q["name"], *args)
        got = r.json() if r is not None and r.body else None
        if r is not None and r.status != 200 and isinstance(got, dict):
            msg = got.get("error", "")
            got = {"error": msg[len("Error: "):]
                   if msg.startswith("Error: ") else msg}
            if r.status not in (400, 403, 404, 500):
                got["status"] = r.status
        elif r is not None and r.status == 200 and not r.body:
            got = None
        if normalize(got, subst) != normalize(want, subst):
            bad += 1
            if bad <= 3:
                print(f"# {name}: {line.strip()}\n#   http: {got}\n"
                      f"#   cli:  {want}")
    return n, bad


def main():
    exes = build()
    if exes.get("t_sky_parse"):
        r = subprocess.run([exes["t_sky_parse"]], capture_output=True,
                           text=True)
        last = (r.stdout.strip().splitlines() or [""])[-1]
        m = re.match(r"(\d+) passed, (\d+) failed", last)
        check(r.returncode == 0 and m is not None and m.group(2) == "0",
              f"t_sky_parse: {last}", r.stdout[-3000:] + r.stderr[-2000:])
    if not exes.get("driver"):
        return summary()
    db = os.path.join(tmp, "p.db")
    ids = setup(db)
    for spec, text in (("127.0.0.1:99999", "bad port"),
                       ("nohostport", "expected host:port"),
                       ("192.0.2.1:0", "http_listen 192.0.2.1:0: ")):
        r = subprocess.run([exes["driver"], "--db", db, "--listen", spec],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 1 and text in r.stderr,
              f"listen {spec}: refused with a message", r.stderr)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    spec = f"127.0.0.1:{busy.getsockname()[1]}"
    r = subprocess.run([exes["driver"], "--db", db, "--listen", spec],
                       capture_output=True, text=True, timeout=60)
    busy.close()
    check(r.returncode == 1 and "in use" in r.stderr,
          "listen on a port in use: refused with a message", r.stderr)
    qpol = set_query_policy(db, "other")
    srv = None
    try:
        for label, args in (("event_start", []),
                            ("blocking, a thread per connection",
                             ["--sync"]),
                            ("done called within event_start",
                             ["--done-now"]),
                            ("event_start without query_start",
                             ["--no-query-start"]),
                            ("4 polling threads", ["--threads", "4"])):
            print(f"# the listener with {label}")
            srv = Server(exes["driver"], db, *args)
            if not args:
                test_routes(srv.port, ids)
                test_statuses(srv.port, ids, qpol)
                test_cors(srv.port, ids)
                test_keepalive(srv.port, ids)
            else:
                # the same routes and errors through the blocking path
                r = get(srv.port, f"/sky/event/{ids['eci']}/none/echo/hello"
                                  "?name=sync")
                check(r is not None and r.status == 200 and
                      r.json()["directives"][0]["options"]["something"] ==
                      "Hello sync!", f"{label}: sky event", r)
                r = get(srv.port, f"/c/{ids['eci']}/event/test/count/query/"
                                  "picomail.test.http/count")
                check(r is not None and r.status == 200 and
                      isinstance(r.json(), (int, float)),
                      f"{label}: event then query", r)
                r = get(srv.port, f"/sky/event/{ids['strict']}/none/test/x")
                check(is_error(r, 403), f"{label}: 403", r)
                r = get(srv.port, f"/sky/event/{ids['eci']}/none/test/fail")
                check(is_error(r, 500), f"{label}: 500", r)
                r = get(srv.port, f"/sky/event/{ids['eci']}/none/test/"
                                  "redirect")
                check(r is not None and r.status == 302, f"{label}: 302", r)
            test_concurrent(srv.port, ids, label)
            rc = srv.stop()
            check(rc == 0, f"{label}: SIGTERM stops the driver cleanly", rc)
            srv = None

        # stops with events and queries in flight: each request is
        # answered or its connection closed, and nothing leaks (the
        # sanitizer check below)
        eci = ids["eci"]
        targets = [f"/sky/event/{eci}/none/test/count",
                   f"/sky/cloud/{eci}/picomail.test.http/count",
                   f"/c/{eci}/event/test/count/query/picomail.test.http/"
                   "count"]
        for rnd, args in enumerate(([], ["--threads", "4"],
                                    ["--no-query-start"], ["--done-now"],
                                    [], ["--sync"])):
            srv = Server(exes["driver"], db, *args)
            answers = []

            def client(k, port=srv.port):
                r = raw(port, "POST", targets[k % 3],
                        [("Content-Type", "application/json")],
                        json.dumps({"k": k}).encode())
                answers.append(r.status if r is not None else None)

            ts = [threading.Thread(target=client, args=(k,))
                  for k in range(60)]
            for t in ts:
                t.start()
            wait_for(lambda: len(answers) >= 5, 30)
            rc = srv.stop()
            for t in ts:
                t.join()
            srv = None
            check(rc == 0 and len(answers) == 60 and
                  all(a in (200, 503, None) for a in answers),
                  f"stop {rnd + 1} {' '.join(args)} with requests in flight: "
                  "each answered or closed", (rc, answers))

        print("# Sky API vs picomail event/query on conformance rulesets")
        srv = Server(exes["driver"], db)
        for name in COMPARE:
            if not os.path.exists(os.path.join(CASES, name + ".jsonl")):
                check(False, f"conformance case {name} exists")
                continue
            n, bad = compare_case(srv.port, db, name)
            check(bad == 0 and n > 0,
                  f"{name}: {n} lines, HTTP == command line", f"{bad} differ")
        check(srv.stop() == 0, "the driver stops cleanly")
        srv = None
    finally:
        if srv is not None:
            srv.stop(signal.SIGKILL)
        log = os.path.join(tmp, "driver.log")
        if os.path.exists(log):
            text = open(log).read()
            lines = text.splitlines()
            bad = [i for i, x in enumerate(lines)
                   if "ERROR" in x or "runtime error" in x or "Sanitizer" in x
                   or "leak" in x.lower()]
            check(not bad, "no sanitizer or leak reports from the driver",
                  "\n".join(lines[bad[0]:bad[0] + 80]) if bad else "")
        if os.environ.get("KEEP_TMP"):
            print("# kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
