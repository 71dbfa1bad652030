"""Test cases generated from the served OpenAPI document, sent to a test's application.

The document is loaded at collection, so that every operation is a test of its own;
the cases go to each test's own client (its real application, lifespan run)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as examples
from schemathesis import Case
from schemathesis.config import SchemathesisConfig

from federation.api import create_app
from federation.clock import ManualClock
from federation.server.runtime import open_keyring
from federation.settings import Settings
from federation.store import Store
from tests.conftest import START, make_settings

# NOTE: the coverage phase sends every boundary value of every field, over a thousand
# requests per operation pass; the fuzzing phase, bounded by `max_examples`, is enough.
FUZZING_ONLY = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})


def served_schema() -> Any:
    """The OpenAPI document as the application serves it at ``/openapi.json``: an app
    whose store and keyring are never opened (``create_app`` does no I/O) serves it."""
    root = Path(tempfile.mkdtemp(prefix="federation-openapi-"))
    settings = make_settings(root)
    store = Store.from_url(settings.database_url)
    app = create_app(settings, store=store, keyring=open_keyring(settings, ManualClock(START)))
    try:
        return schemathesis.openapi.from_asgi("/openapi.json", app, config=FUZZING_ONLY)
    finally:
        store.dispose()
        shutil.rmtree(root, ignore_errors=True)


SCHEMA = served_schema()
Test = TypeVar("Test", bound=Callable[..., None])


def every_operation(test: Test) -> Test:
    """``SCHEMA.parametrize()``, typed: one test per operation of the document."""
    return cast(Test, SCHEMA.parametrize()(test))


def send(client: TestClient, case: Case[Any], headers: dict[str, str]) -> Any:
    """The case through the test's client, in httpx's terms: schemathesis serializes
    for ``requests``."""
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


def bounded(max_examples: int) -> examples:
    """Hypothesis settings for the cases: ``max_examples`` each, repeatable, no deadline."""
    return examples(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def unlimited(tmp_path: Path) -> Settings:
    """The suite's settings without rate limits: the clock stands still in tests, so
    buckets never refill, and every case after the burst would be a 429."""
    return make_settings(
        tmp_path, rate_limit_key="off", rate_limit_run="off", rate_limit_auth_failures="off"
    )
