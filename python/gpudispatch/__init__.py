"""gpudispatch: write persistent workers for `gpudispatch run --worker-cmd` in Python.

    from gpudispatch import BaseWorker, serve
    class Model(BaseWorker):
        def setup(self, model_path): ...
        def process(self, task): return {"label": ...}
    if __name__ == "__main__":
        serve(Model)

See docs/protocol.md (protocol 2) for the wire format.
"""

from ._frames import ProtocolError
from .worker import GPU, BaseWorker, run_local, serve

__version__ = "0.1.0"
__all__ = ["BaseWorker", "GPU", "ProtocolError", "run_local", "serve", "__version__"]
