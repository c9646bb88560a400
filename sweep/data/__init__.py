"""Stage 2, the data: a study's ``dataset`` section as normalised numpy arrays."""

from sweep.data.dataset import Dataset, input_spec, load_dataset, load_raw

__all__ = ["Dataset", "input_spec", "load_dataset", "load_raw"]
