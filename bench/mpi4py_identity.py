"""The Python row's baseline: mpi4py.futures map, chunksize 1, over the
same task lines, returning each (bench/bench_python.sh)."""
import sys

from mpi4py.futures import MPIPoolExecutor


def identity(line):
    return line


if __name__ == "__main__":
    with open(sys.argv[1]) as f, MPIPoolExecutor() as ex:
        n = sum(1 for _ in ex.map(identity, (l.rstrip("\n") for l in f), chunksize=1))
    print(n)
