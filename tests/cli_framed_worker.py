#!/usr/bin/env python3
"""A protocol-2 worker program for the tests, written on raw frames (no
package), that misbehaves on purpose.  docs/protocol.md is the format.

Modes (argv[1]):
  serve        (default) answer each task as below
  die          exit 1 at once, before HELLO, with a message on stderr
  setup-fail   HELLO, then SETUP_FAIL
  slow N       HELLO, sleep N seconds ("setup"), READY
  banner       print to stdout before HELLO, then serve
Tasks (the line):
  wrongid      answer with another task id        garbage   write 24 bytes of junk
  short        half a header, then exit            badjson   a RESULT flagged JSON that is not
  nul          bytes with a NUL and a newline      binary    bytes that are not UTF-8
  big          a 1 MiB answer                      crash     SIGSEGV
  hang         sleep forever                       error     status 1 with a two-line message
  anything else: JSON {"task": LINE, "n": N, "seed": SEED, "args": SETUP_ARGS}
"""
import json
import os
import signal
import struct
import sys
import time

H = struct.Struct("<2sBBBBHIIQ")
REQ = int(os.environ["GPUDISPATCH_REQUEST_FD"])
ANS = int(os.environ["GPUDISPATCH_ANSWER_FD"])


def send(kind, status=0, flags=0, attempt=0, task_id=0, payload=b""):
    data = H.pack(b"GD", 2, kind, status, flags, 0, attempt, len(payload), task_id) + payload
    while data:
        data = data[os.write(ANS, data):]


def read_exactly(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(REQ, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
if mode == "die":
    print("fatal: no module named 'model'", file=sys.stderr)
    sys.exit(1)
if mode == "banner":
    print("loading the model (a line on stdout before HELLO)", flush=True)
send(1)
if mode == "setup-fail":
    send(3, payload=b"RuntimeError: no GPU memory\nTraceback: ...")
    sys.exit(1)
if mode == "slow":
    time.sleep(float(sys.argv[2]))
send(2)
n = 0
while True:
    hdr = read_exactly(24)
    if hdr is None:
        break
    _, _, kind, _, _, _, attempt, length, task_id = H.unpack(hdr)
    line = read_exactly(length) if length else b""
    n += 1
    print("log: task", task_id, flush=True)
    if line == b"wrongid":
        send(5, 0, 1, attempt, task_id + 1, b'"wrong"')
    elif line == b"garbage":
        os.write(ANS, b"X" * 24)
    elif line == b"short":
        os.write(ANS, H.pack(b"GD", 2, 5, 0, 0, 0, attempt, 10, task_id)[:12])
        sys.exit(0)
    elif line == b"badjson":
        send(5, 0, 1, attempt, task_id, b'{"bad": ')
    elif line == b"nul":
        send(5, 0, 0, attempt, task_id, b"a\x00b\nc")
    elif line == b"binary":
        send(5, 0, 0, attempt, task_id, b"\xff\xfe\x00\x01")
    elif line == b"big":
        send(5, 0, 0, attempt, task_id, b"x" * (1 << 20))
    elif line == b"crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif line == b"hang":
        time.sleep(3600)
    elif line == b"error":
        send(5, 1, 0, attempt, task_id, b"ValueError: bad input\n  File \"w.py\", line 3")
    else:
        value = {"task": line.decode("utf-8", "replace"), "n": n,
                 "seed": int(os.environ["GPUDISPATCH_SEED"]),
                 "args": json.loads(os.environ["GPUDISPATCH_SETUP_ARGS"])}
        send(5, 0, 1, attempt, task_id, json.dumps(value).encode())
