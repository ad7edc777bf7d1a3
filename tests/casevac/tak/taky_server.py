"""taky (a TAK server from PyPI) in a virtual environment of its own (its Flask 2 pin clashes with ours),
started on a free port: the real TAK server of the gateway's end-to-end test and benchmark.

    python -m tests.casevac.tak.taky_server install   # what .ci/run does on a clean machine
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

TAKY_VERSION = "0.10"
VENV = Path(os.environ.get("TAKY_VENV") or Path.home() / ".cache" / "medevac-tests" / f"taky-{TAKY_VERSION}")


def binary() -> Path:
    return VENV / "bin" / "taky"


def install() -> Path:
    """Create the venv and install taky (idempotent); raises CalledProcessError when PyPI is unreachable."""
    if binary().exists():
        return binary()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", f"taky=={TAKY_VERSION}"], check=True,
                   timeout=900)
    return binary()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Taky:
    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.config = workdir / "taky.conf"
        self.config.write_text(
            "[taky]\nhostname = localhost\nnode_id = MEDEVAC-TEST\nbind_ip = 127.0.0.1\n"
            f"root_dir = {workdir}\n\n[cot_server]\nport = {self.port}\nmax_persist_ttl = -1\n\n"
            f"[dp_server]\nupload_path = {workdir / 'dp'}\n\n[ssl]\nenabled = false\n")

    def start(self, timeout: float = 30) -> "Taky":
        self.log = open(self.workdir / f"taky-{self.port}.log", "ab")
        self.process = subprocess.Popen([str(binary()), "-c", str(self.config), "-l", "info"], cwd=self.workdir,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"taky exited: {(self.workdir / f'taky-{self.port}.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("taky did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(install())
    else:
        sys.exit("usage: python -m tests.casevac.tak.taky_server install")
