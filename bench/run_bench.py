#!/usr/bin/env python3
"""The benchmark suite of issue 7: gpudispatch against the MPI limit and the
tools users would pick instead, every figure measured side by side.

    bench/run_bench.py --build build-bench [--reps N] [--quick] [--json FILE]
                       [--only NAME,...] [--list]

Every benchmark in the interleaved set runs once per repetition, in the same
order each time (A B C ... A B C ...), so that drift on a shared machine hits
them all alike; the long single runs (peak RSS, 32 ranks, callgrind, the
dashboard's own interleaved bench) follow.  The table gives each row's median
with min-max over the repetitions, the ratios behind each bar, and PASS/MISS.
The exit status is 0 unless a benchmark crashed (a missed bar is not an
error); rows whose tool is missing are SKIPped.

Only the standard library is used: any python3 runs this.  mpi4py is run with
GD_BENCH_PYTHON (default /usr/bin/python3, where Debian's python3-mpi4py is).
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

NW = 3  # workers in the main rows: 4 ranks


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Runner:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.bench = os.path.join(self.build, "bench")
        self.src = os.path.dirname(os.path.abspath(__file__))
        self.python = os.environ.get("GD_BENCH_PYTHON", "/usr/bin/python3")
        self.env = dict(os.environ)
        self.env.update({
            "OMPI_ALLOW_RUN_AS_ROOT": "1",
            "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
        })
        self.timeout = args.timeout
        self.crashes = []
        self.tmp = tempfile.mkdtemp(prefix="gdbench.")

    def mpirun(self, n, argv):
        return ["mpirun", "--oversubscribe", "-n", str(n)] + argv

    def exe(self, name):
        return os.path.join(self.bench, name)

    def run(self, name, cmd, timeout=None, allow_fail=False):
        """Run cmd; \\return (wall seconds, last JSON object printed or None)."""
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, env=self.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            self.crashes.append("%s: timed out (%s)" % (name, " ".join(cmd)))
            return None, None
        wall = time.perf_counter() - t0
        obj = None
        for line in p.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    pass
        if p.returncode != 0 and not allow_fail:
            tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
            self.crashes.append("%s: exit status %d (%s)\n    %s" % (
                name, p.returncode, " ".join(cmd), "\n    ".join(tail)))
            return None, None
        if p.returncode != 0:
            return None, None
        return wall, obj


# --------------------------------------------------------------- the cases

def sizes(quick):
    """Task counts: full (about 4 minutes on 2 cores) or quick (about 2)."""
    if quick:
        return dict(raw=600000, textbook=150000, gd_default=200000, gd_fast=600000,
                    py_c1=2000, py_c64=60000, sleep1=2000, sleep100=20000,
                    big=1500, big_sleep=600, cmd=300, rss_small=100000, rss_big=10000000,
                    rss_mode="none", n32=1000000, cg=30000, long_few=30)
    return dict(raw=2000000, textbook=400000, gd_default=600000, gd_fast=2000000,
                py_c1=5000, py_c64=200000, sleep1=2000, sleep100=20000,
                big=10000, big_sleep=1500, cmd=1000, rss_small=100000, rss_big=10000000,
                rss_mode="process", n32=1000000, cg=100000, long_few=30)


def interleaved_cases(r, s):
    """(name, description, function returning a sample dict or None)."""
    B = r.exe
    W = "16"
    cases = []

    def json_case(name, desc, cmd, key="tasks_per_s"):
        def f():
            wall, obj = r.run(name, cmd)
            if obj is None:
                return None
            obj["value"] = obj[key]
            obj["wall_s"] = wall
            return obj
        cases.append((name, desc, f, cmd))

    json_case("usleep_1000", "usleep(1000) real cost, us (mean)",
              [B("usleep_cost"), "--us", "1000", "--n", "300"], "mean_us")
    json_case("usleep_100", "usleep(100) real cost, us (mean)",
              [B("usleep_cost"), "--us", "100", "--n", "2000"], "mean_us")
    json_case("raw_echo_16", "raw MPI pipelined echo, 16 B, W=16 (round trips/s)",
              r.mpirun(4, [B("raw_echo"), "--tasks", str(s["raw"]), "--payload", "16",
                           "--window", W]))
    json_case("textbook", "textbook master-worker, 16 B (tasks/s)",
              r.mpirun(4, [B("textbook"), "--tasks", str(s["textbook"])]))
    json_case("gd_default_empty", "gpudispatch default mode, empty 16 B tasks (tasks/s)",
              r.mpirun(4, [B("bench_dispatch"), "--tasks", str(s["gd_default"]),
                           "--payload", "16", "--window", W, "--isolation", "process"]))
    json_case("gd_fast_empty", "gpudispatch fast mode (isolation none), empty 16 B (tasks/s)",
              r.mpirun(4, [B("bench_dispatch"), "--tasks", str(s["gd_fast"]),
                           "--payload", "16", "--window", W, "--isolation", "none"]))
    if r.has_mpi4py:
        for c, n in ((1, s["py_c1"]), (64, s["py_c64"])):
            json_case("mpi4py_c%d" % c,
                      "mpi4py.futures MPIPoolExecutor.map chunksize %d (tasks/s)" % c,
                      r.mpirun(4, [r.python, "-m", "mpi4py.futures",
                                   os.path.join(r.src, "mpi4py_bench.py"),
                                   "--tasks", str(n), "--chunksize", str(c)]))
    json_case("gd_sleep_1ms", "gpudispatch default mode, %d tasks of usleep(1000) (s)"
              % s["sleep1"],
              r.mpirun(4, [B("bench_dispatch"), "--tasks", str(s["sleep1"]),
                           "--sleep-us", "1000", "--window", W]), "elapsed_s")
    json_case("gd_sleep_100us", "gpudispatch default mode, %d tasks of usleep(100) (s)"
              % s["sleep100"],
              r.mpirun(4, [B("bench_dispatch"), "--tasks", str(s["sleep100"]),
                           "--sleep-us", "100", "--window", W]), "elapsed_s")
    json_case("gd_big_sleep_1ms", "gpudispatch default mode, %d tasks of 1 MiB + usleep(1000)"
              " (s)" % s["big_sleep"],
              r.mpirun(4, [B("bench_dispatch"), "--tasks", str(s["big_sleep"]), "--payload",
                           "1048576", "--sleep-us", "1000", "--window", "4"]), "elapsed_s")
    json_case("usleep_100000", "usleep(100000) real cost, us (mean)",
              [B("usleep_cost"), "--us", "100000", "--n", "10"], "mean_us")
    json_case("gd_long_few", "gpudispatch default mode, %d tasks of usleep(100000), W=%s (s)"
              % (s["long_few"], W),
              r.mpirun(4, [B("bench_dispatch"), "--tasks", str(s["long_few"]),
                           "--sleep-us", "100000", "--window", W]), "elapsed_s")
    json_case("raw_echo_1m", "raw MPI, 1 MiB out / 16 B back, W=4 (tasks/s)",
              r.mpirun(4, [B("raw_echo"), "--tasks", str(s["big"]), "--payload", "1048576",
                           "--reply", "16", "--window", "4"]))
    json_case("gd_default_1m", "gpudispatch default mode, 1 MiB tasks, W=4 (tasks/s)",
              r.mpirun(4, [B("bench_dispatch"), "--tasks", str(s["big"]), "--payload",
                           "1048576", "--window", "4"]))
    json_case("gd_fast_1m", "gpudispatch fast mode, 1 MiB tasks, W=4 (tasks/s)",
              r.mpirun(4, [B("bench_dispatch"), "--tasks", str(s["big"]), "--payload",
                           "1048576", "--window", "4", "--isolation", "none"]))
    n = s["cmd"]
    tasks_file = os.path.join(r.tmp, "tasks.txt")
    with open(tasks_file, "w") as f:
        f.write("".join("%d\n" % i for i in range(n)))
    if r.has_cli:
        def cli():
            cmd = r.mpirun(4, [r.cli, "run", "--tasks", tasks_file, "--ui", "none",
                               "--no-placement", "--", "true"])
            wall, _ = r.run("gd_cli_true", cmd)
            if wall is None:
                return None
            return {"value": n / wall, "wall_s": wall, "tasks": n, "tasks_per_s": n / wall}
        cases.append(("gd_cli_true", "gpudispatch run -- true, %d tasks, 3 workers "
                      "(tasks/s, wall incl. start)" % n, cli, ["mpirun", "...", "gpudispatch",
                                                               "run", "--", "true"]))
    if r.has_parallel:
        def par():
            cmd = ["parallel", "-j%d" % NW, "true", ":::"] + [str(i) for i in range(n)]
            wall, _ = r.run("parallel_true", cmd)
            if wall is None:
                return None
            return {"value": n / wall, "wall_s": wall, "tasks": n, "tasks_per_s": n / wall}
        cases.append(("parallel_true", "GNU parallel -j%d true, %d tasks (tasks/s, wall)"
                      % (NW, n), par, ["parallel", "-j3", "true", ":::", "..."]))
    return cases


def callgrind_calls(path, names):
    """Sum the calls= counts of calls to the given functions in a callgrind file."""
    idname = {}
    total = dict((n, 0) for n in names)
    cur = None
    with open(path) as f:
        for line in f:
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(2):
                    idname[m.group(1)] = m.group(2).strip()
                cur = idname.get(m.group(1)) if line.startswith("cfn") else None
                continue
            if line.startswith("calls=") and cur in total:
                total[cur] += int(line.split("=")[1].split()[0])
                cur = None
    return total


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return None


# --------------------------------------------------------------- statistics

def summary(samples):
    v = [x["value"] for x in samples if x is not None]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v),
            "values": v}


def fmt(x):
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1e6:
        return "%.2fM" % (x / 1e6)
    if a >= 1e4:
        return "%.1fk" % (x / 1e3)
    if a >= 100:
        return "%.0f" % x
    if a >= 1:
        return "%.3g" % x
    return "%.3f" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("GD_BENCH_REPS", "0")))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", default="", help="comma-separated case/extra names")
    ap.add_argument("--no-extras", action="store_true",
                    help="only the interleaved set (no RSS, 32 ranks, callgrind, dashboard)")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    r = Runner(args)
    s = sizes(args.quick)
    only = set(x for x in args.only.split(",") if x)

    # what is installed
    r.has_mpi4py = subprocess.run([r.python, "-c", "import mpi4py.futures"],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0 \
        if os.path.exists(r.python) else False
    r.has_parallel = shutil.which("parallel") is not None
    r.cli = os.path.join(r.build, "gpudispatch")
    r.has_cli = False
    if os.access(r.cli, os.X_OK):
        _, _ = None, None
        probe = subprocess.run(r.mpirun(2, [r.cli, "run", "--tasks", "/dev/null", "--ui",
                                            "none", "--no-placement", "--", "true"]),
                               env=r.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        r.has_cli = probe.returncode == 0
    skipped = {}
    if not r.has_mpi4py:
        skipped["mpi4py"] = "mpi4py.futures not importable by %s" % r.python
    if not r.has_parallel:
        skipped["parallel"] = "GNU parallel not installed"
    if not r.has_cli:
        skipped["gd_cli"] = "%s missing or failing" % r.cli

    cases = interleaved_cases(r, s)
    if only:
        cases = [c for c in cases if c[0] in only]
    samples = dict((c[0], []) for c in cases)
    log("bench: %d repetitions of %d benchmarks, interleaved%s" %
        (reps, len(cases), " (quick)" if args.quick else ""))
    t_start = time.time()
    for rep in range(reps):
        for name, _, f, _ in cases:
            x = f()
            samples[name].append(x)
            log("  rep %d %-18s %s" % (rep + 1, name, fmt(x["value"]) if x else "FAILED"))

    extras = {}

    def want(name):
        return not args.no_extras and (not only or name in only)

    B = r.exe
    # --- peak RSS: 100 k vs 10 M empty tasks
    if want("rss"):
        mode = s["rss_mode"]
        rows = {}
        for label, n in (("small", s["rss_small"]), ("big", s["rss_big"])):
            cmd = r.mpirun(4, [B("bench_dispatch"), "--tasks", str(n), "--window", "16",
                               "--isolation", mode])
            log("  rss %s: %d tasks, isolation %s" % (label, n, mode))
            _, obj = r.run("rss_" + label, cmd, timeout=600)
            rows[label] = obj
        extras["rss"] = {"isolation": mode, "small": rows["small"], "big": rows["big"]}

    # --- 32 ranks: 1 M empty tasks, default mode
    if want("ranks32"):
        cmd = r.mpirun(32, [B("bench_dispatch"), "--tasks", str(s["n32"]), "--window", "16",
                            "--isolation", "process"])
        log("  32 ranks: %d tasks, default mode" % s["n32"])
        _, obj = r.run("ranks32", cmd, timeout=600)
        extras["ranks32"] = obj

    # --- rank 0's work per message at 4 and 32 ranks (callgrind, rank 0 only)
    if want("callgrind") and shutil.which("valgrind"):
        cg = {}
        for np_ in (4, 32):
            out = os.path.join(r.tmp, "cg.%d.out" % np_)
            argv = [B("bench_dispatch"), "--tasks", str(s["cg"]), "--window", "16",
                    "--isolation", "none"]
            cmd = ["mpirun", "--oversubscribe", "-n", "1", "valgrind", "--tool=callgrind",
                   "--toggle-collect=gd__dispatch", "--callgrind-out-file=" + out] + argv + \
                [":", "-n", str(np_ - 1)] + argv
            log("  callgrind rank 0: %d ranks, %d tasks" % (np_, s["cg"]))
            _, obj = r.run("callgrind_%d" % np_, cmd, timeout=600)
            if obj is None or not os.path.exists(out):
                cg[str(np_)] = None
                continue
            ir = callgrind_total(out)
            calls = callgrind_calls(out, ["gd__msg_foreach", "PMPI_Isend", "PMPI_Test",
                                          "PMPI_Improbe"])
            cg[str(np_)] = {"ir": ir, "tasks": obj["completed"],
                            "ir_per_task": ir / obj["completed"],
                            "msgs_in": calls["gd__msg_foreach"],
                            "msgs_out": calls["PMPI_Isend"],
                            "mpi_test_calls": calls["PMPI_Test"],
                            "improbe_calls": calls["PMPI_Improbe"],
                            "ir_per_msg": ir / max(1, calls["gd__msg_foreach"] +
                                                   calls["PMPI_Isend"])}
        extras["callgrind"] = cg
    elif want("callgrind"):
        skipped["callgrind"] = "valgrind not installed"

    # --- the dashboard helper's bench, when it exists
    if want("dashboard"):
        sh = os.path.join(r.src, "bench_dashboard.sh")
        if os.path.exists(os.path.join(r.src, "bench_dashboard.c")) and \
                os.access(r.exe("bench_dashboard"), os.X_OK) and os.path.exists(sh):
            # Pairs of runs of 2 M empty tasks (about 0.9 s here, some ten
            # refreshes) from several launches: one launch's ratio swung by
            # +-4 % (bench_dashboard.sh), the median of 64 pairs much less.
            # An even number of pairs per launch: the second run of a pair
            # was about 1 % slower than the first, and the order alternates.
            n, k, L = ("500000", "2", "4") if args.quick else ("2000000", "4", "16")
            log("  dashboard: bench_dashboard.sh %s %s %s 4 %s" % (r.build, n, k, L))
            p = subprocess.run(["bash", sh, r.build, n, k, "4", L], env=r.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=900)
            m = re.search(r"ratio on/off: ([0-9.]+)", p.stdout)
            extras["dashboard"] = {"report": p.stdout, "ratio": float(m.group(1)) if m
                                   else None, "drawn": "/dev/tty" in p.stdout}
            if not m:
                r.crashes.append("bench_dashboard.sh: no ratio in its report:\n" +
                                 (p.stdout + p.stderr)[-500:])
        else:
            skipped["dashboard"] = "bench/bench_dashboard.c or its build is missing"

    elapsed = time.time() - t_start
    report(r, args, reps, s, cases, samples, extras, skipped, elapsed)
    shutil.rmtree(r.tmp, ignore_errors=True)
    if r.crashes:
        log("\nCRASHED:\n  " + "\n  ".join(r.crashes))
        sys.exit(1)


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mpi = subprocess.run(["mpirun", "--version"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.splitlines()
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "kernel": platform.release(), "mpi": mpi[0] if mpi else ""}


def report(r, args, reps, s, cases, samples, extras, skipped, elapsed):
    sm = dict((name, summary(samples[name])) for name, _, _, _ in cases)
    med = dict((k, v["median"] if v else None) for k, v in sm.items())
    bars = []

    def bar(what, value, op, target, detail):
        if value is None:
            bars.append({"bar": what, "value": None, "target": "%s %g" % (op, target),
                         "status": "SKIP", "detail": detail})
            return
        ok = value >= target if op == ">=" else value <= target
        bars.append({"bar": what, "value": value, "target": "%s %g" % (op, target),
                     "status": "PASS" if ok else "MISS", "detail": detail})

    def ratio(a, b):
        return med[a] / med[b] if med.get(a) and med.get(b) else None

    bar("default mode empty / mpi4py chunksize 64", ratio("gd_default_empty", "mpi4py_c64"),
        ">=", 1, "tasks/s ratio")
    bar("default mode empty / mpi4py chunksize 1", ratio("gd_default_empty", "mpi4py_c1"),
        ">=", 50, "tasks/s ratio")
    bar("fast mode empty / raw echo (W=16)", ratio("gd_fast_empty", "raw_echo_16"), ">=", 0.5,
        "tasks/s ratio")
    bar("fast mode empty / textbook", ratio("gd_fast_empty", "textbook"), ">=", 2,
        "tasks/s ratio")
    for name, cost, n, target in (("gd_sleep_1ms", "usleep_1000", s["sleep1"], 0.98),
                                  ("gd_sleep_100us", "usleep_100", s["sleep100"], 0.90)):
        eff = None
        if med.get(name) and med.get(cost):
            ideal = n * med[cost] * 1e-6 / NW
            eff = ideal / med[name]
        bar("%s: fraction of ideal" % name, eff, ">=", target,
            "ideal = %d x measured usleep cost / %d workers" % (n, NW))
    # not in the issue: a run of a few long tasks must use every worker, at
    # its start (not W tasks to the first one ready) and at its end
    eff = None
    if med.get("gd_long_few") and med.get("usleep_100000"):
        eff = s["long_few"] * med["usleep_100000"] * 1e-6 / NW / med["gd_long_few"]
    bar("%d tasks of 100 ms, W=16: fraction of ideal" % s["long_few"], eff, ">=", 0.95,
        "our own bar; ideal = %d x measured usleep cost / %d workers" % (s["long_few"], NW))
    bar("1 MiB default mode / raw MPI", ratio("gd_default_1m", "raw_echo_1m"), ">=", 0.8,
        "tasks/s ratio, W=4")
    # not in the issue: large tasks that also run a while must overlap their
    # transfer with the run (a rendezvous moves only while both sides poll)
    eff = None
    if med.get("gd_big_sleep_1ms") and med.get("usleep_1000"):
        eff = s["big_sleep"] * med["usleep_1000"] * 1e-6 / NW / med["gd_big_sleep_1ms"]
    bar("1 MiB + usleep(1000): fraction of ideal", eff, ">=", 0.9,
        "our own bar; ideal = %d x measured usleep cost / %d workers, W=4"
        % (s["big_sleep"], NW))
    bar("command mode / GNU parallel (-j3)", ratio("gd_cli_true", "parallel_true"), ">=", 3,
        "wall-clock tasks/s ratio")
    rss = extras.get("rss")
    if rss and rss["small"] and rss["big"]:
        a, b = rss["small"], rss["big"]
        bar("rank 0 peak RSS, %s / %s tasks" % (fmt(b["tasks"]), fmt(a["tasks"])),
            b["rank0_maxrss_kb"] / a["rank0_maxrss_kb"], "<=", 1.1,
            "%.0f / %.0f KiB, isolation %s" % (b["rank0_maxrss_kb"], a["rank0_maxrss_kb"],
                                               rss["isolation"]))
        wr = max(x / y for x, y in zip(b["worker_maxrss_kb"], a["worker_maxrss_kb"]))
        bar("worker ranks' peak RSS, big / small (worst)", wr, "<=", 1.1, "KiB %s vs %s" % (
            b["worker_maxrss_kb"], a["worker_maxrss_kb"]))
        if rss["isolation"] == "process":
            er = max(x / y for x, y in zip(b["executor_maxrss_kb"], a["executor_maxrss_kb"]))
            bar("executors' peak RSS, big / small (worst)", er, "<=", 1.1, "KiB %s vs %s" % (
                b["executor_maxrss_kb"], a["executor_maxrss_kb"]))
    elif "rss" in extras:
        bar("rank 0 peak RSS, 10M / 100k", None, "<=", 1.1, "a run failed")
    d = extras.get("dashboard")
    if d is not None:
        bar("dashboard on / off (10 Hz)", d["ratio"], ">=", 0.97,
            "bench_dashboard.sh; " + ("drawn on a terminal" if d["drawn"] else
                                      "NOT drawn (no terminal)"))
    elif "dashboard" in skipped:
        bar("dashboard on / off (10 Hz)", None, ">=", 0.97, skipped["dashboard"])
    r32 = extras.get("ranks32")
    if "ranks32" in extras:
        ok = r32 is not None and r32["completed"] == r32["tasks"] and r32["rc"] == 0
        bar("32 ranks: %s empty tasks complete" % fmt(s["n32"]), 1.0 if ok else 0.0, ">=", 1,
            ("%.0f tasks/s, rank 0 CPU %.2f us/task" % (
                r32["tasks_per_s"], r32["rank0_cpu_s"] / r32["tasks"] * 1e6)) if r32 else
            "failed")
    cg = extras.get("callgrind")
    if cg and cg.get("4") and cg.get("32"):
        bar("rank 0 instructions per task, 32 / 4 ranks", cg["32"]["ir_per_task"] /
            cg["4"]["ir_per_task"], "<=", 1.1,
            "callgrind, fast mode: %.0f vs %.0f Ir/task; %.0f vs %.0f Ir/message" % (
                cg["32"]["ir_per_task"], cg["4"]["ir_per_task"],
                cg["32"]["ir_per_msg"], cg["4"]["ir_per_msg"]))

    # ---- print
    mach = machine()
    out = []
    out.append("gpudispatch benchmark suite (issue 7): %s, %d cores, %s; %s" % (
        mach["cpu"] or "unknown CPU", mach["cores"], mach["kernel"], mach["mpi"]))
    out.append("%d repetitions, interleaved; N = %d workers (4 ranks, --oversubscribe); "
               "%.0f s" % (reps, NW, elapsed))
    out.append("")
    w = max([len(c[1]) for c in cases] + [20])
    out.append("%-*s %10s  %-21s" % (w, "benchmark", "median", "min - max"))
    for name, desc, _, _ in cases:
        v = sm[name]
        if v is None:
            out.append("%-*s %10s" % (w, desc, "FAILED"))
            continue
        out.append("%-*s %10s  %-21s" % (w, desc, fmt(v["median"]),
                                          "%s - %s" % (fmt(v["min"]), fmt(v["max"]))))
    for k, why in skipped.items():
        out.append("%-*s %10s  (%s)" % (w, k, "SKIP", why))
    if rss and rss.get("small") and rss.get("big"):
        for label in ("small", "big"):
            x = rss[label]
            out.append("peak RSS, %s tasks (isolation %s): rank 0 %d KiB, workers %s, "
                       "executors %s; %.0f tasks/s" % (
                           fmt(x["tasks"]), x["isolation"], x["rank0_maxrss_kb"],
                           x["worker_maxrss_kb"], x["executor_maxrss_kb"], x["tasks_per_s"]))
    if r32:
        out.append("32 ranks, %s tasks, default mode: %.0f tasks/s, %.1f s, rank 0 CPU %.3f s "
                   "(%.2f us/task), worker ranks CPU %.1f s total, executors %.1f s" % (
                       fmt(r32["tasks"]), r32["tasks_per_s"], r32["elapsed_s"],
                       r32["rank0_cpu_s"], r32["rank0_cpu_s"] / r32["tasks"] * 1e6,
                       sum(r32["worker_cpu_s"]), sum(r32["executor_cpu_s"])))
    if cg:
        for k in ("4", "32"):
            x = cg.get(k)
            if x:
                out.append("callgrind rank 0, %s ranks: %.0f Ir/task, %.0f Ir/message, "
                           "%d messages in, %d out, %d MPI_Test, %d MPI_Improbe for %d tasks"
                           % (k, x["ir_per_task"], x["ir_per_msg"], x["msgs_in"],
                              x["msgs_out"], x["mpi_test_calls"], x["improbe_calls"],
                              x["tasks"]))
    out.append("")
    bw = max(len(b["bar"]) for b in bars) if bars else 10
    out.append("%-*s %10s  %-8s %s" % (bw, "bar", "measured", "target", "result"))
    for b in bars:
        out.append("%-*s %10s  %-8s %s  (%s)" % (bw, b["bar"], "-" if b["value"] is None
                                                 else "%.3g" % b["value"], b["target"],
                                                 b["status"], b["detail"]))
    print("\n".join(out))
    sys.stdout.flush()
    doc = {"machine": mach, "reps": reps, "quick": args.quick, "elapsed_s": elapsed,
           "sizes": s, "benchmarks": dict((name, {"description": desc, "command": cmd,
                                                  "summary": sm[name],
                                                  "samples": samples[name]})
                                          for name, desc, _, cmd in cases),
           "extras": extras, "skipped": skipped, "bars": bars, "crashes": r.crashes}
    path = args.json or os.path.join(r.build, "bench.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    log("wrote %s" % path)


if __name__ == "__main__":
    main()
