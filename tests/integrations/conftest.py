"""Fixtures for the engine integration tests: real engines, loopback only, self-started.

Each engine's tests skip when its extra is not installed (a user's plain ``pip install .``);
CI installs ``pygad[spark,kafka]`` and sets ``PYGAD_REQUIRE_INTEGRATIONS=1`` so that a
missing engine fails loudly instead of skipping quietly.
"""
from __future__ import annotations

import socket
import subprocess
import time

import pytest

from _engines import free_port, require, tansu_binary


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory):
    """A tansu broker (memory storage) on a random loopback port; yields bootstrap servers."""
    require("confluent_kafka", "kafka")
    binary = tansu_binary()
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "broker", "--listener-url", url,
                                 "--advertised-listener-url", url,
                                 "--storage-engine", "memory://tansu/"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"tansu broker exited with {proc.returncode}: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("tansu broker did not start in 30 s")
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
