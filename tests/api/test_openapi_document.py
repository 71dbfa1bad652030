"""What ``/openapi.json`` promises about errors: every error answer of every operation
is declared, as ``application/problem+json`` with the ``Problem`` schema, and that
schema holds every problem body the error tree can write.

Why: clients are generated from the document; the fuzzing of
``test_openapi_conformance`` only reaches the errors its examples provoke, and these
hold the rest (rate limits, outages, size limits, finished runs) by construction.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from federation import errors
from federation.api.openapi import PROBLEM_REF, problem_schema, problems
from federation.api.problems import PROBLEM_JSON
from federation.errors import FederationError, InvalidPolicy

# Every status each operation answers besides its success; what stands in front of the
# routes (limits, authentication, the database) is in every authenticated operation's.
FRONT = {400, 401, 413, 429, 431, 500, 503}
EXPECTED = {
    ("get", "/.well-known/openid-configuration"): {500},
    ("get", "/.well-known/jwks.json"): {500, 503},
    ("get", "/healthz"): {413, 431, 500},
    ("get", "/readyz"): {413, 431, 500, 503},
    ("post", "/api/v1/federate/issue-token"): FRONT | {403, 404, 409, 422},
    ("post", "/api/v1/federate/preview-token"): FRONT | {403, 404, 409, 422},
    ("post", "/api/v1/federate/aws/credentials"): FRONT | {403, 404, 409, 422},
    ("post", "/graphql/v2"): FRONT,
    ("get", "/api/v1/whoami"): FRONT - {400},
    ("post", "/api/v1/principals"): FRONT | {403, 409},
    ("get", "/api/v1/principals/{uid}"): FRONT | {403, 404},
    ("delete", "/api/v1/api-keys/{key_id}"): FRONT | {404},
    ("post", "/api/v1/runs"): FRONT | {403, 404, 409},
    ("patch", "/api/v1/runs/{run_id}"): FRONT | {403, 404, 422},
    ("post", "/api/v1/keys/{kid}/revoke"): FRONT | {403, 404},
    ("get", "/api/v1/tokens"): FRONT | {403},
}


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_answer_is_declared_as_a_problem(document: dict[str, Any]) -> None:
    assert document["components"]["schemas"]["Problem"] == problem_schema()
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            where = f"{method.upper()} {path} {status}"
            assert set(response["content"]) == {PROBLEM_JSON}, where
            media = response["content"][PROBLEM_JSON]
            assert media["schema"] == {"$ref": PROBLEM_REF}, where
            assert media["example"]["status"] == int(status), where
    # The framework's 422 "HTTPValidationError" is gone: validation failures are 400s.
    assert "ValidationError" not in str(document)


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_each_operation_declares_the_errors_it_can_answer(
    document: dict[str, Any], method: str, path: str
) -> None:
    responses = document["paths"][path][method]["responses"]
    assert {int(status) for status in responses if int(status) >= 400} == EXPECTED[(method, path)]


def test_retry_after_and_www_authenticate_are_declared(document: dict[str, Any]) -> None:
    responses = document["paths"]["/api/v1/federate/issue-token"]["post"]["responses"]
    assert "Retry-After" in responses["429"]["headers"]
    assert "Retry-After" in responses["503"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]


def every_error() -> list[FederationError]:
    """One instance of every class of the tree, with a detail and an extension."""
    found: list[FederationError] = []
    pending: list[type[FederationError]] = [FederationError]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if kind is InvalidPolicy:
            found.append(InvalidPolicy("MalformedPolicyDocument", "no Statement"))
        else:
            found.append(kind("what went wrong"))
            found.append(kind())
    found.append(
        errors.ResourceUnavailable(
            "AWS STS failed", extensions={"upstream": {"service": "aws-sts", "code": "Throttling"}}
        )
    )
    return found


def test_the_problem_schema_holds_every_body_the_error_tree_writes() -> None:
    validator = jsonschema_rs.validator_for(problem_schema())
    for error in every_error():
        for trace in ("4bf92f3577b34da6a3ce929d0e0e4736", None):
            body = error.problem(instance="/api/v1/runs", trace_id=trace)
            validator.validate(body)
    wrong = FederationError().problem(instance="/", trace_id=None) | {"type": "/elsewhere/"}
    assert not validator.is_valid(wrong)


def test_routes_added_later_are_completed_too(app: FastAPI, client: TestClient) -> None:
    assert "/later" not in client.get("/openapi.json").json()["paths"]
    later = APIRouter()

    @later.get("/later", responses=problems(404))
    def later_route(item: int) -> dict[str, int]:
        return {"item": item}

    app.include_router(later)
    responses = client.get("/openapi.json").json()["paths"]["/later"]["get"]["responses"]
    assert set(responses) == {"200", "400", "404", "413", "431", "500"}
    assert set(responses["400"]["content"]) == {PROBLEM_JSON}
