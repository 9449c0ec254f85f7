"""Self-signed certificates for the TLS tests (needs the ``openssl`` command)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


def make_certificate(folder: Path) -> None:
    """A self-signed certificate for 127.0.0.1 and localhost: cert.pem + key.pem in ``folder``."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True, timeout=60)


@dataclass
class SelfSignedCertificate:
    """A self-signed certificate for 127.0.0.1/localhost with server and client TLS contexts."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """For a test server (aiosmtpd ``tls_context`` / ``ssl_context``)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """For kb's side: verifies the server against this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory) -> SelfSignedCertificate:
    """One self-signed certificate per session (needs the ``openssl`` command)."""
    if shutil.which("openssl") is None:
        pytest.skip("TLS tests skipped: the `openssl` command is missing (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    make_certificate(folder)
    return SelfSignedCertificate(folder / "cert.pem", folder / "key.pem")
