"""docker/ for real (`make test-docker`): the images built on a local Debian base
(docker/local-images.sh, as on a machine that reaches no registry), docker/compose.yaml up with
PostgreSQL, the dashboard and 2 workers on the quickstart study (digits, 6 points), checked
from this machine with stock Optuna and HTTP, then taken down. Needs root, Debian's docker.io,
debootstrap and docker-compose (the Makefile installs them); a dockerd is started if none
runs (tests/launch/docker/start.sh) and stopped again."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "docker"
DOCKER = "/usr/bin/docker"  # Debian's client: BuildKit without buildx, like its engine
PROJECT = "sweep-test"  # not the user's `sweep` project
STUDY, POINTS = "quickstart", 6
IMAGES = {"SWEEP_IMAGE": "sweep:test", "POSTGRES_IMAGE": "sweep-postgres:bookworm",
          "SWEEP_BASE_IMAGE": "sweep-base:bookworm"}
BUILD_S = 780  # a first build: debootstrap, Debian's postgresql, pip installing TensorFlow
TRAIN_S = 600
PIP_CONF = Path("/etc/pip.conf")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _docker(*args: str, timeout: float = 120) -> str:
    proc = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A Docker engine: the one running, or a dockerd started here and stopped at the end."""
    missing = [name for name in ("dockerd", "debootstrap", "docker-compose")
               if shutil.which(name) is None] + ([] if Path(DOCKER).exists() else [DOCKER])
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: `make test-docker` installs docker.io, "
                    "debootstrap and docker-compose")
    if os.geteuid() != 0:
        pytest.skip("dockerd and debootstrap need root")
    env = os.environ | {"SWEEP_DOCKER_DIR": "/tmp/sweep-docker-test", "DOCKER": DOCKER}
    subprocess.run(["bash", SCRIPTS / "start.sh"], env=env, check=True, timeout=120)
    yield
    subprocess.run(["bash", SCRIPTS / "stop.sh"], env=env, timeout=120)


@pytest.fixture(scope="module")
def password_file(tmp_path_factory) -> Path:
    """The database password, in a file only root reads (as docker/db_password should be)."""
    path = tmp_path_factory.mktemp("secret") / "db_password"
    path.touch(mode=0o600)
    path.write_text(secrets.token_urlsafe(18) + "\n")
    return path


@pytest.fixture(scope="module")
def images(engine, password_file):
    start = time.monotonic()
    proc = subprocess.run(["bash", ROOT / "docker" / "local-images.sh"], cwd=ROOT,
                          env=os.environ | IMAGES | {"DOCKER": DOCKER},
                          capture_output=True, text=True, timeout=BUILD_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout, end="")
    size = int(_docker("image", "inspect", "-f", "{{.Size}}", IMAGES["SWEEP_IMAGE"]))
    print(f"images ready in {time.monotonic() - start:.0f} s; "
          f"{IMAGES['SWEEP_IMAGE']}: {size / 1e9:.2f} GB")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """The compose project: its command line, its containers, the host's view of it."""

    def __init__(self, password_file: Path):
        self.password_file = password_file
        self.port = _free_port()
        self.env = os.environ | IMAGES | {
            "COMPOSE_PROJECT_NAME": PROJECT, "SWEEP_DB_PASSWORD_FILE": str(password_file),
            "STUDY": STUDY, "WORKERS": "2", "DASHBOARD_PORT": str(self.port)}

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["docker-compose", "-f", "docker/compose.yaml", *args],
                              cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def containers(self, service: str | None = None) -> list[str]:
        labels = [f"label=com.docker.compose.project={PROJECT}"]
        if service:
            labels.append(f"label=com.docker.compose.service={service}")
        args = [arg for label in labels for arg in ("--filter", label)]
        return _docker("ps", "-aq", *args).split()

    def storage_url(self) -> str:
        """PostgreSQL as this machine reaches it: the container's address on its network."""
        (postgres,) = self.containers("postgres")
        address = _docker("inspect", "-f", "{{range .NetworkSettings.Networks}}"
                          "{{.IPAddress}}{{end}}", postgres).strip()
        password = self.password_file.read_text().strip()
        return sa.engine.URL.create("postgresql+psycopg", username="sweep", password=password,
                                    host=address, port=5432, database="sweeps"
                                    ).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def layer_scan(images, password_file):
    """The images' layers read for the password and the build's files (`_layer_files`), in
    a thread while the stack runs: `docker save` of 3 GB takes a minute or more."""
    password = password_file.read_text().strip().encode()
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(_layer_files, [IMAGES["SWEEP_IMAGE"], IMAGES["POSTGRES_IMAGE"]],
                          password)


@pytest.fixture(scope="module")
def stack(images, password_file, layer_scan):  # layer_scan: started before the stack
    """The stack up; its workers finished, the report's figures saved into the study."""
    stack = Stack(password_file)
    try:
        up = stack.compose("up", "-d", "--no-build")
        assert up.returncode == 0, up.stderr
        _wait_for_workers(stack)
        report = stack.compose("run", "--rm", "worker", "report", STUDY)
        assert report.returncode == 0, report.stdout + report.stderr
        yield stack
    finally:
        stack.compose("down", "--volumes")


def _wait_for_workers(stack: Stack) -> None:
    start = time.monotonic()
    deadline = start + TRAIN_S
    while time.monotonic() < deadline:
        workers = stack.containers("worker")
        states = _docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}",
                         *workers).splitlines() if workers else []
        if len(states) == 2 and all(s.startswith("exited") for s in states):
            assert states == ["exited 0", "exited 0"], stack.compose("logs").stdout[-4000:]
            print(f"2 workers trained {POINTS} points in {time.monotonic() - start:.0f} s")
            return
        time.sleep(3)
    raise AssertionError(f"workers not done after {TRAIN_S} s:\n"
                         + stack.compose("logs", "--tail", "20").stdout)


def test_two_workers_complete_every_point_exactly_once(stack):
    trials = optuna.load_study(study_name=STUDY, storage=stack.storage_url()).trials
    assert len(trials) == POINTS
    assert len(Counter(json.dumps(t.params, sort_keys=True) for t in trials)) == POINTS
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    logs = stack.compose("logs", "--no-color", "worker").stdout
    trained = {int(n) for n in re.findall(r"\[quickstart\] trial (\d+) \(", logs)}
    assert trained == {t.number for t in trials}  # the workers' own words say the same


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_dashboard_on_loopback_lists_the_study_its_figures_and_pictures(stack):
    (dashboard,) = stack.containers("dashboard")
    bindings = json.loads(_docker("inspect", "-f", "{{json .HostConfig.PortBindings}}",
                                  dashboard))
    assert bindings == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(stack.port)}]}
    base = f"http://127.0.0.1:{stack.port}"
    summaries = json.loads(_get(f"{base}/api/studies"))["study_summaries"]
    (summary,) = [s for s in summaries if s["study_name"] == STUDY]
    study = json.loads(_get(f"{base}/api/studies/{summary['study_id']}"))
    assert [t["state"] for t in study["trials"]] == ["Complete"] * POINTS
    figures = [g["id"] for g in study["plotly_graph_objects"]]
    assert figures and all(f.startswith("sweep-") for f in figures)  # saved by `sweep report`
    trial = study["trials"][0]
    pictures = {a["filename"]: a for a in trial["artifacts"]}
    assert {"filters-epoch5.png", "pca-epoch10.png"} <= set(pictures), pictures
    picture = pictures["filters-epoch5.png"]
    png = _get(f"{base}/artifacts/{summary['study_id']}/{trial['trial_id']}/"
               f"{picture['artifact_id']}")
    assert png.startswith(b"\x89PNG")
    for address in _other_addresses():  # this machine's other interfaces: nothing listens
        with pytest.raises(OSError):
            socket.create_connection((address, stack.port), timeout=3).close()


def _other_addresses() -> list[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    found = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out)
    assert found, out
    return [a for a in found if not a.startswith("127.")]


def test_the_password_is_in_no_inspect_output_log_or_layer(stack, password_file, layer_scan):
    password = password_file.read_text().strip()
    images = [IMAGES["SWEEP_IMAGE"], IMAGES["POSTGRES_IMAGE"]]
    inspected = _docker("inspect", *stack.containers(), *images)
    assert "SWEEP_STORAGE_PASSWORD_FILE" in inspected and password not in inspected
    for service in ("postgres", "dashboard"):  # still running: their processes' arguments
        (container,) = stack.containers(service)
        arguments = _docker("top", container, "-eo", "pid,args")
        assert service in arguments and password not in arguments
    logs = stack.compose("logs", "--no-color")
    assert "6 points" in logs.stdout and password not in logs.stdout + logs.stderr
    layers = layer_scan.result(timeout=600)
    assert not layers["password"], layers["password"]
    # The build's CA bundle and pip configuration reached pip only, in no layer.
    assert layers["pip.conf"] <= {0}, "etc/pip.conf is in a layer"
    assert not layers["host files"], layers["host files"]
    assert password not in _docker("history", "--no-trunc", IMAGES["SWEEP_IMAGE"])


def _layer_files(images: list[str], password: bytes) -> dict:
    """What `docker save` of ``images`` holds: the files holding ``password``, the sizes of
    any etc/pip.conf, and files equal to this machine's pip.conf or (where it is not the
    base image's own) its CA bundle."""
    host_files = {PIP_CONF.read_bytes()} if PIP_CONF.is_file() else set()
    base_bundle = _docker("run", "--rm", "--entrypoint", "cat", IMAGES["SWEEP_BASE_IMAGE"],
                          str(CA_BUNDLE))
    if CA_BUNDLE.is_file() and CA_BUNDLE.read_text() != base_bundle:
        host_files.add(CA_BUNDLE.read_bytes())
    sizes = {len(content) for content in host_files}
    found = {"password": [], "pip.conf": set(), "host files": []}
    save = subprocess.Popen([DOCKER, "save", *images], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
        for layer in archive:
            if not layer.name.endswith("layer.tar"):
                continue
            with tarfile.open(fileobj=archive.extractfile(layer), mode="r|") as files:
                for member in files:
                    if not member.isfile():
                        continue
                    name = member.name.removeprefix("./")
                    stream = files.extractfile(member)
                    if member.size in sizes:
                        content = stream.read()
                        if content in host_files:
                            found["host files"].append(name)
                        holds = password in content
                    else:
                        holds = _holds(stream, password)
                    if holds:
                        found["password"].append(name)
                    if name == "etc/pip.conf":
                        found["pip.conf"].add(member.size)
    assert save.wait(timeout=600) == 0
    return found


def _holds(stream, needle: bytes, chunk: int = 1 << 24) -> bool:
    """Whether a file (read a chunk at a time: TensorFlow's libraries are large) holds needle."""
    tail = b""
    while block := stream.read(chunk):
        if needle in tail + block[:len(needle)] or needle in block:
            return True
        tail = block[-len(needle):]
    return False


def test_down_leaves_no_container_and_no_volume(stack):
    assert len(stack.containers()) == 4  # postgres, dashboard, 2 workers (the report's: --rm)
    down = stack.compose("down", "--volumes")
    assert down.returncode == 0, down.stderr
    assert stack.containers() == []
    volumes = _docker("volume", "ls", "-q", "--filter",
                      f"label=com.docker.compose.project={PROJECT}")
    assert volumes.split() == []
