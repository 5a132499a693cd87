"""gpudispatch: persistent worker programs for the `gpudispatch` command.

    from gpudispatch import BaseWorker, serve

    class Model(BaseWorker):
        def setup(self, model_path):          # once; keyword args from --setup-arg
            self.net = load(model_path, seed=self.seed)
        def process(self, task):              # task: the line (str); any JSON value back
            return {"label": self.net(task)}
        def cleanup(self):                    # once at the end
            pass

    if __name__ == "__main__":
        serve(Model)

Run it with `gpudispatch run --tasks t.txt --worker-cmd "python3 model.py"`.

Or drive the run from Python itself, over the C library (ctypes, no
compiler needed), under `mpirun -n N python3 app.py`:

    from gpudispatch import BaseWorker, Dispatcher

    stats = Dispatcher(Model, queue_size=512).run(
        generator=(x for x in items()), on_success=on_success,
        on_exit=save, base_seed=42, task_timeout=600, model_path="m.pth")

There process() takes and returns any picklable object.
"""
from .dispatcher import DispatchError, Dispatcher
from .worker import BaseWorker, Gpu, run_local, serve

__version__ = "0.1.0"
__all__ = ["BaseWorker", "Dispatcher", "DispatchError", "Gpu", "serve", "run_local",
           "__version__"]
