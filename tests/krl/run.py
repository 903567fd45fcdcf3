#!/usr/bin/env python3
"""KRL golden tests.

usage: run.py BUILD_DIR

Every tests/krl/expr/*.test file holds cases of two lines, separated by
blank lines (lines starting with # are comments):

    a KRL body: declarations and one expression, as `picomail eval` takes it
    the expected result as JSON, or
      error: TEXT          evaluation fails with a message containing TEXT
      compile error: TEXT  compiling fails so, with a FILE:LINE:COL: prefix

Numbers compare as numbers (1 == 1.0), map key order is ignored.  Ends
with the line "N passed, N failed".
"""
import glob
import json
import os
import re
import subprocess
import sys


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def same(a, b):
    if is_num(a) and is_num(b):
        return float(a) == float(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def cases(path):
    body = None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                body = None
                continue
            if body is None:
                body = (n, line)
                continue
            yield body[0], body[1], line
            body = None


def check(binary, src, want):
    p = subprocess.run([binary, "eval", src], capture_output=True, text=True,
                       timeout=30)
    out, err = p.stdout.strip(), p.stderr.strip()
    if want.startswith("compile error: "):
        text = want[len("compile error: "):]
        ok = (p.returncode != 0 and text in err
              and re.match(r"^<eval>:\d+:\d+: ", err) is not None)
    elif want.startswith("error: "):
        ok = p.returncode != 0 and want[len("error: "):] in err
    else:
        try:
            ok = p.returncode == 0 and same(json.loads(out), json.loads(want))
        except ValueError:
            ok = False
    return ok, out + (" " + err if err else "")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    binary = os.path.join(build, "picomail")
    here = os.path.dirname(os.path.abspath(__file__))
    passed = failed = 0
    for path in sorted(glob.glob(os.path.join(here, "expr", "*.test"))):
        for line, src, want in cases(path):
            ok, got = check(binary, src, want)
            if ok:
                passed += 1
            else:
                failed += 1
                print("FAIL %s:%d: %s" % (os.path.basename(path), line, src))
                print("  want: %s" % want)
                print("  got:  %s" % got)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
