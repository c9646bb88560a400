"""The typed training config: its fields are the study file's training keys, with the
schema's defaults, and a validated study's training section becomes one."""

from __future__ import annotations

from dataclasses import fields

from sweep.study import SCHEMA, TrainingConfig, validate

from conftest import tiny_study


def test_the_fields_are_the_schema_keys_with_their_defaults():
    config = TrainingConfig()
    assert [f.name for f in fields(TrainingConfig)] == list(SCHEMA["training"])
    for name, (_, default) in SCHEMA["training"].items():
        assert getattr(config, name) == default, name


def test_a_validated_section_becomes_a_config(tiny_npz):
    raw = tiny_study(tiny_npz)
    raw["training"] |= {"optimizer": "sgd", "momentum": 0.9, "snapshots": [1, 2],
                        "augment": {"flip": "horizontal"}}
    config = TrainingConfig.from_section(validate(raw, "s.yaml").config["training"])
    assert (config.optimizer, config.momentum, config.snapshots) == ("sgd", 0.9, (1, 2))
    assert config.augment["flip"] == "horizontal" and config.snapshot_epochs == (1, 2)
    assert TrainingConfig(epochs=4).snapshot_epochs == (4,)
