"""One suite over every scheduler of ``sweep.launch.submit.SCHEDULERS`` (the contract of
``launch/_base.Scheduler``): what ``render`` writes never holds the storage password, and
rendering changes nothing on disk or in the environment."""

from __future__ import annotations

import os

import pytest

from sweep.launch._base import Scheduler
from sweep.launch.submit import SCHEDULERS

from conftest import SUBMIT_PASSWORD


def _snapshot(root) -> dict:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_render_keeps_the_password_out_and_writes_nothing(name, cluster_job, tmp_path):
    scheduler = SCHEDULERS[name]
    assert isinstance(scheduler, Scheduler)
    job = cluster_job(name, schedule="0 2 * * *")
    before, environ = _snapshot(tmp_path), dict(os.environ)
    files = scheduler.render(job)
    assert files and all(isinstance(text, str) and text for text in files.values())
    for file_name, text in files.items():
        assert SUBMIT_PASSWORD not in text, file_name
    assert scheduler.render(job) == files  # pure: the same job, the same files
    assert _snapshot(tmp_path) == before and dict(os.environ) == environ
    # the password is written only where render_secrets puts it, if anywhere
    secrets = scheduler.render_secrets(job)
    assert not set(secrets) & set(files)
    assert all(SUBMIT_PASSWORD in text for text in secrets.values())
