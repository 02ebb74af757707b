"""Fixtures that run flashvol-arraysim processes for the SDK compatibility suite.

Each simulator is started on a free port (``--listen 127.0.0.1:0``) with a temporary state dir;
its first stdout line tells the endpoint and CA file. ``restart()`` stops the process and starts a
new one on the same port from the same state dir, as a test of persistence.
"""

import json
import os
import signal
import ssl
import subprocess
import tempfile
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("ARRAYSIM_BIN", REPO / "target" / "debug" / "flashvol-arraysim"))


class Simulator:
    def __init__(self, kind, state_dir, log_path):
        self.kind = kind
        self.state_dir = state_dir
        self.log_path = log_path
        self.process = None
        self.endpoint = None
        self.ca_cert = None
        self._start("127.0.0.1:0")

    def _start(self, listen):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(BINARY), self.kind, "--state-dir", str(self.state_dir), "--listen", listen],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("simulator did not start; see %s" % self.log_path)
        info = json.loads(line)
        self.endpoint = info["endpoint"]
        self.ca_cert = info["ca_cert"]

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        self.process = None

    def restart(self):
        self.stop()
        self._start(self.endpoint)

    def admin(self, method, route, body=None):
        context = ssl.create_default_context(cafile=self.ca_cert)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            "https://%s/_sim/%s" % (self.endpoint, route), data=data, method=method,
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def authentications(self):
        return self.admin("GET", "stats")["authentications"]


def _simulator(kind, tmp_path_factory):
    state_dir = tmp_path_factory.mktemp(kind)
    sim = Simulator(kind, state_dir / "state", state_dir / "sim.log")
    return sim


@pytest.fixture(scope="session")
def fa_sim(tmp_path_factory):
    sim = _simulator("flasharray", tmp_path_factory)
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def fb_sim(tmp_path_factory):
    sim = _simulator("flashblade", tmp_path_factory)
    yield sim
    sim.stop()


@pytest.fixture
def fa(fa_sim):
    import purestorage

    # Verify the simulator's certificate against its CA rather than skipping verification.
    return purestorage.FlashArray(fa_sim.endpoint, api_token="sim-token-fa", verify_https=True, ssl_cert=fa_sim.ca_cert)


@pytest.fixture
def fb(fb_sim):
    import purity_fb

    client = purity_fb.PurityFb(fb_sim.endpoint, ca_certs_file_path=fb_sim.ca_cert)
    client.login("sim-token-fb")
    return client


@pytest.fixture
def unique():
    """A fresh name prefix per test, so tests sharing a simulator do not collide."""
    return "t" + uuid.uuid4().hex[:10]
