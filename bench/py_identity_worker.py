#!/usr/bin/env python3
"""The Python row's worker: the package's serve() with a process() that
returns its task (bench/bench_python.sh)."""
from gpudispatch import BaseWorker, serve


class Identity(BaseWorker):
    def process(self, task):
        return task


if __name__ == "__main__":
    serve(Identity)
