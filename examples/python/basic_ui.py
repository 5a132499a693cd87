"""Basic: a model served on every GPU, the dashboard on the terminal.

    mpirun -n 5 python3 examples/python/basic_ui.py      # 4 workers

Every rank runs this script; rank 0 pulls the generator and runs the
callbacks, the other ranks are the workers (one per GPU).
"""
import random
import time

from gpudispatch import BaseWorker, Dispatcher


class Model(BaseWorker):
    def setup(self, delay):
        # once per worker, on its GPU: load the model here
        self.rng = random.Random(self.seed)  # seed = base_seed + worker_id
        self.delay = float(delay)

    def process(self, task):
        time.sleep(self.delay)  # the model's work
        return {"input": task, "score": self.rng.random(), "gpu": self.gpu.index}


if __name__ == "__main__":
    results = []
    stats = Dispatcher(Model, show_ui=True, refresh_rate=2.0).run(
        generator=(i for i in range(200)),
        on_success=lambda task_id, result, worker_id: results.append(result),
        base_seed=42, task_timeout=60, delay="0.05")
    if results:  # rank 0
        print("%d results, %d completed of %d" % (len(results), stats["completed"],
                                                  stats["total"]))
