"""The Python worker package (python/), driven by a fake gpudispatch (no MPI, no C build):
pipes passed with pass_fds, frames of docs/protocol.md (protocol 2)."""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYDIR = os.path.join(ROOT, "python")
HDR = struct.Struct("<2sBBBBHIIQ")
HELLO, READY, SETUP_FAIL, TASK, RESULT, CLEANUP_FAIL = 1, 2, 3, 4, 5, 6


def read_exact(fd, n):
    out = b""
    while len(out) < n:
        d = os.read(fd, n - len(out))
        if not d:
            break
        out += d
    return out


class Driver:
    """Starts a worker script as gpudispatch would and talks frames to it."""

    def __init__(self, tmp_path, body, setup_args=None, seed=7, env_extra=None, env=None):
        script = tmp_path / "w.py"
        script.write_text(textwrap.dedent(body))
        req_r, self.req_w = os.pipe()
        self.ans_r, ans_w = os.pipe()
        if env is None:
            env = dict(os.environ)
            env.update({
                "GPUDISPATCH_PROTOCOL": "2",
                "GPUDISPATCH_REQUEST_FD": str(req_r),
                "GPUDISPATCH_ANSWER_FD": str(ans_w),
                "GPUDISPATCH_WORKER_ID": "3",
                "GPUDISPATCH_GPU": "1",
                "GPUDISPATCH_GPU_BUS_ID": "0000:07:00.0",
                "GPUDISPATCH_HOST": "node1",
                "GPUDISPATCH_SEED": str(seed),
                "GPUDISPATCH_SETUP_ARGS": json.dumps(setup_args or {}),
            })
        env["PYTHONPATH"] = PYDIR + os.pathsep + env.get("PYTHONPATH", "")
        env.update(env_extra or {})
        self.p = subprocess.Popen([sys.executable, str(script)], env=env,
                                  pass_fds=(req_r, ans_w), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(req_r)
        os.close(ans_w)

    def frame(self):
        h = read_exact(self.ans_r, HDR.size)
        if not h:
            return None
        assert len(h) == HDR.size, h
        magic, ver, typ, status, flags, res, attempt, length, tid = HDR.unpack(h)
        assert (magic, ver, res) == (b"GD", 2, 0)
        payload = read_exact(self.ans_r, length)
        assert len(payload) == length
        return typ, status, flags, attempt, tid, payload

    def task(self, payload, tid=1, attempt=1):
        if isinstance(payload, str):
            payload = payload.encode()
        os.write(self.req_w, HDR.pack(b"GD", 2, TASK, 0, 0, 0, attempt, len(payload), tid))
        view = memoryview(payload)
        while view:
            view = view[os.write(self.req_w, view):]
        typ, status, flags, att, rtid, out = self.frame()
        assert (typ, att, rtid) == (RESULT, attempt, tid)
        return status, flags, out

    def start(self):
        assert self.frame()[0] == HELLO
        f = self.frame()
        assert f[0] == READY, (f, self.finish())
        return self

    def close(self):
        if self.req_w is not None:
            os.close(self.req_w)
            self.req_w = None

    def finish(self, timeout=30):
        self.close()
        out, err = self.p.communicate(timeout=timeout)
        rest = []
        while True:
            f = self.frame()
            if f is None:
                break
            rest.append(f)
        os.close(self.ans_r)
        return self.p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), rest


ECHO = """
    import json, os
    from gpudispatch import BaseWorker, serve
    class W(BaseWorker):
        def setup(self, **kw):
            self.kw = kw
        def process(self, task):
            if task.startswith("raw:"):
                return task[4:].encode("utf-8", "surrogateescape")
            if task.startswith("big:"):
                return b"x" * int(task[4:])
            if task == "fail":
                def inner():
                    raise ValueError("no good task")
                inner()
            if task == "nan":
                return float("nan")
            if task == "obj":
                return object()
            return {"task": task, "id": self.task_id, "attempt": self.attempt,
                    "seed": self.seed, "worker": self.worker_id, "gpu": list(self.gpu),
                    "host": self.host, "kw": self.kw}
    if __name__ == "__main__":
        serve(W)
"""


def test_hello_ready_json_result(tmp_path):
    d = Driver(tmp_path, ECHO, setup_args={"model_path": "m.json"}, seed=42).start()
    status, flags, out = d.task("héllo", tid=9, attempt=2)
    assert (status, flags) == (0, 1)
    assert json.loads(out.decode()) == {
        "task": "héllo", "id": 9, "attempt": 2, "seed": 42, "worker": 3,
        "gpu": [1, "0000:07:00.0"], "host": "node1", "kw": {"model_path": "m.json"}}
    assert d.finish()[0] == 0


def test_bytes_newlines_nul_non_utf8_and_1mib(tmp_path):
    d = Driver(tmp_path, ECHO).start()
    weird = b"raw:a\nb\x00c\r\n\xff\xfe end"
    assert d.task(weird) == (0, 0, weird[4:])
    assert d.task(b"raw:") == (0, 0, b"")
    n = (1 << 20) + 123
    status, flags, out = d.task("big:%d" % n, tid=2)
    assert (status, flags, len(out)) == (0, 0, n) and out == b"x" * n
    big_task = b"raw:" + bytes(range(256)) * 5000  # a 1.2 MiB task
    assert d.task(big_task, tid=3)[2] == big_task[4:]
    assert d.finish()[0] == 0


def test_process_error_then_next_task(tmp_path):
    d = Driver(tmp_path, ECHO).start()
    status, flags, out = d.task("fail", tid=5)
    text = out.decode()
    assert (status, flags) == (1, 0)
    first, _, details = text.partition("\n")
    assert first == "ValueError: no good task"
    assert "Traceback" in details and "inner" in details and 'raise ValueError' in details
    assert len(out) <= 3100
    for bad in ("nan", "obj"):
        status, _, out = d.task(bad, tid=6)
        assert status == 1 and out.decode().split(":")[0] in ("ValueError", "TypeError"), out
    status, flags, out = d.task("ok", tid=7)
    assert (status, flags) == (0, 1) and json.loads(out)["task"] == "ok"
    assert d.finish()[0] == 0


def test_long_traceback_keeps_the_end(tmp_path):
    d = Driver(tmp_path, """
        from gpudispatch import BaseWorker, serve
        class W(BaseWorker):
            def process(self, task):
                def deep(n):
                    if n == 0:
                        raise RuntimeError("x" * 5000)
                    return deep(n - 1)
                return deep(50)
        serve(W)
    """).start()
    status, _, out = d.task("t")
    assert status == 1 and len(out) <= 3000
    assert out.startswith(b"RuntimeError: xxx") and b"deep" in out.split(b"\n", 1)[1]
    d.finish()


def test_setup_failure(tmp_path):
    d = Driver(tmp_path, """
        from gpudispatch import BaseWorker, serve
        class W(BaseWorker):
            def setup(self, model_path):
                raise FileNotFoundError("no model at " + model_path)
            def process(self, task):
                return 1
        serve(W)
    """, setup_args={"model_path": "/nope"})
    assert d.frame()[0] == HELLO
    typ, _, _, _, _, msg = d.frame()
    assert typ == SETUP_FAIL
    assert msg.decode().startswith("FileNotFoundError: no model at /nope\n")
    assert "Traceback" in msg.decode()
    rc, _, err, rest = d.finish()
    assert rc == 1 and rest == []


def test_setup_missing_argument(tmp_path):
    d = Driver(tmp_path, """
        from gpudispatch import BaseWorker, serve
        class W(BaseWorker):
            def setup(self, model_path, batch="8"):
                pass
        serve(W)
    """, setup_args={"batch": "4"})
    assert d.frame()[0] == HELLO
    typ, *_, msg = d.frame()
    assert typ == SETUP_FAIL and msg.startswith(b"TypeError: ") and b"model_path" in msg
    assert d.finish()[0] == 1


def test_cleanup_failure(tmp_path):
    d = Driver(tmp_path, """
        from gpudispatch import BaseWorker, serve
        class W(BaseWorker):
            def process(self, task):
                return task
            def cleanup(self):
                raise OSError("cannot flush")
        serve(W)
    """).start()
    assert d.task("a") == (0, 1, b'"a"')
    rc, _, _, rest = d.finish()
    assert rc == 1 and len(rest) == 1
    assert rest[0][0] == CLEANUP_FAIL and rest[0][5].startswith(b"OSError: cannot flush\n")


def test_stdout_noise_never_reaches_the_answers(tmp_path):
    d = Driver(tmp_path, """
        import os, subprocess, sys, threading
        from gpudispatch import BaseWorker, serve
        print("GD\\x02\\x05 banner at import")
        class W(BaseWorker):
            def setup(self):
                print("setup log", end="")
                os.write(1, b"GD\\x02\\x05\\x00\\x00\\x00\\x00raw fd 1 write\\n")
            def process(self, task):
                print("log for", task, end="")          # unflushed
                os.write(1, b"\\x00GD\\x02\\x05 fd1 garbage\\n")
                sys.stderr.write("err log\\n")
                subprocess.run(["sh", "-c", "echo sub out; echo sub err >&2"], check=True)
                # the subprocess gets none of the channel fds
                fds = subprocess.run(["sh", "-c", "ls /proc/self/fd"], capture_output=True,
                                     text=True, close_fds=False).stdout.split()
                t = threading.Thread(target=print, args=("thread print",))
                t.start(); t.join()
                return {"task": task, "child_fds": sorted(int(f) for f in fds)}
        serve(W)
    """).start()
    for i in range(20):
        status, flags, out = d.task("t%d" % i, tid=i)
        v = json.loads(out)
        assert (status, flags, v["task"]) == (0, 1, "t%d" % i)
        assert set(v["child_fds"]) <= {0, 1, 2, 3}, v["child_fds"]  # 3: ls's own dir fd
    rc, out, err, rest = d.finish()
    assert rc == 0 and rest == []
    assert "banner at import" in out and "log for t19" in out and "thread print" in out
    assert "sub out" in out and "sub err" in err and "raw fd 1 write" in out


def test_stop_signals_do_not_kill_mid_task(tmp_path):
    d = Driver(tmp_path, """
        import os, signal, subprocess, time
        from gpudispatch import BaseWorker, serve
        class W(BaseWorker):
            def process(self, task):
                time.sleep(0.5)
                return "slept"
        serve(W)
    """).start()
    os.write(d.req_w, HDR.pack(b"GD", 2, TASK, 0, 0, 0, 1, 1, 1) + b"s")
    time.sleep(0.2)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
        d.p.send_signal(sig)
    assert d.frame()[5] == b'"slept"'
    assert d.finish()[0] == 0


def test_programs_it_starts_can_be_terminated(tmp_path):
    d = Driver(tmp_path, """
        import subprocess
        from gpudispatch import BaseWorker, serve
        class W(BaseWorker):
            def process(self, task):
                p = subprocess.Popen(["sleep", "3"])
                p.terminate()
                return p.wait()
        serve(W)
    """).start()
    assert d.task("child", tid=2) == (0, 1, str(-signal.SIGTERM).encode())
    assert d.finish()[0] == 0


def test_missing_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUDISPATCH_")}
    d = Driver(tmp_path, ECHO, env=env)
    rc, out, err, rest = d.finish()
    assert rc == 2 and rest == [] and out == ""
    assert "gpudispatch.serve: this program is a gpudispatch worker: run it as " \
           "`gpudispatch run" in err and "w.py" in err
    d = Driver(tmp_path, ECHO, env=dict(env, GPUDISPATCH_PROTOCOL="2"))
    rc, _, err, _ = d.finish()
    assert rc == 2 and "(no GPUDISPATCH_REQUEST_FD in the environment)" in err
    d = Driver(tmp_path, ECHO, env=dict(env, GPUDISPATCH_PROTOCOL="1",
                                        GPUDISPATCH_REQUEST_FD="0", GPUDISPATCH_ANSWER_FD="1"))
    rc, _, err, _ = d.finish()
    assert rc == 2 and "this program is a gpudispatch worker" in err


@pytest.mark.parametrize("cut", [10, 24 + 3])
def test_eof_mid_frame(tmp_path, cut):
    d = Driver(tmp_path, ECHO).start()
    frame = HDR.pack(b"GD", 2, TASK, 0, 0, 0, 1, 10, 1) + b"0123456789"
    os.write(d.req_w, frame[:cut])
    rc, _, err, rest = d.finish()
    assert rc == 3 and rest == []
    assert "frame" in err and "gpudispatch.serve" in err


def test_bad_frame(tmp_path):
    d = Driver(tmp_path, ECHO).start()
    os.write(d.req_w, HDR.pack(b"XY", 2, TASK, 0, 0, 0, 1, 0, 1))
    rc, _, err, _ = d.finish()
    assert rc == 3 and "frame" in err


def test_many_tiny_tasks_are_fast(tmp_path):
    d = Driver(tmp_path, """
        from gpudispatch import BaseWorker, serve
        class W(BaseWorker):
            def process(self, task):
                return {"n": len(task)}
        serve(W)
    """).start()
    n = 20000
    t0 = time.monotonic()
    for i in range(n):
        d.task("task %d" % i, tid=i)
    dt = time.monotonic() - t0
    assert d.finish()[0] == 0
    # a round trip is two pipe hops; generous bound for a loaded 2-core machine
    assert dt < 30, "%d tasks took %.1f s" % (n, dt)


def test_run_local():
    sys.path.insert(0, PYDIR)
    import gpudispatch

    class W(gpudispatch.BaseWorker):
        def setup(self, scale):
            self.scale = int(scale)

        def process(self, task):
            if task == "bad":
                raise KeyError(task)
            return len(task) * self.scale

        def cleanup(self):
            self.done = True

    res = gpudispatch.run_local(W, ["ab", "bad", "c"], scale=3)
    assert res[0] == ("ab", 6) and res[2] == ("c", 3)
    assert isinstance(res[1][1], KeyError)
    with pytest.raises(TypeError, match="scale"):
        gpudispatch.run_local(W, ["x"])
    assert gpudispatch.__version__ == "0.1.0"


def test_example_model_worker(tmp_path):
    ex = os.path.join(ROOT, "examples", "python")
    body = open(os.path.join(ex, "model_worker.py")).read()
    d = Driver(tmp_path, body, setup_args={"model_path": os.path.join(ex, "model.json")}).start()
    lines = open(os.path.join(ex, "tasks.txt")).read().splitlines()
    answers = [json.loads(d.task(line, tid=i)[2]) for i, line in enumerate(lines)]
    assert all("label" in a for a in answers)
    rc, out, _, _ = d.finish()
    assert rc == 0 and "loaded" in out and "done" in out


def test_pip_install_offline(tmp_path):
    pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if pip.returncode != 0:
        pytest.skip("pip is not installed for %s" % sys.executable)
    src = tmp_path / "src"
    shutil.copytree(PYDIR, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    target = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                        "--no-index", "--no-deps", "--target", str(target), str(src)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-c",
                        "import gpudispatch; print(gpudispatch.__version__, gpudispatch.__file__)"],
                       capture_output=True, text=True, cwd=str(tmp_path),
                       env=dict(os.environ, PYTHONPATH=str(target)))
    assert r.returncode == 0, r.stderr
    version, path = r.stdout.split()
    assert version == "0.1.0" and path.startswith(str(target))
