"""Dispatcher: run a BaseWorker over the GPUs of a cluster, through the C
library (gd_run / gd_ui_run), under `mpirun -n N python3 app.py`.

Rank 0 pulls the generator and runs the callbacks; every other rank is a
worker placed on its GPU by the library, running setup() once, process()
per task and cleanup() once in the library's executor process (a fork of
the worker rank), so a task that crashes the interpreter, hangs past
task_timeout or raises costs that task only.  Tasks and results cross the
wire pickled (protocol 5).

Every rank runs the same script and calls run() with the same arguments;
what rank 0 is given is what counts (the setup keyword arguments reach the
workers pickled in the run's configuration).
"""
import base64
import ctypes
import os
import pickle
import signal
import sys
import traceback

from . import _lib as L
from .worker import BaseWorker, Gpu, _describe

__all__ = ["Dispatcher", "DispatchError"]

_KWARGS_KEY = b"gd.py.kwargs"


class DispatchError(RuntimeError):
    """gd_run() failed before or during the run (its code in .code)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _mpi_start(lib):
    """Initialise MPI unless the application (e.g. mpi4py) already did;
    finalise at exit only what we initialised."""
    flag = ctypes.c_int(0)
    lib.MPI_Initialized(ctypes.byref(flag))
    if flag.value:
        return
    rc = lib.gd_init(None, None)
    if rc:
        raise DispatchError(rc, "gd_init: %s" % lib.gd_strerror(rc).decode())
    import atexit

    atexit.register(lib.gd_finalize)


def _rank_size(lib):
    rank, size = ctypes.c_int(0), ctypes.c_int(0)
    lib.MPI_Comm_rank(lib.comm_world, ctypes.byref(rank))
    lib.MPI_Comm_size(lib.comm_world, ctypes.byref(size))
    return rank.value, size.value


class _Worker:
    """The worker class the library runs, in the executor process."""

    def __init__(self, lib, worker_cls):
        self.lib, self.cls, self.obj = lib, worker_cls, None
        self.c = L.WorkerClass(worker_cls.__name__.encode(), L.SETUP_FN(self.setup),
                               L.PROCESS_FN(self.process), L.CLEANUP_FN(self.cleanup))

    def setup(self, w, args):
        lib = self.lib
        try:
            blob = lib.gd_args_get(args, _KWARGS_KEY)
            kwargs = pickle.loads(base64.b64decode(blob)) if blob else {}
            obj = self.cls()
            obj.worker_id = lib.gd_worker_id(w)
            obj.seed = lib.gd_worker_seed(w)
            g = lib.gd_worker_gpu(w).contents
            obj.gpu = Gpu(g.index, g.bus_id.decode())
            obj.host = (lib.gd_worker_host(w) or b"").decode()
            obj.setup(**kwargs)
            self.obj = obj
            return 0
        except BaseException as e:  # noqa: BLE001 - a setup failure, whatever it is
            lib.gd_worker_set_error(w, b"%s", _text(e))
            return 1
        finally:
            _flush()

    def process(self, w, t, r):
        lib = self.lib
        task = t.contents
        try:
            self.obj.task_id, self.obj.attempt = task.id, task.attempt
            arg = pickle.loads(ctypes.string_at(task.data, task.len))
            out = pickle.dumps(self.obj.process(arg), protocol=5)
            rc = lib.gd_result_set(r, out, len(out))
            if rc:
                return lib.gd_result_error(r, b"%s", b"result of %d bytes: %s" % (
                    len(out), lib.gd_strerror(rc)))
            return 0
        except BaseException as e:  # noqa: BLE001 - the task's error, whatever it is
            return lib.gd_result_error(r, b"%s", _text(e))
        finally:
            _flush()

    def cleanup(self, w):
        try:
            if self.obj is not None:
                self.obj.cleanup()
            return 0
        except BaseException as e:  # noqa: BLE001
            self.lib.gd_worker_set_error(w, b"%s", _text(e))
            return 1
        finally:
            _flush()


def _text(exc):
    """An exception as the library's message: type, message, traceback."""
    t = _describe(exc)
    return t if isinstance(t, bytes) else t.encode("utf-8", "replace")


def _ignore(signum, frame):
    """A worker rank's SIGUSR1: rank 0 decides what the run does."""


def _flush():
    """The executor leaves with _exit(): what print() buffered must go now."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass


class _Run:
    """Rank 0's side of one run: the generator and the callbacks."""

    def __init__(self, lib, generator, cbs, halt=None):
        self.lib, self.it, self.cbs = lib, iter(generator), cbs
        self.halt, self.failures = halt, 0
        self.error = None  # the first exception of a user callback or the generator
        self.stop = ctypes.c_int(0)  # cfg.stop_flag

    def fail(self, exc):
        """A user callback raised: drain (what is out finishes, on_exit
        runs, the journal is flushed), then run() re-raises it."""
        if self.error is None:
            self.error = exc
        if self.stop.value < L.STOP_DRAIN:
            self.stop.value = L.STOP_DRAIN

    def interrupt(self, signum, frame):
        """SIGINT / SIGUSR1 on rank 0: the first drains, the next stops now.
        Only a flag is set here (the dispatcher polls it); KeyboardInterrupt
        is raised from run() once the run has ended, so that no callback is
        cut short half way."""
        name = signal.Signals(signum).name
        if self.error is None:
            self.error = KeyboardInterrupt(name)
        self.stop.value = L.STOP_NOW if self.stop.value >= L.STOP_DRAIN else L.STOP_DRAIN

    def gen(self, state, buf):
        try:
            task = next(self.it)
        except StopIteration:
            return 0
        except BaseException as e:  # noqa: BLE001 - the generator failed
            self.fail(e)
            return -1
        try:
            data = pickle.dumps(task, protocol=5)
        except BaseException as e:  # noqa: BLE001
            self.fail(e)
            return -1
        return 1 if self.lib.gd_buf_set(buf, data, len(data)) == 0 else -1

    def call(self, name, *args):
        fn = self.cbs.get(name)
        if fn is None:
            return
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001
            self.fail(e)

    def on_success(self, user, ev):
        try:
            e = ev.contents
            result = pickle.loads(ctypes.string_at(e.data, e.len))
        except BaseException as exc:  # noqa: BLE001
            self.fail(exc)
            return
        self.call("on_success", e.task_id, result, e.worker_id)

    def failed(self):
        """halt=N: the N-th failed or timed-out task drains the run."""
        self.failures += 1
        if self.halt is not None and self.failures >= self.halt and \
                self.stop.value < L.STOP_DRAIN:
            self.stop.value = L.STOP_DRAIN

    def on_error(self, user, ev):
        e = ev.contents
        self.failed()
        self.call("on_error", e.task_id, (e.message or b"").decode("utf-8", "replace"),
                  e.worker_id)

    def on_timeout(self, user, ev):
        e = ev.contents
        self.failed()
        self.call("on_timeout", e.task_id, e.worker_id)

    def on_setup_fail(self, user, ev):
        e = ev.contents
        self.call("on_setup_fail", e.worker_id, (e.message or b"").decode("utf-8", "replace"))


def _stats_dict(lib, st):
    workers = []
    for i in range(st.n_workers):
        r = lib.gd_stats_worker(ctypes.byref(st), i).contents
        workers.append({
            "worker_id": r.worker_id, "rank": r.rank, "host": r.host.decode(),
            "gpu": r.gpu.index, "bus_id": r.gpu.bus_id.decode(),
            "status": L.WS_NAMES[r.state] if 0 <= r.state < len(L.WS_NAMES) else "?",
            "current_task": r.current_task if r.in_flight else None,
            "task_start_time": r.current_since if r.in_flight else None,
            "completed": r.completed, "failed": r.failed, "timeout": r.timed_out,
            "restarts": r.restarts, "message": r.message.decode("utf-8", "replace"),
        })
    return {"total": st.total, "completed": st.completed, "failed": st.failed,
            "timeout": st.timed_out, "not_done": st.not_done, "skipped": st.skipped,
            "retried": st.retried, "start_time": st.start_time, "elapsed_s": st.elapsed_s,
            "n_workers": st.n_workers, "n_setup_failed": st.n_setup_failed,
            "gpu_status": workers}


class Dispatcher:
    """Dispatcher(worker_cls, gpu_ids=None, queue_size=None, show_ui=False,
    refresh_rate=2.0, ...).run(generator, on_success, on_error, on_timeout,
    on_setup_fail, on_exit, base_seed, task_timeout, **setup_kwargs)

    queue_size bounds the tasks pulled from the generator and not yet
    reported: the library's credit window becomes queue_size // workers
    (at least 1), so at most workers x window tasks are ever out.
    """

    def __init__(self, worker_cls, gpu_ids=None, queue_size=None, show_ui=False,
                 refresh_rate=2.0, workers_per_gpu=1, placement=True):
        if not (isinstance(worker_cls, type) and issubclass(worker_cls, BaseWorker)):
            raise TypeError("worker_cls must be a subclass of gpudispatch.BaseWorker")
        if queue_size is not None and queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if refresh_rate <= 0:
            raise ValueError("refresh_rate must be > 0")
        self.worker_cls = worker_cls
        self.gpu_ids = list(gpu_ids) if gpu_ids is not None else None
        self.queue_size = queue_size
        self.show_ui = show_ui
        self.refresh_rate = refresh_rate
        self.workers_per_gpu = workers_per_gpu
        self.placement = placement

    def run(self, generator, on_success=None, on_error=None, on_timeout=None,
            on_setup_fail=None, on_exit=None, base_seed=0, task_timeout=None,
            setup_timeout=None, retries=0, results=None, resume=False, grace=None,
            total=None, halt=None, **setup_kwargs):
        """Run every task of generator; collective over MPI_COMM_WORLD.

        Callbacks (rank 0): on_success(task_id, result, worker_id),
        on_error(task_id, error, worker_id), on_timeout(task_id, worker_id),
        on_setup_fail(worker_id, error), on_exit() (always, once, last).
        results: a journal file (JSON lines of what finished); resume=True
        skips what it holds as done.  halt=N: once N tasks have failed or
        timed out, nothing more is handed out (the run drains).  An exception in a callback or the
        generator (Ctrl-C too) drains the run, calls on_exit, and is raised
        again here.  \\return the statistics dict, the same on every rank.
        """
        lib = L.lib()
        _mpi_start(lib)
        rank, size = _rank_size(lib)
        if size < 2:
            raise DispatchError(-2, "run under mpirun with at least 2 ranks "
                                    "(rank 0 dispatches, the others work)")
        nw = size - 1

        cfg = L.Config()
        lib.gd_config_init(ctypes.byref(cfg), ctypes.sizeof(cfg))
        if self.queue_size is not None:
            cfg.window = max(1, min(65536, self.queue_size // nw))
        cfg.task_timeout = float(task_timeout or 0)
        cfg.setup_timeout = float(setup_timeout or 0)
        cfg.base_seed = int(base_seed)
        cfg.retries = int(retries)
        cfg.placement = 1 if self.placement else 0
        cfg.workers_per_gpu = int(self.workers_per_gpu)
        cfg.grace_s = float(grace or 0)
        keep = []  # what the C side points into, alive for the run
        blob = base64.b64encode(pickle.dumps(setup_kwargs, protocol=5))
        kv = (L.Kv * 1)(L.Kv(_KWARGS_KEY, blob))
        cfg.setup_args, cfg.n_setup_args = kv, 1
        if self.gpu_ids is not None:
            ids = (ctypes.c_int * max(1, len(self.gpu_ids)))(*self.gpu_ids)
            cfg.gpu_ids, cfg.n_gpu_ids = ids, len(self.gpu_ids)
            keep.append(ids)
        if results:
            path = os.fsencode(results)
            keep.append(path)
            cfg.journal = path
            cfg.resume = L.RESUME_RETRY_FAILED if resume else 0
        if total is None:
            try:
                total = len(generator)
            except TypeError:
                total = 0
        cfg.total_hint = int(total)

        if halt is not None and int(halt) < 1:
            raise ValueError("halt must be at least 1")
        run = _Run(lib, generator, {"on_success": on_success, "on_error": on_error,
                                    "on_timeout": on_timeout, "on_setup_fail": on_setup_fail},
                   halt)
        cfg.stop_flag = ctypes.pointer(run.stop)
        cfg.tick_s = 0.1
        worker = _Worker(lib, self.worker_cls)
        cb = L.Callbacks()
        lib.gd_callbacks_init(ctypes.byref(cb), ctypes.sizeof(cb))
        fns = [L.EVENT_FN(run.on_success), L.EVENT_FN(run.on_error),
               L.EVENT_FN(run.on_timeout), L.EVENT_FN(run.on_setup_fail),
               # no work of its own: Python runs here ten times a second even
               # when the application has no callback, and that is when a
               # signal's handler (_Run.interrupt) runs
               L.STATS_FN(lambda user, st: None)]
        if on_success is not None:
            cb.on_success = fns[0]
        if on_error is not None or halt is not None:
            cb.on_error = fns[1]
        if on_timeout is not None or halt is not None:
            cb.on_timeout = fns[2]
        if on_setup_fail is not None:
            cb.on_setup_fail = fns[3]
        cb.on_tick = fns[4]
        gen_fn = L.GEN_FN(run.gen)
        st = L.Stats()
        st.size = ctypes.sizeof(st)

        # Ctrl-C on rank 0 drains, a second one stops now; so does SIGUSR1,
        # which mpirun forwards to every rank: the workers let it pass (rank
        # 0 decides) with a handler that does nothing, not SIG_IGN, which
        # the executors and the programs they start would inherit.
        old = {}
        for sig in (signal.SIGINT, getattr(signal, "SIGUSR1", None)):
            if sig is None or (rank != 0 and sig == signal.SIGINT):
                continue
            try:
                old[sig] = signal.signal(sig, run.interrupt if rank == 0 else _ignore)
            except ValueError:  # not the main thread: signals stay as they are
                pass
        try:
            if self.show_ui:
                ui = L.UiOptions()
                lib.gd_ui_options_init(ctypes.byref(ui), ctypes.sizeof(ui))
                ui.mode = L.UI_AUTO
                ui.refresh_hz = float(self.refresh_rate)
                rc = lib.gd_ui_run(lib.comm_world, ctypes.byref(worker.c), gen_fn, None,
                                   ctypes.byref(cb), ctypes.byref(cfg), ctypes.byref(ui),
                                   ctypes.byref(st))
            else:
                rc = lib.gd_run(lib.comm_world, ctypes.byref(worker.c), gen_fn, None,
                                ctypes.byref(cb), ctypes.byref(cfg), ctypes.byref(st))
            stats = _stats_dict(lib, st)
        finally:
            lib.gd_stats_free(ctypes.byref(st))
            for sig, h in old.items():
                signal.signal(sig, h)
            if rank == 0 and on_exit is not None:
                try:
                    on_exit()
                except BaseException as e:  # noqa: BLE001
                    if run.error is None:
                        run.error = e
        stats["rc"] = rc
        stats["error"] = lib.gd_strerror(rc).decode() if rc else ""
        if run.error is not None:
            raise run.error
        # a stop that left tasks undone (GD_EINTR) and setup failing on
        # every worker (GD_EALLSETUP, each failure reported to
        # on_setup_fail) are outcomes the statistics say; anything else is
        # an error of the run
        if rc and lib.gd_err_name(rc) not in (b"GD_EINTR", b"GD_EALLSETUP"):
            raise DispatchError(rc, "gd_run: %s" % stats["error"])
        return stats
