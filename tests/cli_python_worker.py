#!/usr/bin/env python3
"""A worker for tests/cli_python.sh, written with the Python package.  It
prints everywhere it can (stdout before and after answers, unflushed, from
a thread, through fd 1 and from a subprocess) and misbehaves on request:
tasks "raise", "segv", "hang", "nl", "bin", "big"; setup arg fail_on=all|W."""
import ctypes
import os
import subprocess
import sys
import threading
import time

print("module level: before serve()")  # before HELLO: the log, not an answer

from gpudispatch import BaseWorker, serve  # noqa: E402


class Echo(BaseWorker):
    def setup(self, model="none", fail_on=""):
        if fail_on in ("all", str(self.worker_id)):
            raise RuntimeError("cannot load model %s on worker %d" % (model, self.worker_id))
        self.model = model
        print("setup done on worker", self.worker_id, end="")  # unflushed, no newline
        self.chatter = threading.Thread(target=self._chat, daemon=True)
        self.chatter.start()

    def _chat(self):
        while True:
            print("thread says hello")
            time.sleep(0.001)

    def process(self, task):
        print("processing", task)
        os.write(1, b"raw write to fd 1\n")
        if self.task_id % 3 == 0:
            subprocess.run(["echo", "a subprocess on fd 1"], check=True)
        if task == "raise":
            raise ValueError("cannot handle %r" % task)
        if task == "segv":
            ctypes.string_at(0)
        if task == "hang":
            time.sleep(3600)
        if task == "nl":
            return "two\nlines"
        if task == "bin":
            return b"\x00\xff\n"
        if task == "big":
            return "x" * (1 << 20)
        sys.stdout.write("after the answer is made\n")
        return {"task": task, "id": self.task_id, "attempt": self.attempt,
                "worker": self.worker_id, "seed": self.seed, "model": self.model,
                "gpu": self.gpu.index}

    def cleanup(self):
        print("cleanup on worker", self.worker_id)


if __name__ == "__main__":
    serve(Echo)
