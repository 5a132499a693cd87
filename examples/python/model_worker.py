#!/usr/bin/env python3
"""A persistent gpudispatch worker in Python: load a "model" once, answer
many tasks.  The model is a tiny linear classifier over character n-grams
whose weights come from the seed (pure Python; a real worker loads its
network here, e.g. torch.load(model_path).to(f"cuda:{self.gpu.index}")).

    mpirun -n 4 gpudispatch run --tasks tasks.txt --results results.jsonl \
        --setup-arg model_path=model.json --seed 42 --worker-cmd "python3 model_worker.py"
"""
import json
import random

from gpudispatch import BaseWorker, serve


class TinyModel(BaseWorker):
    def setup(self, model_path, temperature="1.0"):
        # once per worker: read the model file, build the weights
        with open(model_path) as f:
            spec = json.load(f)
        self.labels = spec["labels"]
        rng = random.Random(self.seed)  # --seed + worker id: reproducible per worker
        self.weights = [[rng.uniform(-1, 1) for _ in range(spec["dim"])] for _ in self.labels]
        self.dim = spec["dim"]
        self.temperature = float(temperature)
        # print() is harmless: with protocol 2 standard output is only the log
        print(f"worker {self.worker_id} on GPU {self.gpu.index} loaded {model_path}")

    def features(self, text):
        v = [0.0] * self.dim
        for a, b in zip(text, text[1:]):
            v[(ord(a) * 31 + ord(b)) % self.dim] += 1.0
        return v

    def process(self, task):
        x = self.features(task)
        scores = [sum(w * xi for w, xi in zip(ws, x)) / self.temperature for ws in self.weights]
        best = max(range(len(scores)), key=scores.__getitem__)
        print(f"task {self.task_id}: {task!r} -> {self.labels[best]}")
        return {"label": self.labels[best], "score": round(scores[best], 4)}

    def cleanup(self):
        print(f"worker {self.worker_id} done")


if __name__ == "__main__":
    serve(TinyModel)
