"""A throwaway PostgreSQL server of Debian's packages (``make postgres-server`` installs them),
for the tests (``conftest.postgres``) and the benchmarks (``benchmarks/bench_claims.py``).

It runs as the postgres user when we are root, on a free loopback port, with password
authentication; its folder is outside pytest's (root-only) temporary tree so that user can
enter it. The password goes to ``initdb`` in a file and to ``createdb`` in its environment,
never on a command line.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def server_bin_dir() -> Path | None:
    """The newest installed server's ``bin`` folder, or None when none is installed."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(bins[-1]).parent if bins else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running throwaway server: its ``url`` (no password), and ``stop``/``start`` to
    restart it under a test (its port and files stay)."""

    def __init__(self, bin_dir: Path, root: Path, port: int, as_pg: list[str]):
        self.bin_dir, self.root, self.port, self.as_pg = bin_dir, root, port, as_pg
        self.url = f"postgresql+psycopg://sweep@127.0.0.1:{port}/sweeps"

    def start(self) -> None:
        subprocess.run([*self.as_pg, self.bin_dir / "pg_ctl", "-D", self.root / "data", "-w",
                        "-l", self.root / "log", "-o",
                        f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*self.as_pg, self.bin_dir / "pg_ctl", "-D", self.root / "data", "-m",
                        mode, "stop"], capture_output=True)


@contextlib.contextmanager
def throwaway_server(password: str, bin_dir: Path | None = None):
    """Start a server with a database ``sweeps`` owned by user ``sweep`` (``password``);
    yields it (``Server``); stops it and removes its files after."""
    bin_dir = bin_dir or server_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries missing: `make postgres-server`")
    root = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(root, "postgres")
    pwfile = root / "pw"
    pwfile.write_text(password)
    if as_pg:
        shutil.chown(pwfile, "postgres")
    server = Server(bin_dir, root, _free_port(), as_pg)
    try:
        subprocess.run([*as_pg, bin_dir / "initdb", "-D", root / "data", "-U", "sweep",
                        "--pwfile", pwfile, "--auth=scram-sha-256"], check=True,
                       capture_output=True)
        server.start()
        env = os.environ | {"PGPASSWORD": password}
        subprocess.run([bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U",
                        "sweep", "sweeps"], check=True, env=env, capture_output=True)
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres(password: str, bin_dir: Path | None = None):
    """``throwaway_server``'s URL, without its password."""
    with throwaway_server(password, bin_dir) as server:
        yield server.url
