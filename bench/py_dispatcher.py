"""The Dispatcher row (issue 20): N empty tasks through the Python binding
of the C library, identity workers; rank 0 prints tasks/s, its peak RSS and
how far ahead of the results the generator was pulled.

    mpirun -n 4 python3 bench/py_dispatcher.py N [QUEUE_SIZE]
"""
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from gpudispatch import BaseWorker, Dispatcher  # noqa: E402


class Identity(BaseWorker):
    def process(self, task):
        return task


n = int(sys.argv[1])
queue = int(sys.argv[2]) if len(sys.argv) > 2 else 64
done = [0]
ahead = [0, 0]  # pulled, most ahead


def gen():
    for i in range(n):  # lazy: never a list of n
        ahead[0] += 1
        ahead[1] = max(ahead[1], ahead[0] - done[0])
        yield i


def on_success(task_id, result, worker_id):
    done[0] += 1


t0 = time.monotonic()
st = Dispatcher(Identity, queue_size=queue, placement=False).run(generator=gen(),
                                                                 on_success=on_success)
dt = time.monotonic() - t0
if done[0]:  # rank 0
    print("dispatcher %d tasks %.2f s %.0f tasks/s rank0_maxrss_kb %d max_ahead %d" % (
        st["completed"], dt, st["completed"] / dt,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, ahead[1]))
