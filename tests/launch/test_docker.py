"""docker/ as files, with no engine: the compose file's services and their commands (read by
sweep's own parser), the password's route, and that the image installs the package the way
the Makefile does. tests/launch/test_docker_stack.py builds and runs it all for real."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from sweep import defaults
from sweep.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}")  # ${X}, ${X:-default}, ${X:?msg}
SECRET = "/run/secrets/db_password"


def _interpolate(value, env: dict):
    """Compose's variable substitution, enough for these files."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    return value


def _compose(name: str = "compose.yaml", **env) -> dict:
    return _interpolate(yaml.safe_load((DOCKER / name).read_text()), env)


@pytest.fixture(scope="module")
def compose() -> dict:
    return _compose(STUDY="conv_width", WORKERS="2")


def test_compose_names_postgres_dashboard_and_workers(compose):
    assert set(compose["services"]) == {"postgres", "dashboard", "worker"}
    assert compose["services"]["postgres"]["image"] == "postgres:16"
    local = _compose(POSTGRES_IMAGE="sweep-postgres:bookworm")["services"]["postgres"]
    assert local["image"] == "sweep-postgres:bookworm"  # docker/local-images.sh's
    assert "build" not in local  # a missing postgres:16 is pulled, never built from ours
    for name in ("dashboard", "worker"):
        service = compose["services"][name]
        assert service["image"] == "sweep:latest"
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_password_reaches_every_service_as_a_secret_file_only(compose):
    raw = (DOCKER / "compose.yaml").read_text()
    assert compose["secrets"] == {"db_password": {"file": "db_password"}}  # docker/db_password
    moved = _compose(SWEEP_DB_PASSWORD_FILE="/srv/pw")["secrets"]["db_password"]
    assert moved == {"file": "/srv/pw"}
    assert "docker/db_password" in (ROOT / ".gitignore").read_text().splitlines()
    for name in ("dashboard", "worker"):
        service = compose["services"][name]
        assert service["secrets"] == ["db_password"]
        assert service["environment"] == {
            defaults.STORAGE_ENV: "postgresql+psycopg://sweep@postgres:5432/sweeps",
            defaults.PASSWORD_FILE_ENV: SECRET}
    postgres = compose["services"]["postgres"]
    assert postgres["secrets"] == ["db_password"]
    assert postgres["environment"] == {"POSTGRES_USER": "sweep", "POSTGRES_DB": "sweeps",
                                       "POSTGRES_PASSWORD_FILE": SECRET}
    assert "PGPASSWORD" not in raw and "POSTGRES_PASSWORD:" not in raw


def test_debians_postgres_takes_the_settings_the_postgres_image_takes(compose):
    entrypoint = (DOCKER / "postgres" / "entrypoint.sh").read_text()
    for variable in compose["services"]["postgres"]["environment"]:
        assert f"${variable}" in entrypoint or f"${{{variable}" in entrypoint
    dockerfile = (DOCKER / "postgres" / "Dockerfile").read_text()
    (volume,) = compose["services"]["postgres"]["volumes"]
    assert f"PGDATA={volume.split(':')[1]}" in dockerfile
    assert compose["services"]["postgres"]["healthcheck"]["test"][1] == "pg_isready"


def test_workers_run_sweep_worker_and_gpu_yaml_gives_each_a_gpu(compose):
    worker = compose["services"]["worker"]
    assert worker["deploy"] == {"replicas": "2"}  # $WORKERS
    assert "resources" not in worker["deploy"]  # runs on any machine; GPUs: docker/gpu.yaml
    args = _parser().parse_args(worker["command"])  # the image's entrypoint is `sweep`
    assert args.command.__name__ == "worker" and args.study == "conv_width"
    assert str(args.checkpoint_dir) == "/checkpoints"
    assert "checkpoints:/checkpoints" in worker["volumes"]
    gpu = _compose("gpu.yaml")["services"]["worker"]["deploy"]["resources"]["reservations"]
    (device,) = gpu["devices"]
    assert device == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}


def test_dashboard_reads_the_artifact_volume_the_workers_write(compose):
    # before: the workers' pictures stayed in their containers; trial pages showed none
    dashboard, worker = compose["services"]["dashboard"], compose["services"]["worker"]
    folders = {name: str(_parser().parse_args(s["command"]).artifact_dir)
               for name, s in (("dashboard", dashboard), ("worker", worker))}
    assert folders["dashboard"] == folders["worker"] == "/artifacts"
    for service in (dashboard, worker):
        assert "artifacts:/artifacts" in service["volumes"]
    assert "artifacts" in compose["volumes"]


def test_dashboard_listens_in_its_container_and_on_loopback_only_outside(compose):
    dashboard = compose["services"]["dashboard"]
    args = _parser().parse_args(dashboard["command"])
    assert args.command.__name__ == "dashboard" and args.host == "0.0.0.0"
    assert args.allow_remote  # the container's interfaces; the host publishes loopback only
    assert dashboard["ports"] == [f"127.0.0.1:{args.port}:{args.port}"]
    moved = _compose(DASHBOARD_PORT="18080")["services"]["dashboard"]["ports"]
    assert moved == [f"127.0.0.1:18080:{args.port}"]


def _dockerfile_lines(path: Path) -> list[str]:
    """Instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _pip_installs(text: str) -> list[list[str]]:
    """What each ``pip install`` in ``text`` installs: its arguments less output flags and
    where its output goes (the Makefile logs it, shown when the install fails)."""
    installs = []
    for command in re.split(r"&&|\n", text):
        words = shlex.split(re.split(r"\s>\s", command)[0])
        pip = [i for i, w in enumerate(words) if w in ("pip", "$(BIN)/pip")]
        if pip and words[pip[0] + 1:pip[0] + 2] == ["install"]:
            words = words[pip[0] + 2:]
            installs.append([w for w in words if w not in ("--quiet", "-q")])
    return installs


def test_image_installs_the_package_as_the_makefile_does():
    lines = _dockerfile_lines(DOCKER / "Dockerfile")
    assert "ARG BASE=tensorflow/tensorflow:2.21.0-gpu" in lines and "FROM ${BASE}" in lines
    deps, package = [line for line in lines if "pip install" in line]
    makefile = (ROOT / "Makefile").read_text()
    recipes = "\n".join(re.findall(r"^\t(\$\(BIN\)/pip install .*)$", makefile, re.M)[:2])
    assert _pip_installs(deps) == _pip_installs(recipes) == [["--upgrade", "pip"], ["-e", "."]]
    assert _pip_installs(package) == [["-e", "."]]  # again with the code: the layer after
    copied = [line.split()[1] for line in lines if line.startswith("COPY")]
    assert copied == ["pyproject.toml", "README.md", "sweep", "studies"]  # what `-e .` needs


def test_the_build_gets_the_ca_bundle_and_pip_conf_as_secrets_and_nothing_else():
    lines = _dockerfile_lines(DOCKER / "Dockerfile")
    for install in [line for line in lines if "pip install" in line]:
        mounts = dict(re.findall(r"--mount=type=secret,id=([\w.-]+),target=(\S+)", install))
        assert mounts == {"ca-bundle": "/etc/ssl/certs/ca-certificates.crt",
                          "pip.conf": "/etc/pip.conf"}, install
        assert "--mount=type=cache,target=/root/.cache/pip" in install  # kept, not in layers
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") + 1:ignore.index("**/__pycache__")] == [
        "!pyproject.toml", "!README.md", "!sweep/", "!studies/"]  # not .venv, not db_password
    script = (DOCKER / "local-images.sh").read_text()
    assert 'secrets+=(--secret "id=ca-bundle,src=$CA_BUNDLE")' in script
    assert 'secrets+=(--secret "id=pip.conf,src=$PIP_CONF")' in script
