"""A KerasTuner hypermodel for the digits (32x32x1 after sweep's upscaling, 10 classes).

Written as for KerasTuner; ``studies/hypermodel.yaml`` sweeps it with Optuna through sweep.
"""

import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential([keras.Input((32, 32, 1))])
    filters = hp.Choice("filters", [8, 16])  # of the first conv layer; doubled in the next
    for i in range(hp.Int("conv_layers", 1, 2)):
        model.add(layers.Conv2D(filters * 2**i, 3, activation="relu"))
        model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    if hp.Boolean("dense_head"):
        units = hp.Int("units", 16, 32, step=16, parent_name="dense_head", parent_values=[True])
        model.add(layers.Dense(units, activation="relu"))
    model.add(layers.Dense(10))  # logits: sweep compiles with training.optimizer/learning_rate
    return model
