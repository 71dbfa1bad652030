"""The served ``/openapi.json`` is true: every answer of every operation, errors
included, has a status, a content type and a body that the document declares for it.

Why: clients are generated from the document, and a status it does not declare (or a
problem body declared as plain JSON) breaks them at the worst moment, on an error.
schemathesis generates requests for each operation from the document itself and checks
each answer against it: status code, content type and response schema conformance, and
no server error. One pass sends the seeded admin key, to reach the handlers; a smaller
one sends no key. Examples are derandomized, so a run fails (or passes) the same way
every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as examples
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from federation.settings import Settings
from tests.api.openapi_cases import bounded, every_operation, send, unlimited
from tests.support import bearer

pytestmark = pytest.mark.slow  # seconds: every operation, a few dozen requests each
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = bounded(8)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Without rate limits: the clock stands still in tests, so buckets never refill."""
    return unlimited(tmp_path)


def conforms(case: Case[Any], client: TestClient, headers: dict[str, str]) -> None:
    response = send(client, case, headers)
    case.validate_response(response, checks=CONFORMANCE, headers=headers)


@every_operation
@EXAMPLES
def test_answers_with_the_admin_key_conform(
    case: Case[Any], client: TestClient, admin_key: str
) -> None:
    conforms(case, client, bearer(admin_key))


@every_operation
@examples(EXAMPLES, max_examples=3)
def test_answers_without_a_key_conform(case: Case[Any], client: TestClient) -> None:
    conforms(case, client, {})
