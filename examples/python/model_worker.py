"""A gpudispatch protocol 2 worker that loads a (tiny, pure-Python) model once.

    gpudispatch run --tasks examples/python/tasks.txt \
        --worker-cmd "python3 examples/python/model_worker.py" \
        --setup-arg model=examples/python/model.json

print() is only log (worker-W.log with --output-dir): it can never be taken for
an answer, so libraries may print banners freely.
"""

import json
import random
import time

from gpudispatch import BaseWorker, serve


class TinyModel(BaseWorker):
    def setup(self, model, scale="1.0"):
        t0 = time.monotonic()
        with open(model, encoding="utf-8") as f:
            spec = json.load(f)
        self.labels = spec["labels"]
        self.words = spec["words"]
        # "weights": a deterministic random projection made from the worker's seed
        rng = random.Random(self.seed)
        self.bias = [rng.uniform(-0.1, 0.1) * float(scale) for _ in self.labels]
        print("worker %d on gpu %s (%s): loaded %s in %.3f s, seed %d"
              % (self.worker_id, self.gpu.index, self.gpu.bus_id or "no GPU",
                 spec["name"], time.monotonic() - t0, self.seed))

    def process(self, task):
        scores = list(self.bias)
        for word in task.lower().split():
            label = self.words.get(word.strip(".,!?"))
            if label is not None:
                scores[label] += 1.0
        best = max(range(len(scores)), key=scores.__getitem__)
        print("task %d (attempt %d): %s" % (self.task_id, self.attempt, self.labels[best]))
        return {"text": task, "label": self.labels[best],
                "scores": [round(s, 4) for s in scores]}

    def cleanup(self):
        print("worker %d done" % self.worker_id)


if __name__ == "__main__":
    serve(TinyModel)
