"""ctypes view of libgpudispatch and libgpudispatch_ui (include/gpudispatch.h,
include/gpudispatch_ui.h): the structs, the functions, and MPI_COMM_WORLD.

No compiler is needed: the shared libraries are found at run time, in this
order: $GPUDISPATCH_LIB_DIR, the build folder of a source tree this package
sits in (../../build), then the loader's search path (an installed copy).
The structs carry their size and the library fills its defaults, so a
layout that does not match the library is caught at load time (load()
checks the defaults gd_config_init() writes).
"""
import ctypes
import os

c_int, c_uint, c_size_t, c_double = ctypes.c_int, ctypes.c_uint, ctypes.c_size_t, ctypes.c_double
c_u32, c_u64, c_void_p, c_char_p = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_char_p
P = ctypes.POINTER

# gd_event_type, gd_worker_state, gd_stop_level, gd_ui_mode
EV_SUCCESS, EV_ERROR, EV_TIMEOUT, EV_SETUP_FAIL = 1, 2, 3, 4
WS_NAMES = ["initializing", "idle", "processing", "finished", "error", "quarantined"]
STOP_DRAIN, STOP_NOW = 1, 2
UI_NONE, UI_AUTO = 0, 1
ISOLATE_PROCESS = 0
RESUME_RETRY_FAILED = 1


class Gpu(ctypes.Structure):
    _fields_ = [("index", c_int), ("numa_node", c_int), ("bus_id", ctypes.c_char * 20),
                ("vendor", ctypes.c_char * 16), ("model", ctypes.c_char * 64),
                ("uuid", ctypes.c_char * 48), ("cpuset", ctypes.c_char * 128)]


class WorkerStats(ctypes.Structure):
    _fields_ = [("worker_id", c_int), ("rank", c_int), ("pid", c_int),
                ("host", ctypes.c_char * 64), ("gpu", Gpu), ("state", c_int),
                ("completed", c_u64), ("failed", c_u64), ("timed_out", c_u64),
                ("in_flight", c_u32), ("restarts", c_u32), ("current_task", c_u64),
                ("current_since", c_double), ("busy_s", c_double),
                ("message", ctypes.c_char * 160)]


class Stats(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("total", c_u64), ("completed", c_u64), ("failed", c_u64),
                ("timed_out", c_u64), ("not_done", c_u64), ("skipped", c_u64),
                ("retried", c_u64), ("total_hint", c_u64), ("start_time", c_double),
                ("elapsed_s", c_double), ("n_workers", c_int), ("n_setup_failed", c_int),
                ("workers", c_void_p), ("worker_size", c_size_t)]


class Exit(ctypes.Structure):
    _fields_ = [("status", c_int), ("signal", c_int)]


class Event(ctypes.Structure):
    _fields_ = [("type", c_int), ("worker_id", c_int), ("task_id", c_u64), ("attempt", c_u32),
                ("data", c_void_p), ("len", c_size_t), ("message", c_char_p),
                ("timeout_s", c_double), ("elapsed_s", c_double), ("task_data", c_void_p),
                ("task_len", c_size_t), ("stats", P(Stats)), ("exit", Exit)]


class Kv(ctypes.Structure):
    _fields_ = [("key", c_char_p), ("value", c_char_p)]


class Args(ctypes.Structure):
    _fields_ = [("kv", P(Kv)), ("n", c_size_t)]


class Task(ctypes.Structure):
    _fields_ = [("id", c_u64), ("attempt", c_u32), ("data", c_void_p), ("len", c_size_t)]


EVENT_FN = ctypes.CFUNCTYPE(None, c_void_p, P(Event))
EXIT_FN = ctypes.CFUNCTYPE(None, c_void_p, P(Stats), c_int)
STATS_FN = ctypes.CFUNCTYPE(None, c_void_p, P(Stats))
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)
POLL_FN = ctypes.CFUNCTYPE(c_int, c_void_p)
GEN_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)
SETUP_FN = ctypes.CFUNCTYPE(c_int, c_void_p, P(Args))
PROCESS_FN = ctypes.CFUNCTYPE(c_int, c_void_p, P(Task), c_void_p)
CLEANUP_FN = ctypes.CFUNCTYPE(c_int, c_void_p)


class Callbacks(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("on_success", EVENT_FN), ("on_error", EVENT_FN),
                ("on_timeout", EVENT_FN), ("on_setup_fail", EVENT_FN),
                ("on_cleanup_fail", EVENT_FN), ("on_dispatch", EVENT_FN),
                ("on_worker", EVENT_FN), ("on_retry", EVENT_FN), ("on_not_done", EVENT_FN),
                ("on_exit", EXIT_FN), ("poll_stop", POLL_FN), ("user", c_void_p),
                ("on_start", STATS_FN), ("on_tick", STATS_FN), ("on_log", LOG_FN)]


class Config(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("window", c_uint), ("task_timeout", c_double),
                ("setup_timeout", c_double), ("base_seed", c_u64), ("setup_args", P(Kv)),
                ("n_setup_args", c_size_t), ("isolation", c_int), ("retries", c_uint),
                ("max_restarts", c_uint), ("placement", c_int), ("gpu_ids", P(c_int)),
                ("n_gpu_ids", c_size_t), ("workers_per_gpu", c_uint), ("total_hint", c_u64),
                ("stop_flag", P(c_int)), ("grace_s", c_double), ("journal", c_char_p),
                ("resume", c_int), ("resume_force", c_int), ("journal_extra", c_void_p),
                ("journal_extra_user", c_void_p), ("skip", c_void_p), ("skip_user", c_void_p),
                ("tick_s", c_double), ("shm", c_int)]


class WorkerClass(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("setup", SETUP_FN), ("process", PROCESS_FN),
                ("cleanup", CLEANUP_FN)]


class UiOptions(ctypes.Structure):
    _fields_ = [("size", c_size_t), ("mode", c_int), ("refresh_hz", c_double),
                ("text_interval_s", c_double), ("monochrome", c_int), ("out", c_void_p)]


def _candidates(name):
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = []
    if os.environ.get("GPUDISPATCH_LIB_DIR"):
        dirs.append(os.environ["GPUDISPATCH_LIB_DIR"])
    dirs += [os.path.join(here, "..", "..", "build"), os.path.join(here, "..", "..", "build", "ui")]
    for d in dirs:
        p = os.path.join(d, name)
        if os.path.exists(p):
            yield p
    yield name  # the loader's own search: an installed library


def _open(name):
    err = None
    for path in _candidates(name):
        try:
            # global: Open MPI's plugins, which libmpi dlopen()s, need its symbols
            return ctypes.CDLL(path, mode=os.RTLD_GLOBAL)
        except OSError as e:
            err = e
    raise ImportError("gpudispatch: cannot load %s (%s); build the C library "
                      "(cmake --build build) or set GPUDISPATCH_LIB_DIR" % (name, err))


class Lib:
    """The loaded libraries and their signatures."""

    def __init__(self):
        core = _open("libgpudispatch.so.0")
        ui = _open("libgpudispatch_ui.so.0")
        self.core, self.ui = core, ui
        sig = [
            (core, "gd_init", c_int, [c_void_p, c_void_p]),
            (core, "gd_finalize", c_int, []),
            (core, "gd_version", c_char_p, []),
            (core, "gd_strerror", c_char_p, [c_int]),
            (core, "gd_err_name", c_char_p, [c_int]),
            (core, "gd_config_init", c_int, [P(Config), c_size_t]),
            (core, "gd_callbacks_init", c_int, [P(Callbacks), c_size_t]),
            (core, "gd_stats_free", None, [P(Stats)]),
            (core, "gd_stats_worker", P(WorkerStats), [P(Stats), c_int]),
            (core, "gd_worker_id", c_int, [c_void_p]),
            (core, "gd_worker_seed", c_u64, [c_void_p]),
            (core, "gd_worker_gpu", P(Gpu), [c_void_p]),
            (core, "gd_worker_host", c_char_p, [c_void_p]),
            (core, "gd_args_get", c_char_p, [P(Args), c_char_p]),
            (core, "gd_result_set", c_int, [c_void_p, c_void_p, c_size_t]),
            (core, "gd_buf_set", c_int, [c_void_p, c_void_p, c_size_t]),
            (core, "gd_now", c_double, []),
            (ui, "gd_ui_options_init", c_int, [P(UiOptions), c_size_t]),
        ]
        for lib, name, res, args in sig:
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
            setattr(self, name, f)
        # printf-like, always called as (handle, b"%s", text): the fixed
        # arguments typed (a pointer passed untyped would be cut to an int)
        for name in ("gd_result_error", "gd_worker_set_error"):
            f = getattr(core, name)
            f.restype = c_int if name == "gd_result_error" else None
            f.argtypes = [c_void_p, c_char_p, c_char_p]
            setattr(self, name, f)
        self.gd_run = core.gd_run
        self.gd_run.restype = c_int
        self.gd_ui_run = ui.gd_ui_run
        self.gd_ui_run.restype = c_int
        self._check_layout()
        self._mpi()

    def _check_layout(self):
        c = Config()
        if self.gd_config_init(ctypes.byref(c), ctypes.sizeof(c)) or c.window != 4 or \
                c.tick_s != 0.25 or c.shm != 1 or c.workers_per_gpu != 1:
            raise ImportError("gpudispatch: this package does not match libgpudispatch %s "
                              "(gd_config layout)" % self.gd_version().decode())
        cb = Callbacks()
        if self.gd_callbacks_init(ctypes.byref(cb), ctypes.sizeof(cb)):
            raise ImportError("gpudispatch: gd_callbacks layout does not match the library")

    def _mpi(self):
        """MPI_COMM_WORLD as gd_run() takes it, and MPI's rank/size calls."""
        core = self.core
        try:  # Open MPI: a handle is the address of a global struct
            self.comm_world = c_void_p(ctypes.addressof(c_int.in_dll(core, "ompi_mpi_comm_world")))
            self.comm_type = c_void_p
        except ValueError:  # MPICH and its kind: a handle is an int
            self.comm_world = c_int(0x44000000)
            self.comm_type = c_int
        for name in ("MPI_Comm_rank", "MPI_Comm_size"):
            f = getattr(core, name)
            f.restype, f.argtypes = c_int, [self.comm_type, P(c_int)]
            setattr(self, name, f)
        f = core.MPI_Initialized
        f.restype, f.argtypes = c_int, [P(c_int)]
        self.MPI_Initialized = f
        args = [self.comm_type, P(WorkerClass), GEN_FN, c_void_p, P(Callbacks), P(Config),
                P(Stats)]
        self.gd_run.argtypes = args
        self.gd_ui_run.argtypes = args[:6] + [P(UiOptions), P(Stats)]


_lib = None


def lib():
    """The libraries, loaded on first use."""
    global _lib
    if _lib is None:
        _lib = Lib()
    return _lib
