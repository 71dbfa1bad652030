"""Fixtures of the transparency log's tests: the Go verifier, built once per session
(per worker) into a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.transparency import golang


@pytest.fixture(scope="session")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return golang.build(tmp_path_factory.mktemp("goverify"))
