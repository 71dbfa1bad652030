"""The shapes of the issuer's secrets, and their redaction in text, in JSON and in logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from federation.domain.secret_shapes import (
    API_KEY,
    JWT,
    REDACTED,
    WORKLOAD_TOKEN,
    find_secret,
    redact,
    redact_json,
    secret_kind,
)
from federation.observability.json_logs import JsonFormatter
from federation.observability.logs import REDACT, redact_everywhere
from federation.registry.auth import new_api_key, new_workload_token
from tests.api.secret_echo_cases import each_shape

# A token of the shape the issuer signs (ES256), and an unsigned one (its signature empty).
SIGNED = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0"
    ".eyJzdWIiOiJ1c2VyOnUxIiwiYXVkIjoic3RzLmFtYXpvbmF3cy5jb20ifQ"
    ".MEUCIQDx4_v1Hc9Zk0mBn2VbqMZ9rXb-6gGQ0oUWZ1pY3xWk3wIgL0x2c1Nf9aQ"
)
UNSIGNED = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."


def test_the_shapes_are_those_the_issuer_makes() -> None:
    for _ in range(200):
        assert API_KEY.fullmatch(new_api_key())
        assert WORKLOAD_TOKEN.fullmatch(new_workload_token())
    assert JWT.fullmatch(SIGNED)
    assert JWT.fullmatch(UNSIGNED)
    assert not API_KEY.fullmatch(new_api_key()[:-1])
    assert not API_KEY.fullmatch(new_workload_token())


@pytest.mark.parametrize(
    ("shape", "kind"),
    [("api-key", "an API key"), ("workload-token", "a workload token"), ("jwt", "a JWT")],
)
def test_a_secret_is_hidden_wherever_it_stands(shape: str, kind: str) -> None:
    secret = each_shape()[shape]
    assert secret_kind(secret) == kind
    assert redact(secret) == REDACTED
    assert redact(f"run {secret} not found") == f"run {REDACTED} not found"
    assert (
        redact(f"/api/v1/runs/{secret}/preview-token") == f"/api/v1/runs/{REDACTED}/preview-token"
    )
    assert redact(f"x{secret}") == f"x{REDACTED}"  # glued to what comes before
    assert redact(f"{secret}abc") == REDACTED  # and to what comes after: hidden whole
    assert redact(f"{secret} and {secret}") == f"{REDACTED} and {REDACTED}"
    assert redact(f"shown: {secret}", keep=(secret,)) == f"shown: {secret}"


def test_what_only_looks_alike_stays() -> None:
    for text in (
        "wk-**abcd",  # a masked key
        "hawk-eye",
        "wk-" + "a" * 42,  # one character short
        "wlt-",
        "eyJhbGciOiJub25lIn0",  # one segment is no JWT
        "the subject is teams:t1/environment:prod",
        "",
    ):
        assert redact(text) == text
        assert secret_kind(text) is None


def test_json_is_redacted_in_keys_and_values_at_any_depth() -> None:
    key, token = new_api_key(), new_workload_token()
    document = {"detail": f"team {token}", key: 1, "upstream": {"said": [SIGNED, 3, None]}}
    assert redact_json(document) == {
        "detail": f"team {REDACTED}",
        REDACTED: 1,
        "upstream": {"said": [REDACTED, 3, None]},
    }


def test_the_first_secret_in_a_body_is_found_by_its_field() -> None:
    key = new_api_key()
    assert find_secret({"run_id": "r1", "tags": ["a", key]}) == ("tags[1]", "an API key")
    assert find_secret({"x": {key: 1}}) == ("a field name", "an API key")
    assert find_secret({"audience": SIGNED}) == ("audience", "a JWT")
    assert find_secret({"run_id": "r1", "duration": 3600}) is None


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with a handler of its own, as the server's are: text with tracebacks."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("federation.test_secret_shapes")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_every_handler_redacts_messages_and_tracebacks(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    redact_everywhere()  # what the server's start-up does, once its handlers exist
    assert all(REDACT in handler.filters for handler in log.handlers)
    key, token = new_api_key(), new_workload_token()
    log.error("refused %s for run %s", key, "r1")
    try:
        raise ValueError(f"no run {token}")
    except ValueError:
        log.exception("unhandled error")
    written = stream.getvalue()
    assert key not in written
    assert token not in written
    assert f"refused {REDACTED} for run r1" in written
    assert f"ValueError: no run {REDACTED}" in written


def test_the_json_formatter_redacts_a_message() -> None:
    key = new_api_key()
    record = logging.LogRecord("federation.api", logging.ERROR, __file__, 1, "key %s", (key,), None)
    assert key not in JsonFormatter().format(record)
    assert REDACTED in JsonFormatter().format(record)
