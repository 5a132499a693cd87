"""The Python Dispatcher over the C library, through mpirun: each test runs
one scenario of dispatcher_app.py on 3 ranks (rank 0 dispatches, two
workers) and checks what rank 0 reported and what the workers recorded.

Needs the C library built (build/ of this tree, or GPUDISPATCH_LIB_DIR) and
mpirun.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "dispatcher_app.py")
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1",
           OMPI_MCA_btl_vader_single_copy_mechanism="none")


def lib_dir():
    d = os.environ.get("GPUDISPATCH_LIB_DIR", os.path.join(ROOT, "build"))
    assert os.path.exists(os.path.join(d, "libgpudispatch.so.0")), \
        "build the C library first (cmake --build build) or set GPUDISPATCH_LIB_DIR"
    return d


def run(scenario, tmp_path, *extra, np=3, timeout=120):
    assert MPIRUN, "mpirun is needed"
    env = dict(ENV, GPUDISPATCH_LIB_DIR=lib_dir())
    p = subprocess.run([MPIRUN, "-n", str(np), sys.executable, APP, scenario, str(tmp_path)]
                       + list(extra), env=env, capture_output=True, text=True, timeout=timeout)
    lines = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    assert lines, "no RESULT (rc %d):\n%s\n%s" % (p.returncode, p.stdout[-2000:],
                                                  p.stderr[-2000:])
    r = json.loads(lines[-1][len("RESULT "):])
    r["rc"], r["stderr"] = p.returncode, p.stderr
    return r


def worker_logs(tmp_path):
    """Each executor's record, by worker id: a list of runs of lines."""
    logs = {}
    for f in sorted(glob.glob(str(tmp_path / "w*.*"))):
        wid = int(os.path.basename(f)[1:].split(".")[0])
        logs.setdefault(wid, []).append(open(f).read().splitlines())
    return logs


def test_lifecycle_and_worker_ids(tmp_path):
    r = run("basic", tmp_path)
    s, st = r["seen"], r["stats"]
    assert r["raised"] is None and r["rc"] == 0
    assert sorted(t for t, _, _ in s["success"]) == list(range(50))
    # the worker_id of each message is the worker that ran the task
    assert all(res[1] == wid for _, res, wid in s["success"])
    assert s["order"][-1] == "exit" and s["exits"] == 1  # on_exit once, last
    assert st["total"] == 50 and st["completed"] == 50 and st["failed"] == 0
    assert sum(w["completed"] for w in st["gpu_status"]) == 50
    assert [w["worker_id"] for w in st["gpu_status"]] == [0, 1]
    assert all(w["status"] == "finished" for w in st["gpu_status"])
    # setup once, process per task, cleanup once, in that order, per executor
    for runs in worker_logs(tmp_path).values():
        for lines in runs:
            assert lines[0] == "setup t" and lines[-1] == "cleanup"
            assert all(x.startswith("process ") for x in lines[1:-1])


def test_any_picklable_task_and_result(tmp_path):
    r = run("objects", tmp_path)
    got = sorted(r["seen"]["success"], key=lambda x: x[0])
    assert len(got) == 20
    for tid, res, wid in got:
        assert res["worker"] == wid and res["echo"]["n"] == tid
        assert res["echo"]["nested"] == [tid, {"x": None}]


def test_backpressure(tmp_path):
    # queue_size 4 over 2 workers: a window of 2, so at most 4 tasks out
    r = run("backpressure", tmp_path)
    assert r["stats"]["completed"] == 200
    assert 1 <= r["extra"]["max_ahead"] <= 4 + 1  # + the one being pulled


def test_timeout_crash_and_exception_cost_one_task_each(tmp_path):
    r = run("faults", tmp_path)
    s = r["seen"]
    assert r["raised"] is None
    assert [t for t, _ in s["timeout"]] == [1]  # "hang", past task_timeout=2
    errors = {t: e for t, e, _ in s["error"]}
    assert set(errors) == {2, 3}
    assert "signal 11" in errors[2]  # ctypes.string_at(0): the interpreter died
    assert errors[3].startswith("ValueError: bad task 3")
    assert "Traceback" in errors[3] and "raise ValueError" in errors[3]
    assert sorted(t for t, _, _ in s["success"]) == [0, 4, 5]
    assert r["stats"]["timeout"] == 1 and r["stats"]["failed"] == 2


def test_setup_fails_on_one_worker(tmp_path):
    r = run("setup_fail_one", tmp_path)
    s = r["seen"]
    assert [w for w, _ in s["setup_fail"]] == [0]
    assert "RuntimeError: no model for worker 0" in s["setup_fail"][0][1]
    assert sorted(t for t, _, _ in s["success"]) == list(range(20))
    assert all(wid == 1 for _, _, wid in s["success"])
    assert r["stats"]["n_setup_failed"] == 1 and s["exits"] == 1


def test_setup_fails_on_every_worker(tmp_path):
    r = run("setup_fail_all", tmp_path)
    s = r["seen"]
    assert r["raised"] is None  # an outcome the statistics say, not an exception
    assert sorted(w for w, _ in s["setup_fail"]) == [0, 1]
    assert r["stats"]["n_setup_failed"] == 2 and r["stats"]["completed"] == 0
    assert "setup failed on every worker" in r["stats"]["error"]
    assert s["exits"] == 1


def test_seeds(tmp_path):
    r = run("seeds", tmp_path)
    pairs = {tuple(res) for _, res, _ in r["seen"]["success"]}
    assert pairs <= {(0, 1000), (1, 1001)} and len(r["seen"]["success"]) == 30


def test_callback_exception_drains_and_is_raised(tmp_path):
    r = run("callback_raises", tmp_path)
    s = r["seen"]
    assert r["raised"] == "KeyError: 'from on_success'"
    assert s["exits"] == 1 and s["order"][-1] == "exit"
    # drained: what was out finished, nothing more was pulled
    assert 5 <= len(s["success"]) <= 5 + 4


def test_ctrl_c_drains_then_raises(tmp_path):
    r = run("interrupt", tmp_path)
    s = r["seen"]
    assert r["raised"] == "KeyboardInterrupt: SIGINT"
    assert s["exits"] == 1
    done = sorted(t for t, _, _ in s["success"])
    assert done == list(range(len(done))) and 20 <= len(done) <= 21  # none lost
    assert "generator returned" not in r["stderr"]


def test_sigusr1_through_mpirun_drains(tmp_path):
    # what Slurm's scancel --signal=USR1 or a user's kill does to the job:
    # mpirun forwards SIGUSR1 to every rank; rank 0 drains, workers ignore it
    import signal
    import time
    env = dict(ENV, GPUDISPATCH_LIB_DIR=lib_dir())
    p = subprocess.Popen([MPIRUN, "-n", "3", sys.executable, APP, "usr1", str(tmp_path)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    p.send_signal(signal.SIGUSR1)
    out, err = p.communicate(timeout=120)
    r = json.loads([x for x in out.splitlines() if x.startswith("RESULT ")][-1][7:])
    s = r["seen"]
    assert r["raised"] == "KeyboardInterrupt: SIGUSR1"
    assert 0 < len(s["success"]) < 200 and s["exits"] == 1
    assert s["error"] == [] and s["timeout"] == []  # drained, nothing killed
    done = sorted(t for t, _, _ in s["success"])
    assert done == list(range(len(done)))  # every task handed out finished


def test_generator_exception_is_raised(tmp_path):
    r = run("generator_raises", tmp_path)
    assert r["raised"] == "OSError: cannot read the input"
    assert sorted(t for t, _, _ in r["seen"]["success"]) == list(range(10))
    assert r["seen"]["exits"] == 1


def test_retries(tmp_path):
    r = run("retries", tmp_path)
    assert sorted(t for t, _, _ in r["seen"]["success"]) == list(range(10))
    assert r["seen"]["error"] == [] and r["stats"]["retried"] == 10


def test_halt_drains_after_n_failures(tmp_path):
    r = run("halt", tmp_path)
    n = len(r["seen"]["error"])
    assert 3 <= n <= 3 + 4  # the third failure drains; what was out finishes
    assert r["stats"]["total"] < 1000 and r["stats"]["rc"] != 0  # GD_EINTR: undone
    assert r["raised"] is None and r["seen"]["exits"] == 1


def test_results_journal_and_resume(tmp_path):
    r = run("journal", tmp_path)
    assert r["extra"]["first"] == 30 and r["extra"]["lines"] == 30
    assert r["stats"]["skipped"] == 30 and r["stats"]["completed"] == 0


def test_with_mpi4py_imported_first(tmp_path):
    pytest.importorskip("mpi4py")
    r = run("basic", tmp_path, "mpi4py")
    assert r["raised"] is None and r["stats"]["completed"] == 50


def example(name, *args, tmp_path):
    env = dict(ENV, GPUDISPATCH_LIB_DIR=lib_dir(), PYTHONPATH=os.path.join(ROOT, "python"))
    p = subprocess.run([MPIRUN, "-n", "3", sys.executable,
                        os.path.join(ROOT, "examples", "python", name)] + list(args),
                       env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p.stdout


def test_example_no_ui(tmp_path):
    assert "sum 500500 (expected 500500); 1000 tasks on 2 workers" in example(
        "no_ui.py", tmp_path=tmp_path)


def test_example_custom_callbacks(tmp_path):
    out = example("custom_callbacks.py", "sq.json", tmp_path=tmp_path)
    assert "saved 43 results and 7 errors to sq.json" in out
    saved = json.load(open(tmp_path / "sq.json"))
    assert saved["results"]["12"] == 144
    assert "ValueError: 10 is unlucky" in saved["errors"]["10"]


def test_example_basic_ui(tmp_path):
    out = example("basic_ui.py", tmp_path=tmp_path)
    # no terminal here: the progress lines and the summary table instead
    assert "== gpudispatch summary ==" in out and "200 results, 200 completed of 200" in out
