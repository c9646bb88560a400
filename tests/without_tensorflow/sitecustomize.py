"""This folder on PYTHONPATH makes a Python without TensorFlow, as on the GPU machines lent to
this project (JAX and PyTorch only): ``import tensorflow`` fails, and ``find_spec`` finds
nothing, as if it were not installed, in the test process and in every worker it starts.
``make test-backends`` runs the suite so, which finds what still needs TensorFlow under
another backend."""

import sys
from importlib.machinery import PathFinder


class _PathFinderWithoutTensorFlow:
    """The standard path finder, blind to ``tensorflow`` and its submodules."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return None
        return PathFinder.find_spec(name, path, target)

    @staticmethod
    def find_distributions(*args, **kwargs):  # importlib.metadata: no tensorflow either
        context = args[0] if args else kwargs.get("context")
        if context is not None and (context.name or "").lower() == "tensorflow":
            return iter(())
        return PathFinder.find_distributions(*args, **kwargs)

    @staticmethod
    def invalidate_caches():
        PathFinder.invalidate_caches()


sys.meta_path[:] = [_PathFinderWithoutTensorFlow if finder is PathFinder else finder
                    for finder in sys.meta_path]
