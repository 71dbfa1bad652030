"""Fixtures of the auditor's tests: a log served as static files on loopback (stopped
when the test ends, even when it fails); and, for a module that serves a live issuer
as its ``server`` fixture, an auditor's API key and a run's agent on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auditor.logs import KEY, StaticLog, serve_directory
from tests.support import Agent, LiveServer, World


@pytest.fixture
def static_log(tmp_path: Path) -> Iterator[StaticLog]:
    """An empty directory served on loopback, whose discovery document names the log
    key of :data:`~tests.auditor.logs.KEY`."""
    root = tmp_path / "site"
    with serve_directory(root) as url:
        log = StaticLog(root, url)
        log.announce(KEY.verifier.verifier_key)
        yield log


@pytest.fixture(scope="module")
def audit_key(server: LiveServer) -> str:
    """An API key of scope ``audit`` on the module's ``server``: what reads its log."""
    admin = World.live(server)
    admin.principal("log-auditor", type="service_account", email=None)
    return admin.api_key("log-auditor", scopes=("audit",))


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Agent:
    """A run's agent on the module's ``server``, which issues it tokens."""
    return World.live(server).platform_agent(agent_name="nightly-deploy")
