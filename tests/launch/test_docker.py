"""docker/: no Docker engine runs here, so what can be checked without one: the compose
file's services and their commands (read by sweep's own parser), and that the image installs
the package the way the Makefile does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from sweep.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}")  # ${X}, ${X:-default}, ${X:?msg}


def _interpolate(value, env: dict):
    """Compose's variable substitution, enough for this file."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict:
    raw = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    return _interpolate(raw, {"PGPASSWORD": "pw-from-env", "STUDY": "conv_width"})


def test_compose_names_postgres_dashboard_and_workers(compose):
    assert set(compose["services"]) == {"postgres", "dashboard", "worker"}
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    for name in ("dashboard", "worker"):
        service = compose["services"][name]
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_storage_comes_from_the_environment_without_the_password(compose):
    raw = (ROOT / "docker" / "compose.yaml").read_text()
    for name in ("dashboard", "worker"):
        env = compose["services"][name]["environment"]
        assert env["SWEEP_STORAGE"] == "postgresql+psycopg://sweep@postgres:5432/sweeps"
        assert env["PGPASSWORD"] == "pw-from-env"
    postgres = compose["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == "pw-from-env"
    assert "pw-from-env" not in raw and ":?" in raw  # required, and taken from the shell


def test_workers_reserve_a_gpu_and_run_sweep_worker(compose):
    worker = compose["services"]["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == 1
    args = _parser().parse_args(worker["command"])  # the image's entrypoint is `sweep`
    assert args.command.__name__ == "_worker" and args.study == "conv_width"
    assert str(args.checkpoint_dir) == "/checkpoints"
    assert "checkpoints:/checkpoints" in worker["volumes"]


def test_dashboard_reads_the_artifact_volume_the_workers_write(compose):
    # before: the workers' pictures stayed in their containers; trial pages showed none
    dashboard, worker = compose["services"]["dashboard"], compose["services"]["worker"]
    folders = {name: str(_parser().parse_args(s["command"]).artifact_dir)
               for name, s in (("dashboard", dashboard), ("worker", worker))}
    assert folders["dashboard"] == folders["worker"] == "/artifacts"
    for service in (dashboard, worker):
        assert "artifacts:/artifacts" in service["volumes"]
    assert "artifacts" in compose["volumes"]


def test_dashboard_listens_on_every_interface(compose):
    dashboard = compose["services"]["dashboard"]
    args = _parser().parse_args(dashboard["command"])
    assert args.command.__name__ == "_dashboard" and args.host == "0.0.0.0"
    assert dashboard["ports"] == [f"127.0.0.1:{args.port}:{args.port}"]


def _pip_install(line: str) -> list[str]:
    """What a ``pip install`` line installs: its arguments less output and cache flags."""
    words = shlex.split(line)
    words = words[words.index("install") + 1:]
    return [w for w in words if w not in ("--quiet", "-q", "--no-cache-dir")]


def test_image_installs_the_package_as_the_makefile_does():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text().splitlines()
    assert "FROM tensorflow/tensorflow:2.21.0-gpu" in dockerfile
    (docker_line,) = [line for line in dockerfile if "pip install" in line]
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^\$\(STAMP\):.*\n\t(.*pip install.*)$", makefile, re.M).group(1)
    assert _pip_install(docker_line) == _pip_install(recipe) == ["-e", "."]
    copied = {line.split()[1] for line in dockerfile if line.startswith("COPY")}
    assert {"sweep", "studies", "pyproject.toml"} <= copied  # what `-e .` needs
