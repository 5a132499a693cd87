"""One Dispatcher scenario under mpirun: `mpirun -n N python3 dispatcher_app.py
SCENARIO DIR`.  Rank 0 prints one line `RESULT <json>` with what it saw;
tests/python/test_dispatcher.py runs each scenario and checks it.  Worker
ranks write their own records (the lifecycle) into DIR.
"""
import ctypes
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
if "mpi4py" in sys.argv[3:]:
    from mpi4py import MPI  # noqa: F401  - MPI initialised by mpi4py first

from gpudispatch import BaseWorker, Dispatcher  # noqa: E402

scenario, out_dir = sys.argv[1], sys.argv[2]


class Recorder(BaseWorker):
    """Records its lifecycle into DIR/w<ID>.<PID>; tasks are commands."""

    def setup(self, fail_on=None, tag=""):
        self.log = open(os.path.join(out_dir, "w%d.%d" % (self.worker_id, os.getpid())), "a")
        self.log.write("setup %s\n" % tag)
        self.log.flush()
        if fail_on == "all" or fail_on == self.worker_id:
            raise RuntimeError("no model for worker %d" % self.worker_id)

    def process(self, task):
        self.log.write("process %r\n" % (task,))
        self.log.flush()
        if isinstance(task, dict):
            return {"echo": task, "worker": self.worker_id}
        if task == "hang":
            time.sleep(1000)
        if task == "crash":
            ctypes.string_at(0)  # a segfault in C code: the interpreter dies
        if task == "raise":
            raise ValueError("bad task %d" % self.task_id)
        if task == "flaky" and self.attempt == 1:
            raise RuntimeError("first attempt of task %d fails" % self.task_id)
        if task == "fail":
            raise RuntimeError("always")
        if task == "nap":
            time.sleep(0.1)
        if task == "seed":
            return (self.worker_id, self.seed)
        return (task, self.worker_id)

    def cleanup(self):
        self.log.write("cleanup\n")
        self.log.close()


seen = {"success": [], "error": [], "timeout": [], "setup_fail": [], "order": [], "exits": 0}


def on_success(task_id, result, worker_id):
    seen["success"].append([task_id, result, worker_id])
    seen["order"].append("success")


def on_error(task_id, error, worker_id):
    seen["error"].append([task_id, error, worker_id])
    seen["order"].append("error")


def on_timeout(task_id, worker_id):
    seen["timeout"].append([task_id, worker_id])
    seen["order"].append("timeout")


def on_setup_fail(worker_id, error):
    seen["setup_fail"].append([worker_id, error])
    seen["order"].append("setup_fail")


def on_exit():
    seen["exits"] += 1
    seen["order"].append("exit")


callbacks = dict(on_success=on_success, on_error=on_error, on_timeout=on_timeout,
                 on_setup_fail=on_setup_fail, on_exit=on_exit)


class Counting:
    """A generator that records how far ahead of the results it was pulled."""

    def __init__(self, items):
        self.items, self.i, self.max_ahead = list(items), 0, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.i == len(self.items):
            raise StopIteration
        done = len(seen["success"]) + len(seen["error"]) + len(seen["timeout"])
        self.max_ahead = max(self.max_ahead, self.i - done + 1)
        self.i += 1
        return self.items[self.i - 1]


stats, raised = None, None
extra = {}
try:
    if scenario == "basic":
        stats = Dispatcher(Recorder).run(generator=(i for i in range(50)), base_seed=7,
                                         tag="t", **callbacks)
    elif scenario == "objects":
        tasks = [{"n": i, "blob": bytes(range(256)) * 10, "nested": [i, {"x": None}]}
                 for i in range(20)]
        stats = Dispatcher(Recorder).run(generator=iter(tasks), **callbacks)
    elif scenario == "backpressure":
        g = Counting(range(200))
        stats = Dispatcher(Recorder, queue_size=4).run(generator=g, **callbacks)
        extra["max_ahead"] = g.max_ahead
    elif scenario == "faults":
        tasks = ["ok", "hang", "crash", "raise", "ok", "ok"]
        stats = Dispatcher(Recorder).run(generator=iter(tasks), task_timeout=2, **callbacks)
    elif scenario == "setup_fail_one":
        stats = Dispatcher(Recorder).run(generator=range(20), fail_on=0, **callbacks)
    elif scenario == "setup_fail_all":
        stats = Dispatcher(Recorder).run(generator=range(20), fail_on="all", **callbacks)
    elif scenario == "seeds":
        stats = Dispatcher(Recorder, queue_size=2).run(generator=["seed"] * 30, base_seed=1000,
                                                       **callbacks)
    elif scenario == "callback_raises":
        def bad_success(task_id, result, worker_id):
            on_success(task_id, result, worker_id)
            if len(seen["success"]) == 5:
                raise KeyError("from on_success")
        cbs = dict(callbacks, on_success=bad_success)
        stats = Dispatcher(Recorder, queue_size=2).run(generator=range(10000), **cbs)
    elif scenario == "interrupt":
        def gen():
            for i in range(10000):
                if i == 20:
                    os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C on rank 0
                yield i
        stats = Dispatcher(Recorder, queue_size=2).run(generator=gen(), **callbacks)
    elif scenario == "usr1":  # the test sends SIGUSR1 to mpirun after a while
        print("STARTED", flush=True)
        stats = Dispatcher(Recorder, queue_size=2).run(generator=["nap"] * 200, **callbacks)
    elif scenario == "generator_raises":
        def gen():
            yield from range(10)
            raise OSError("cannot read the input")
        stats = Dispatcher(Recorder).run(generator=gen(), **callbacks)
    elif scenario == "retries":
        stats = Dispatcher(Recorder).run(generator=["flaky"] * 10, retries=1, **callbacks)
    elif scenario == "halt":
        stats = Dispatcher(Recorder, queue_size=2).run(generator=["fail"] * 1000, halt=3,
                                                       **callbacks)
    elif scenario == "journal":
        path = os.path.join(out_dir, "results.jsonl")
        stats = Dispatcher(Recorder).run(generator=range(30), results=path, **callbacks)
        first = stats["completed"]
        seen["success"].clear()
        stats = Dispatcher(Recorder).run(generator=range(30), results=path, resume=True,
                                         **callbacks)
        extra.update(first=first, lines=sum(1 for _ in open(path)))
    else:
        raise SystemExit("unknown scenario " + scenario)
except BaseException as e:  # noqa: BLE001 - what run() raised is the result
    raised = "%s: %s" % (type(e).__name__, e)

from gpudispatch import _lib  # noqa: E402

rank = ctypes.c_int(0)
L = _lib.lib()
L.MPI_Comm_rank(L.comm_world, ctypes.byref(rank))
if rank.value == 0:
    print("RESULT " + json.dumps({"stats": stats, "seen": seen, "raised": raised, "extra": extra},
                                 default=repr), flush=True)
