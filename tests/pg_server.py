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


@contextlib.contextmanager
def throwaway_postgres(password: str, bin_dir: Path | None = None):
    """Start a server with a database ``sweeps`` owned by user ``sweep`` (``password``);
    yields its URL without the password; stops it and removes its files after."""
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
    data, port = root / "data", _free_port()
    try:
        subprocess.run([*as_pg, bin_dir / "initdb", "-D", data, "-U", "sweep", "--pwfile",
                        pwfile, "--auth=scram-sha-256"], check=True, capture_output=True)
        subprocess.run([*as_pg, bin_dir / "pg_ctl", "-D", data, "-w", "-l", root / "log", "-o",
                        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True)
        env = os.environ | {"PGPASSWORD": password}
        subprocess.run([bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U",
                        "sweep", "sweeps"], check=True, env=env, capture_output=True)
        yield f"postgresql+psycopg://sweep@127.0.0.1:{port}/sweeps"
    finally:
        subprocess.run([*as_pg, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
