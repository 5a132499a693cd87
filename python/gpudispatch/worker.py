"""The worker side of gpudispatch protocol 2: BaseWorker, serve(), run_local()."""

import collections
import inspect
import json
import os
import signal
import sys
import traceback

from . import _frames as fr
from ._frames import ProtocolError

__all__ = ["BaseWorker", "GPU", "serve", "run_local", "ProtocolError"]

GPU = collections.namedtuple("GPU", "index bus_id")
GPU.__doc__ = "The worker's GPU: index on its node (PCI order, -1 for a CPU worker), PCI bus id ('' for none)."

_ERROR_LIMIT = 3000       # bytes of an error payload
_FIRST_LINE_LIMIT = 1000  # bytes of its first line (the error itself)
_TB_FRAMES = 5            # traceback entries kept

_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False,
                                separators=(",", ":")).encode


class BaseWorker:
    """Subclass this and override setup(), process() and cleanup().

    Set before setup(): self.worker_id (int), self.gpu (GPU: .index int, .bus_id str),
    self.seed (int), self.host (str), self.setup_args (dict of str).
    Set before each process(): self.task_id and self.attempt (ints) of that task.
    """

    worker_id = 0
    gpu = GPU(-1, "")
    seed = 0
    host = ""
    setup_args = {}
    task_id = 0
    attempt = 0

    def setup(self, **kwargs):
        """Once, before the first task. Keyword arguments: the --setup-arg pairs (strings)."""
        if kwargs:
            raise TypeError("%s.setup() takes no setup arguments, got %s"
                            % (type(self).__name__, ", ".join(sorted(kwargs))))

    def process(self, task):
        """One task (str: the line). Return a JSON value, or bytes for a raw result."""
        raise NotImplementedError("%s must define process(self, task)" % type(self).__name__)

    def cleanup(self):
        """Once, after the last task."""


def format_error(exc):
    """'ExcType: message' and, on the next lines, the tail of the traceback (~3000 bytes)."""
    try:
        msg = str(exc)
    except Exception:
        msg = "<unprintable %s>" % type(exc).__name__
    first = type(exc).__qualname__ + (": " + msg if msg else "")
    first = first.encode("utf-8", "backslashreplace")
    if len(first) > _FIRST_LINE_LIMIT:
        first = first[:_FIRST_LINE_LIMIT].decode("utf-8", "ignore").encode() + b" ..."
    try:
        # the frames only: the exception line would repeat the first line
        tb = "".join(traceback.format_tb(exc.__traceback__, limit=-_TB_FRAMES))
        if tb:
            tb = "Traceback (most recent call last):\n" + tb
        cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if cause is not None:
            tb += "caused by %s: %s\n" % (type(cause).__qualname__, cause)
    except Exception:
        tb = ""
    tb = tb.rstrip("\n").encode("utf-8", "backslashreplace")
    room = _ERROR_LIMIT - len(first) - 1
    if len(tb) > room:  # keep the end: the frames nearest to the raise
        tb = b"...\n" + tb[len(tb) - max(room - 4, 0):].decode("utf-8", "ignore").encode()
    return first + b"\n" + tb if tb else first


def encode_result(value):
    """(flags, payload) of a process() return value; raises TypeError/ValueError when
    it is neither bytes-like nor JSON-serializable UTF-8."""
    if isinstance(value, (bytes, bytearray)):
        return 0, value
    if isinstance(value, memoryview):
        return 0, value.tobytes()
    text = _encode_json(value)
    try:
        return fr.FLAG_JSON, text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the result holds text that is not valid Unicode (e.g. the task's "
                         "non-UTF-8 bytes): return bytes instead, e.g. "
                         "task.encode('utf-8', 'surrogateescape')") from None


def _check_setup_args(worker, kwargs):
    try:
        sig = inspect.signature(worker.setup)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(**kwargs)
    except TypeError as e:
        raise TypeError("%s.setup(): %s (setup arguments come from --setup-arg KEY=VALUE; "
                        "given: %s)" % (type(worker).__name__, e,
                                        ", ".join(sorted(kwargs)) or "none")) from None


def _make_worker(cls, worker_id, gpu, seed, host, setup_args):
    worker = cls()
    worker.worker_id, worker.gpu, worker.seed, worker.host = worker_id, gpu, seed, host
    worker.setup_args = dict(setup_args)
    _check_setup_args(worker, setup_args)
    worker.setup(**setup_args)
    return worker


def _context_from_env(env):
    def integer(name, default):
        v = env.get(name, "")
        try:
            return int(v) if v.strip() else default
        except ValueError:
            raise ValueError("%s=%r is not an integer" % (name, v)) from None

    raw = env.get("GPUDISPATCH_SETUP_ARGS", "") or "{}"
    try:
        args = json.loads(raw)
    except ValueError as e:
        raise ValueError("GPUDISPATCH_SETUP_ARGS is not JSON (%s): %r" % (e, raw[:200])) from None
    if not isinstance(args, dict):
        raise ValueError("GPUDISPATCH_SETUP_ARGS is not a JSON object: %r" % raw[:200])
    args = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in args.items()}
    gpu = GPU(integer("GPUDISPATCH_GPU", -1), env.get("GPUDISPATCH_GPU_BUS_ID", ""))
    return (integer("GPUDISPATCH_WORKER_ID", 0), gpu, integer("GPUDISPATCH_SEED", 0),
            env.get("GPUDISPATCH_HOST", ""), args)


def _not_a_worker(reason):
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c") else ""
    sys.stderr.write(
        "gpudispatch.serve: this program is a gpudispatch worker: run it as "
        "`gpudispatch run --worker-cmd \"python3 %s\" ...` (%s)\n"
        % (script or "<script>", reason))
    sys.stderr.flush()
    sys.exit(2)


def _channel_fds(env):
    proto = env.get("GPUDISPATCH_PROTOCOL")
    if proto is None:
        _not_a_worker("no GPUDISPATCH_PROTOCOL in the environment")
    try:
        proto_n = int(proto)
    except ValueError:
        _not_a_worker("GPUDISPATCH_PROTOCOL=%r is not a number" % proto)
    if proto_n < 2:
        _not_a_worker("GPUDISPATCH_PROTOCOL=%s: this package speaks protocol 2 only" % proto)
    fds = []
    for name in ("GPUDISPATCH_REQUEST_FD", "GPUDISPATCH_ANSWER_FD"):
        v = env.get(name)
        if v is None or not v.strip():
            _not_a_worker("no %s in the environment" % name)
        try:
            fd = int(v)
            os.fstat(fd)
        except (ValueError, OSError):
            _not_a_worker("%s=%s is not an open file descriptor" % (name, v))
        fds.append(fd)
    return fds


def _protect(fd, std_replacement):
    """Keep the channel fd off 0-2 (so no print() or stdin read can touch it), out of
    subprocesses (non-inheritable) and blocking."""
    import fcntl
    if fd <= 2:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        std_replacement(fd)
        fd = high
    os.set_inheritable(fd, False)
    os.set_blocking(fd, True)
    return fd


def _std_away(fd):
    if fd == 0:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    else:  # fd 1 or 2 was the channel: the log goes to the other one
        os.dup2(2 if fd == 1 else 1, fd)


def _ignore_stop_signal(signum, frame):
    """Rank 0 decides when the run stops; the program is not stopped mid-task."""


def _ignore_stop_signals():
    # A Python handler that does nothing, not SIG_IGN: an ignored disposition would be
    # inherited by every program the worker starts (subprocess, os.system), which then
    # could not be stopped with SIGTERM; a handler is reset to the default at exec.
    for name in ("SIGINT", "SIGTERM", "SIGUSR1"):
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                signal.signal(sig, _ignore_stop_signal)
            except (ValueError, OSError):  # not the main thread
                pass


def _log_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass


def _die(code, text):
    try:
        sys.stderr.write("gpudispatch.serve: %s\n" % text)
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(code)


def serve(cls):
    """Run a BaseWorker subclass as a gpudispatch protocol 2 worker; does not return.

    Exit status: 0 done, 1 setup or cleanup failed, 2 not started by gpudispatch,
    3 the channel broke (short frame, gpudispatch gone).
    """
    env = os.environ
    req_fd, ans_fd = _channel_fds(env)
    req_fd = _protect(req_fd, _std_away)
    ans_fd = _protect(ans_fd, _std_away)
    _log_streams()
    _ignore_stop_signals()
    write = fr.write_frame
    try:
        write(ans_fd, fr.HELLO)
        try:
            worker = _make_worker(cls, *_context_from_env(env))
        except Exception as e:
            msg = format_error(e)
            write(ans_fd, fr.SETUP_FAIL, msg)
            _flush_logs()
            sys.stderr.write("gpudispatch.serve: setup failed: %s\n" % msg.decode("utf-8", "replace"))
            _flush_logs()
            sys.exit(1)
        write(ans_fd, fr.READY)
        _loop(worker, fr.FrameReader(req_fd), ans_fd)
        try:
            worker.cleanup()
        except Exception as e:
            msg = format_error(e)
            write(ans_fd, fr.CLEANUP_FAIL, msg)
            sys.stderr.write("gpudispatch.serve: cleanup failed: %s\n" % msg.decode("utf-8", "replace"))
            _flush_logs()
            sys.exit(1)
    except ProtocolError as e:
        _flush_logs()
        _die(3, "protocol error on the request channel: %s" % e)
    except OSError as e:  # EPIPE and the like: gpudispatch is gone
        _flush_logs()
        _die(3, "the channel to gpudispatch broke: %s" % e)
    _flush_logs()
    sys.exit(0)


def _flush_logs():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _loop(worker, reader, ans_fd):
    process = worker.process
    read = reader.read_frame
    write = fr.write_frame
    TASK, RESULT = fr.TASK, fr.RESULT
    while True:
        frame = read()
        if frame is None:
            return
        ftype, _status, _flags, attempt, task_id, payload = frame
        if ftype != TASK:
            raise ProtocolError("a %s frame on the request channel, expected TASK"
                                % fr.TYPE_NAMES.get(ftype, ftype))
        worker.task_id = task_id
        worker.attempt = attempt
        try:
            flags, out = encode_result(process(payload.decode("utf-8", "surrogateescape")))
            if len(out) > fr.MAX_PAYLOAD:
                raise ValueError("a result of %d bytes is over the wire limit of %d"
                                 % (len(out), fr.MAX_PAYLOAD))
            status = 0
        except Exception as e:
            status, flags, out = 1, 0, format_error(e)
        write(ans_fd, RESULT, out, task_id, attempt, status, flags)


def run_local(cls, tasks, **setup_args):
    """Try a worker class in this process, without gpudispatch or MPI.

    Runs setup(**setup_args) (values are turned into strings, as --setup-arg gives
    them), process() for each task, then cleanup(). Returns a list of
    (task, result) pairs; result is the exception when process() raised or its
    value cannot be sent (not JSON-serializable). The worker has worker_id 0, no GPU
    (gpu.index -1), seed 0, this host; task ids count from 0, attempt is 1.
    Exceptions of setup() and cleanup() propagate.
    """
    import socket
    worker = _make_worker(cls, 0, GPU(-1, ""), 0, socket.gethostname(),
                          {k: str(v) for k, v in setup_args.items()})
    out = []
    try:
        for i, task in enumerate(tasks):
            if isinstance(task, (bytes, bytearray)):
                task = bytes(task).decode("utf-8", "surrogateescape")
            worker.task_id, worker.attempt = i, 1
            try:
                result = worker.process(task)
                encode_result(result)
            except Exception as e:
                result = e
            out.append((task, result))
    finally:
        worker.cleanup()
    return out
