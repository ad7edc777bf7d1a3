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
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", f"taky=={TAKY_VERSION}"], check=True, timeout=900)
    return binary()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A CA, a server certificate for 127.0.0.1 and client certificates, made with the cryptography package
# that taky's venv holds (no openssl binary needed on a clean machine).
_CERTS = r"""
import datetime, ipaddress, sys
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

out = Path(sys.argv[1])
now = datetime.datetime.now(datetime.timezone.utc)
def name(cn): return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def save(stem, key, cert):
    (out / f"{stem}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (out / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("medevac test CA")).issuer_name(name("medevac test CA"))
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
save("ca", ca_key, ca)
for stem in sys.argv[2:]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(name(stem)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2)))
    if stem == "server":
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    save(stem, key, builder.sign(ca_key, hashes.SHA256()))
"""


def make_certs(directory: Path, *clients: str) -> Path:
    """ca.pem, server.pem/.key and <client>.pem/.key for each client name, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(VENV / "bin" / "python"), "-c", _CERTS, str(directory), "server", *clients], check=True, timeout=60
    )
    return directory


class Taky:
    def __init__(self, workdir: Path, port: int | None = None, certs: Path | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.config = workdir / "taky.conf"
        ssl_section = "[ssl]\nenabled = false\n"
        if certs is not None:
            ssl_section = (
                f"[ssl]\nenabled = true\nclient_cert_required = true\nca = {certs / 'ca.pem'}\n"
                f"cert = {certs / 'server.pem'}\nkey = {certs / 'server.key'}\n"
                f"cert_db = {certs / 'cert-db.txt'}\n"
            )
        self.config.write_text(
            "[taky]\nhostname = localhost\nnode_id = MEDEVAC-TEST\nbind_ip = 127.0.0.1\n"
            f"root_dir = {workdir}\n\n[cot_server]\nport = {self.port}\nmax_persist_ttl = -1\n\n"
            f"[dp_server]\nupload_path = {workdir / 'dp'}\n\n{ssl_section}"
        )

    def start(self, timeout: float = 30) -> "Taky":
        self.log = open(self.workdir / f"taky-{self.port}.log", "ab")
        self.process = subprocess.Popen(
            [str(binary()), "-c", str(self.config), "-l", "info"],
            cwd=self.workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
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
