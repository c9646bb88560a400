"""Stage 2, the data: a study's ``dataset`` section as normalised numpy arrays."""

from sweep.data.dataset import Dataset, input_spec, load_dataset
from sweep.data.loaders import DATASETS

__all__ = ["DATASETS", "Dataset", "input_spec", "load_dataset"]
