"""An S3-compatible server on this machine: moto's, in its own process, with its buckets in
memory. Clients find it as they would find any S3 endpoint: through ``AWS_ENDPOINT_URL`` and
the standard credential variables (:meth:`S3Server.environment`)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from streamrec.infra.devstack.free_port import free_port
from tests.engines.processes import kill, start_logged

HOST = "127.0.0.1"


@dataclass
class S3Server:
    root: Path
    port: int = 0
    _process: list[subprocess.Popen] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a client process needs to reach this server, as it would reach AWS."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "streamrec-tests",
            "AWS_SECRET_ACCESS_KEY": "streamrec-tests",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def up(self, timeout: float = 30) -> S3Server:
        self.port = free_port()
        argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)]
        self._process.append(start_logged(argv, self.root / "moto.log"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                return self
            except OSError:
                if self._process[0].poll() is not None:
                    break
                time.sleep(0.1)
        self.down()
        raise RuntimeError(f"the S3 server did not start; see {self.root / 'moto.log'}")

    def bucket(self, name: str) -> str:
        """Creates a bucket; returns its URL."""
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()
        return f"s3://{name}"

    def down(self) -> None:
        kill(self._process)
        self._process.clear()
