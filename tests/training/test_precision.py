"""A 16-bit precision that this CPU would emulate is said before it costs: in ``describe`` and
once per worker process in ``run``. The CPU's flags are the one thing faked here (a CPU with
or without bfloat16 units cannot be chosen on this machine)."""

from __future__ import annotations

import pytest

from sweep.cli import main
from sweep.training import device

from conftest import tiny_study, write_study

NO_16BIT = frozenset({"fpu", "sse2", "avx2"})  # Zen 2's kind: no AVX-512, no AMX


@pytest.fixture
def flags(monkeypatch):
    def use(found: frozenset) -> None:
        monkeypatch.setattr(device, "cpu_flags", lambda: found)
    return use


def test_only_a_16_bit_policy_without_its_units_on_a_cpu_is_slow(flags):
    flags(NO_16BIT)
    assert device.precision_warning("float32") is None
    slow = device.precision_warning("mixed_bfloat16")
    assert "mixed_bfloat16" in slow and "avx512_bf16" in slow and "emulated" in slow
    flags(NO_16BIT | {"avx512_bf16"})
    assert device.precision_warning("mixed_bfloat16") is None
    assert device.precision_warning("mixed_float16") is not None  # bfloat16 units only
    flags(None)  # no /proc/cpuinfo flags to go by: nothing said
    assert device.precision_warning("mixed_float16") is None


def test_describe_warns_of_each_emulated_precision_of_the_search(tmp_path, tiny_npz, flags,
                                                                   capsys):
    flags(NO_16BIT)
    raw = tiny_study(tiny_npz, search={"params": {
        "training.precision": ["float32", "mixed_bfloat16", "mixed_float16"]}})
    assert main(["describe", str(write_study(tmp_path, raw))]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines()
                if line.startswith("WARNING: training.precision")]
    assert [w.split()[2] for w in warnings] == ["mixed_bfloat16", "mixed_float16"]


@pytest.mark.slow
def test_a_run_warns_once_per_process(tmp_path, tiny_npz, flags, monkeypatch, capsys):
    flags(NO_16BIT)
    monkeypatch.chdir(tmp_path)
    raw = tiny_study(tiny_npz, search={"params": {"training.learning_rate": [0.01, 0.02]}})
    raw["training"] |= {"precision": "mixed_bfloat16", "epochs": 1, "snapshots": [1]}
    path = write_study(tmp_path, raw)
    assert main(["run", str(path), "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("[tiny] warning: training.precision mixed_bfloat16 on a CPU") == 1
