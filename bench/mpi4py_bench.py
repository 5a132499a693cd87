"""mpi4py.futures baseline: MPIPoolExecutor.map over empty tasks.

    mpirun -n 4 /usr/bin/python3 -m mpi4py.futures bench/mpi4py_bench.py \
        --tasks N --chunksize C [--payload BYTES]

Rank 0 runs this script; the other ranks are the pool's workers.  One
warm-up map (not timed) starts the workers; then the timed map runs N tasks
of a BYTES-byte payload each through an empty function.  Prints one JSON line.
"""
import argparse
import json
import sys
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor


def empty(payload):
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--chunksize", type=int, default=1)
    ap.add_argument("--payload", type=int, default=16)
    a = ap.parse_args()
    payload = b"x" * a.payload
    with MPIPoolExecutor() as ex:
        nw = MPI.COMM_WORLD.Get_size() - 1
        list(ex.map(empty, [payload] * (nw * 4), chunksize=1))  # warm-up
        t0 = time.perf_counter()
        n = sum(1 for _ in ex.map(empty, (payload for _ in range(a.tasks)),
                                  chunksize=a.chunksize))
        dt = time.perf_counter() - t0
    print(json.dumps({"bench": "mpi4py", "workers": nw, "tasks": n,
                      "chunksize": a.chunksize, "payload": a.payload,
                      "elapsed_s": dt, "tasks_per_s": n / dt if dt > 0 else 0}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
