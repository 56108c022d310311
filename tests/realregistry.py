"""A real OCI registry for tests: Debian's ``docker-registry`` (the CNCF distribution server) started on
a free loopback port with htpasswd (bcrypt) authentication, in a temporary directory, stopped after.

Missing ``docker-registry`` or ``bcrypt`` skips locally and fails in CI (``tests/integration.py``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from integration import need

BINARY = "/usr/bin/docker-registry"
USER = "iam"
STARTUP_SECONDS = 15.0

CONFIG = """version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: crgate-test-secret
auth:
  htpasswd:
    realm: crgate-test
    path: {htpasswd}
"""


@dataclass
class RealRegistry:
    url: str
    user: str
    password: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def registry_binary() -> str | None:
    return BINARY if Path(BINARY).exists() else shutil.which("docker-registry")


def start_real_registry(directory: Path, password: str) -> RealRegistry:
    """Start docker-registry in ``directory``; the one user is ``iam`` with ``password``."""
    binary = registry_binary()
    need(binary, "Debian's docker-registry is not installed (apt-get install docker-registry)")
    try:
        import bcrypt
    except ImportError:
        bcrypt = None
    need(bcrypt, "the bcrypt package (a test extra) is not installed")
    assert binary is not None and bcrypt is not None
    htpasswd = directory / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    port = _free_port()
    config = directory / "config.yml"
    config.write_text(CONFIG.format(root=directory / "data", port=port, htpasswd=htpasswd))
    log = directory / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    registry = RealRegistry(f"http://127.0.0.1:{port}", USER, password, process, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            urllib.request.urlopen(f"{registry.url}/v2/", timeout=1).close()
        except urllib.error.HTTPError as error:
            if error.code == 401:  # up, and asking for credentials
                return registry
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            registry.stop()
            raise AssertionError(f"docker-registry did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
