"""The notebook API: ``sweep.load_results`` and ``sweep.plot_grouped``, and a light import."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import sweep
from sweep.report import StudyResult, grouped_figure, load_study_result


def test_importing_sweep_loads_no_framework():
    code = ("import sys, sweep; heavy = [m for m in ('optuna', 'plotly', 'keras', 'tensorflow', "
            "'pandas') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_load_results_is_the_frame_the_report_draws(swept):
    _, _, url = swept
    frame = sweep.load_results("tiny", url)
    assert isinstance(frame, pd.DataFrame)
    result = sweep.load_study_result("tiny", url)  # every frame, under its own name
    assert isinstance(result, StudyResult)
    pd.testing.assert_frame_equal(frame, result.snapshots)
    pd.testing.assert_frame_equal(frame, load_study_result("tiny", url).snapshots)
    fig = sweep.plot_grouped(frame, by="model.pooling")
    assert fig.to_json() == grouped_figure(frame, "model.pooling").to_json()
    assert {trace.name for trace in fig.data} == {"max", "avg"} and len(fig.data) == 6
