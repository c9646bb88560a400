"""This folder on PYTHONPATH makes a Python without TensorFlow, as on the GPU machines lent to
this project (JAX and PyTorch only): ``import tensorflow`` fails, and ``find_spec`` finds
nothing, as if it were not installed, in the test process and in every worker it starts.
``make test-backends`` runs the suite so, which finds what still needs TensorFlow under
another backend. ``SWEEP_TEST_HIDDEN=jax`` (comma-separated) hides those packages instead,
for a test of what a missing backend says (``tests/run/test_backend_check.py``)."""

import os
import sys
from importlib.machinery import PathFinder

HIDDEN = tuple(os.environ.get("SWEEP_TEST_HIDDEN", "tensorflow").split(","))


class _PathFinderWithoutTensorFlow:
    """The standard path finder, blind to the ``HIDDEN`` packages and their submodules."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            return None
        return PathFinder.find_spec(name, path, target)

    @staticmethod
    def find_distributions(*args, **kwargs):  # importlib.metadata: no such package either
        context = args[0] if args else kwargs.get("context")
        if context is not None and (context.name or "").lower() in HIDDEN:
            return iter(())
        return PathFinder.find_distributions(*args, **kwargs)

    @staticmethod
    def invalidate_caches():
        PathFinder.invalidate_caches()


sys.meta_path[:] = [_PathFinderWithoutTensorFlow if finder is PathFinder else finder
                    for finder in sys.meta_path]
