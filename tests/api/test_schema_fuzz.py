"""Every operation of the served ``/openapi.json``, fuzzed by schemathesis: no answer is
a 5xx, and every error is ``application/problem+json`` in the Oz shape, with a known
code in ``type`` and the HTTP status in ``status``.

Why: the problem handlers promise that *every* non-2xx answer, framework ones included,
is a problem body (README, Errors); hand-written tests only try the inputs their author
thought of. One pass authenticates with the admin key, to reach the handlers; a smaller
one sends no key, where everything but the public documents must be a 401. Examples
are derandomized so that CI fails (or passes) the same way every time.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as examples
from schemathesis import Case

from federation import errors
from federation.api import create_app
from federation.clock import ManualClock
from federation.errors import DOCS_PREFIX, FederationError
from federation.server.runtime import open_keyring
from federation.settings import Settings
from federation.store import Store
from tests.conftest import START, make_settings
from tests.support import bearer

PROBLEM_JSON = "application/problem+json"
KNOWN_CODES = frozenset(
    cls.code
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, FederationError)
)
KNOWN_TYPES = frozenset(f"{DOCS_PREFIX}{code.replace('_', '-')}/" for code in KNOWN_CODES)
FUZZ = examples(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The suite's settings without rate limits: the clock stands still in tests, so
    buckets never refill, and every example after the burst would be a 429."""
    return make_settings(
        tmp_path, rate_limit_key="off", rate_limit_run="off", rate_limit_auth_failures="off"
    )


def served_schema() -> Any:
    """The OpenAPI document as the application serves it at ``/openapi.json``.

    Loaded at collection, so that every operation is a test of its own: the app here
    has a store and keyring that are never opened (``create_app`` does no I/O), which
    is enough to serve the document; the cases go to the per-test ``client``."""
    root = Path(tempfile.mkdtemp(prefix="federation-openapi-"))
    settings = make_settings(root)
    store = Store.from_url(settings.database_url)
    app = create_app(settings, store=store, keyring=open_keyring(settings, ManualClock(START)))
    try:
        return schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        store.dispose()
        shutil.rmtree(root, ignore_errors=True)


schema = served_schema()
Test = TypeVar("Test", bound=Callable[..., None])


def every_operation(test: Test) -> Test:
    """``schema.parametrize()``, typed: one test per operation of the document."""
    return cast(Test, schema.parametrize()(test))


def send(client: TestClient, case: Case[Any], headers: dict[str, str]) -> Any:
    """The case through the test's client (real app, lifespan run), in httpx's terms:
    schemathesis serializes for ``requests``."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    cookies = kwargs.pop("cookies", None)
    if cookies:  # NOTE: per-request cookies are deprecated in httpx; send the header
        kwargs["headers"]["Cookie"] = "; ".join(
            f"{name}={value}" for name, value in cookies.items()
        )
    data = kwargs.pop("data", None)
    if isinstance(data, str | bytes):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    unknown = set(kwargs) - {
        "method",
        "url",
        "headers",
        "params",
        "json",
        "content",
        "data",
        "files",
    }
    assert not unknown, unknown
    return client.request(**kwargs)


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
