"""Class names: the words a report's heatmaps, confusion matrices and PCA pictures label the
classes with, in the order of the labels (class 0 first).

The fixed datasets' names are their publishers' (CIFAR's ``batches.meta`` / ``meta`` files,
Fashion-MNIST's README); a folder dataset's are its class folders, sorted as the loader
numbers them; an npz file may carry a ``class_names`` array. Anything else is numbered.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sweep._lazy import resolve
from sweep.study.plugins import DATASETS

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
CIFAR100_FINE = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm")
CIFAR100_COARSE = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2")
FASHION_MNIST = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot")
DIGITS = tuple("0123456789")


def folder_classes(root: Path, split: str = "train") -> list[str]:
    """The class folders of ``root/train`` (or another split), sorted: class k is the k-th
    (the folder loader's numbering). Hidden folders (``.ipynb_checkpoints``) are no class."""
    return sorted(p.name for p in (Path(root) / split).iterdir()
                  if p.is_dir() and not p.name.startswith("."))


def declared_names(cfg: dict) -> tuple[str, ...]:
    """The class names the dataset in ``cfg`` declares, all of them (see the module
    docstring); () for an npz file without a ``class_names`` array."""
    name = cfg["name"]
    names: Sequence[str]
    if name == "cifar100":
        names = CIFAR100_COARSE if cfg["label_mode"] == "coarse" else CIFAR100_FINE
    elif name == "folder":
        names = folder_classes(Path(cfg["path"]))
    elif name == "npz":
        with np.load(cfg["path"], allow_pickle=False) as f:
            names = [str(n) for n in f["class_names"]] if "class_names" in f else ()
    else:
        dotted = DATASETS[name].names
        names = resolve(dotted) if dotted else ()
    return tuple(names)


def class_names(cfg: dict, num_classes: int) -> tuple[str, ...]:
    """The names of the ``num_classes`` classes of the dataset in ``cfg``; the class numbers
    where a dataset has no names."""
    names = declared_names(cfg)[:num_classes]
    return names + tuple(str(i) for i in range(len(names), num_classes))
