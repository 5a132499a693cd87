"""BaseWorker and serve(): the setup / process / cleanup lifecycle of a
persistent worker program, over protocol 2 (docs/protocol.md).

The answers travel on their own pipe, so print(), logging, tqdm, warnings,
a C extension or a subprocess writing to file descriptor 1: all of it is
the program's log and never an answer.
"""
import json
import os
import signal
import sys
import traceback
from collections import namedtuple

from . import frames

Gpu = namedtuple("Gpu", "index bus_id")
Gpu.__doc__ = "The worker's GPU: index on its node (-1 = a CPU worker) and PCI bus id."

_TRACE_MAX = 3000  # bytes of traceback kept in an error


class BaseWorker:
    """Subclass it and override setup(), process() and cleanup().

    Set before setup(): worker_id (int), gpu (Gpu), seed (--seed + worker_id),
    host (str).  Set before each process(): task_id and attempt (ints).
    """

    worker_id = 0
    gpu = Gpu(-1, "")
    seed = 0
    host = ""
    task_id = -1
    attempt = 0

    def setup(self, **kwargs):
        """Once per program, before the first task; keyword arguments are the
        --setup-arg KEY=VALUE pairs (strings).  An exception is a setup
        failure of this worker."""

    def process(self, task):
        """One task: the line (str).  Return any JSON value (stored as JSON in
        the results file) or bytes (stored as they are).  An exception fails
        the task with its type, message and traceback; the next task comes."""
        raise NotImplementedError("process() is not written")

    def cleanup(self):
        """Once at the end.  An exception is reported as a cleanup failure;
        the results are kept."""


def _describe(exc):
    """'Type: message' on the first line (cut at 1000 bytes), then the last
    frames of the traceback (cut at about 3000 bytes, keeping the end)."""
    head = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    head = head.replace("\n", " ")
    if len(head) > 1000:
        head = head[:1000] + "..."
    tb = "Traceback (most recent call last):\n" + \
        "".join(traceback.format_tb(exc.__traceback__, limit=-4))
    if len(tb) > _TRACE_MAX:
        tb = "..." + tb[-_TRACE_MAX:]
    return (head + "\n" + tb.rstrip("\n")).encode("utf-8", "replace")


def _ignore(signum, frame):
    """Stopping is rank 0's business (a handler, not SIG_IGN, which the
    programs a worker starts would inherit)."""


def _encode(value):
    """\\return (payload, flags) for a process() return value."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), 0
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "surrogateescape"), frames.FLAG_JSON


def _environment():
    env = os.environ
    if not env.get("GPUDISPATCH_PROTOCOL", "").isdigit() or int(env["GPUDISPATCH_PROTOCOL"]) < 2 or "GPUDISPATCH_REQUEST_FD" not in env or \
            "GPUDISPATCH_ANSWER_FD" not in env:
        sys.stderr.write(
            "gpudispatch.serve: this program is a gpudispatch worker: run it as "
            "`gpudispatch run --tasks FILE --worker-cmd \"python3 %s\"` (no "
            "GPUDISPATCH_REQUEST_FD in the environment); try it without gpudispatch "
            "with gpudispatch.run_local()\n" % (sys.argv[0] or "script.py"))
        sys.exit(2)
    return int(env["GPUDISPATCH_REQUEST_FD"]), int(env["GPUDISPATCH_ANSWER_FD"])


def _setup_args():
    raw = os.environ.get("GPUDISPATCH_SETUP_ARGS", "{}") or "{}"
    args = json.loads(raw)
    if not isinstance(args, dict):
        raise ValueError("GPUDISPATCH_SETUP_ARGS is not a JSON object: %r" % raw)
    return args


def serve(cls):
    """Serve tasks to an instance of cls (a BaseWorker subclass) until
    gpudispatch ends the run; then exit the program."""
    req, ans = _environment()
    for fd in (req, ans):  # no subprocess may hold them
        os.set_inheritable(fd, False)
    # stopping is rank 0's business: a forwarded signal must not kill a task
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, _ignore)
    try:
        sys.stdout.reconfigure(line_buffering=True)  # the log shows up promptly
    except (AttributeError, ValueError):
        pass
    frames.write_all(ans, frames.pack(frames.HELLO))

    worker = cls()
    env = os.environ
    worker.worker_id = int(env.get("GPUDISPATCH_WORKER_ID", "0"))
    worker.gpu = Gpu(int(env.get("GPUDISPATCH_GPU", "-1")), env.get("GPUDISPATCH_GPU_BUS_ID", ""))
    worker.seed = int(env.get("GPUDISPATCH_SEED", "0"))
    worker.host = env.get("GPUDISPATCH_HOST", "")
    try:
        worker.setup(**_setup_args())
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported
        frames.write_all(ans, frames.pack(frames.SETUP_FAIL, _describe(exc)))
        os._exit(1)
    frames.write_all(ans, frames.pack(frames.READY))

    reader = frames.Reader(req)
    while True:
        try:
            got = reader.read()
        except frames.ProtocolError as exc:
            sys.stderr.write("gpudispatch.serve: %s\n" % exc)
            sys.stderr.flush()
            os._exit(3)
        if got is None:
            break
        kind, task_id, attempt, payload = got
        if kind != frames.TASK:
            sys.stderr.write("gpudispatch.serve: unexpected frame type %d\n" % kind)
            sys.stderr.flush()
            os._exit(3)
        worker.task_id, worker.attempt = task_id, attempt
        try:
            out, flags = _encode(worker.process(payload.decode("utf-8", "surrogateescape")))
            frame = frames.pack(frames.RESULT, out, 0, flags, attempt, task_id)
        except Exception as exc:  # noqa: BLE001
            frame = frames.pack(frames.RESULT, _describe(exc), 1, 0, attempt, task_id)
        frames.write_all(ans, frame)

    status = 0
    try:
        worker.cleanup()
    except Exception as exc:  # noqa: BLE001
        frames.write_all(ans, frames.pack(frames.CLEANUP_FAIL, _describe(exc)))
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run_local(cls, tasks, **setup_args):
    """Try a worker class without gpudispatch: setup, process each task,
    cleanup, in this process.  \\return a list of (task, result or exception)."""
    worker = cls()
    worker.setup(**setup_args)
    out = []
    try:
        for i, task in enumerate(tasks):
            worker.task_id, worker.attempt = i, 1
            try:
                out.append((task, worker.process(task)))
            except Exception as exc:  # noqa: BLE001
                out.append((task, exc))
    finally:
        worker.cleanup()
    return out
