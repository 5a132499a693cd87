"""No UI: nothing drawn or printed by the library; the statistics come back.

    mpirun -n 3 python3 examples/python/no_ui.py
"""
from gpudispatch import BaseWorker, Dispatcher


class Adder(BaseWorker):
    def setup(self, offset):
        self.offset = offset  # any picklable keyword argument of run()

    def process(self, task):
        return task + self.offset


if __name__ == "__main__":
    total = [0]
    stats = Dispatcher(Adder, show_ui=False).run(
        generator=range(1000), on_success=lambda t, r, w: total.__setitem__(0, total[0] + r),
        offset=1)
    if total[0]:
        print("sum %d (expected %d); %d tasks on %d workers: %s" % (
            total[0], sum(range(1, 1001)), stats["completed"], stats["n_workers"],
            [w["completed"] for w in stats["gpu_status"]]))
