"""Every operation of the served ``/openapi.json``, fuzzed by schemathesis: no answer is
a 5xx, and every error is ``application/problem+json`` in the Oz shape, with a known
code in ``type`` and the HTTP status in ``status``.

Why: the problem handlers promise that *every* non-2xx answer, framework ones included,
is a problem body (docs/reference/errors.md); hand-written tests only try the inputs their author
thought of. One pass authenticates with the admin key, to reach the handlers; a smaller
one sends no key, where everything but the public documents must be a 401. Examples
are derandomized so that CI fails (or passes) the same way every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as examples
from schemathesis import Case

from federation import errors
from federation.errors import DOCS_PREFIX, FederationError
from federation.settings import Settings
from tests.api.openapi_cases import bounded, every_operation, send, unlimited
from tests.support import bearer

PROBLEM_JSON = "application/problem+json"
KNOWN_CODES = frozenset(
    cls.code
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, FederationError)
)
KNOWN_TYPES = frozenset(f"{DOCS_PREFIX}{code.replace('_', '-')}/" for code in KNOWN_CODES)
FUZZ = bounded(15)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The suite's settings without rate limits: the clock stands still in tests, so
    buckets never refill, and every example after the burst would be a 429."""
    return unlimited(tmp_path)


def check(case: Case[Any], response: Any) -> None:
    shown = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, shown
    if response.status_code < 400:
        return
    assert response.headers["content-type"] == PROBLEM_JSON, shown
    body = response.json()
    assert body["type"] in KNOWN_TYPES, shown
    assert body["status"] == response.status_code, shown


@every_operation
@FUZZ
def test_with_the_admin_key(case: Case[Any], client: TestClient, admin_key: str) -> None:
    check(case, send(client, case, bearer(admin_key)))


@every_operation
@examples(FUZZ, max_examples=5)
def test_without_a_key(case: Case[Any], client: TestClient) -> None:
    check(case, send(client, case, {}))
