"""mailtest.py - what the Python end-to-end mail tests share: counting
checks, a free loopback port, and waiting for a condition with a
deadline (never a fixed sleep)."""
import socket
import time

counts = {"passed": 0, "failed": 0}


def check(cond, name, detail=""):
    """Count one check and print it TAP-style."""
    if cond:
        counts["passed"] += 1
        print("ok - " + name)
    else:
        counts["failed"] += 1
        print("not ok - " + name + (": " + str(detail) if detail else ""))


def failed():
    return counts["failed"]


def summary():
    """The last line check.sh reads; the exit status."""
    print(f"{counts['passed']} passed, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, seconds=30, step=0.02):
    """COND's first true value within SECONDS, else its last value."""
    end = time.time() + seconds
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()
