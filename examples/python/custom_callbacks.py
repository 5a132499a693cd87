"""Custom callbacks: every outcome of a task, tagged with its worker_id, and
the results saved in on_exit, which runs once at the end whatever happens.

    mpirun -n 3 python3 examples/python/custom_callbacks.py [OUT.json]
"""
import json
import sys

from gpudispatch import BaseWorker, Dispatcher


class Squarer(BaseWorker):
    def process(self, task):
        if task % 7 == 3:
            raise ValueError("%d is unlucky" % task)
        return task * task


results, errors = {}, {}
out = sys.argv[1] if len(sys.argv) > 1 else "squares.json"


def on_success(task_id, result, worker_id):
    results[task_id] = result


def on_error(task_id, error, worker_id):
    errors[task_id] = "worker %d: %s" % (worker_id, error.splitlines()[0])


def on_timeout(task_id, worker_id):
    errors[task_id] = "worker %d: timed out" % worker_id


def on_setup_fail(worker_id, error):
    print("worker %d could not start: %s" % (worker_id, error))


def on_exit():
    with open(out, "w") as f:
        json.dump({"results": results, "errors": errors}, f)
    print("saved %d results and %d errors to %s" % (len(results), len(errors), out))


if __name__ == "__main__":
    Dispatcher(Squarer, queue_size=16).run(
        generator=iter(range(50)), on_success=on_success, on_error=on_error,
        on_timeout=on_timeout, on_setup_fail=on_setup_fail, on_exit=on_exit,
        task_timeout=10)
