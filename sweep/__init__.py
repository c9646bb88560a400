"""sweep: hyperparameter sweeps for small Keras image classifiers."""
