"""Stage 3, the models: a trial's ``model`` config analysed as plain data (``architecture``),
built with Keras (``build``), or a KerasTuner hypermodel's ``build(hp)`` (``hypermodel``);
``describe`` prints them before any training.

Importing this package imports no Keras: the functions that need it import it when called.
"""

from sweep.models.architecture import Architecture, LayerSpec, plan
from sweep.models.build import build_model
from sweep.models.hypermodel import complete_spec

__all__ = ["Architecture", "LayerSpec", "build_model", "complete_spec", "plan"]
