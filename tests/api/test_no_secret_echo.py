"""No answer and no log line repeats a secret sent where it does not belong.

An API key, a workload token and a JWT each go, one place at a time, into every path
parameter, query parameter, JSON body field, JSON field name and declared header of
every route the application serves (the REST API, GraphQL, discovery and JWKS at the
root and under the issuer's path, the documentation, the console), as no one, as the
admin and as a run's agent; the console's pages get them in their paths, filters and
forms, the three shapes taking turns from one place to the next. Neither a secret nor
any part only it has may appear in an answer's body or headers, nor in a line of the
access log or the server's other logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.domain.secret_shapes import REDACTED
from federation.observability.json_logs import JsonFormatter
from federation.observability.logs import ACCESS_LOGGER, REDACT
from federation.settings import Settings
from tests.api.secret_echo_cases import (
    Request,
    Values,
    api_requests,
    console_requests,
    each_shape,
    endpoints,
    form_names,
    graphql_requests,
    leaks,
)
from tests.conftest import make_settings
from tests.console.pages import csrf_token, sign_in
from tests.support import Agent, World, bearer, free_port

SHAPES = tuple(each_shape())
AWS = "sts.amazonaws.com"
GCP = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"
ROLE = "arn:aws:iam::123456789012:role/deploy"
GRAPHQL = "/graphql/v2"


class Captured(logging.Handler):
    """Every log line the issuer writes, formatted as the server formats it: the access
    log's JSON, the others' text with their tracebacks. Like every handler of a server
    (``logs.configure``), it redacts records before formatting them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(REDACT)
        self.lines: list[str] = []
        self.access_lines = 0
        self.json = JsonFormatter()
        self.text = logging.Formatter("%(levelname)s %(name)s: %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "access", None) is not None:
            self.access_lines += 1
            self.lines.append(self.json.format(record))
        else:
            self.lines.append(self.text.format(record))

    def take(self) -> str:
        text = "\n".join(self.lines)
        self.lines.clear()
        return text


@pytest.fixture
def logs() -> Iterator[Captured]:
    """The access log (as a server sends it: not on to the root logger) and every other
    record that reaches the root logger, ``federation``'s at INFO as a server has them."""
    captured = Captured()
    root, issuer, access = (logging.getLogger(name) for name in ("", "federation", ACCESS_LOGGER))
    saved = (issuer.level, access.level, access.propagate)
    issuer.setLevel(logging.INFO)
    access.setLevel(logging.INFO)
    access.propagate = False
    root.addHandler(captured)
    access.addHandler(captured)
    try:
        yield captured
    finally:
        root.removeHandler(captured)
        access.removeHandler(captured)
        issuer.setLevel(saved[0])
        access.setLevel(saved[1])
        access.propagate = saved[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An issuer with a path (discovery is served under it too), whose clouds' token
    services refuse connections at once (the broker's answers, without a cloud), and
    without rate limits: a 429 would answer before the code that might echo."""
    closed = f"http://127.0.0.1:{free_port()}"
    return make_settings(
        tmp_path,
        issuer="http://127.0.0.1:8080/tenant-a",
        rate_limit_key="off",
        rate_limit_run="off",
        rate_limit_auth_failures="off",
        aws_sts_endpoint_url=closed,
        gcp_sts_url=f"{closed}/v1/token",
        gcp_iam_url=closed,
    )


@pytest.fixture
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # a refused connection is not retried


class Prober:
    """Sends requests and collects every place one of ``secrets`` came back (any of them
    in any answer: one sent before may come back later)."""

    def __init__(self, client: TestClient, logs: Captured, secrets: Sequence[str]) -> None:
        self.client = client
        self.logs = logs
        self.secrets = secrets
        self.found: list[str] = []
        self.sent = 0

    def send(self, request: Request, caller: str, headers: dict[str, str]) -> Any:
        response = self.client.request(
            request.method,
            request.url,
            params=request.params,
            json=request.json,
            data=request.data,
            headers={**headers, **request.headers},
            follow_redirects=False,
        )
        self.sent += 1
        texts = {
            "body": response.text,
            "headers": "\n".join(f"{name}: {value}" for name, value in response.headers.items()),
            "logs": self.logs.take(),
        }
        for secret in self.secrets:
            for where in leaks(texts, secret):
                self.found.append(
                    f"{caller} {request.method} {request.url} [{request.what}] -> "
                    f"{response.status_code}: the secret {secret[:6]}... is in its {where}"
                )
        return response


def seeded(world: World) -> tuple[Agent, Values]:
    """A user's run and keys, and valid values for what requests need besides the
    secret: the seeded run, principal and key, a cloud's audience and role."""
    agent = world.agent("u1")
    spare = world.api_key("u1", name="spare")
    spare_id = world.client.get("/api/v1/whoami", headers=bearer(spare)).json()["key"]["id"]
    values = Values(
        known={
            "run_id": [agent.run_id],
            "uid": [agent.uid],
            "principal_uid": [agent.uid],
            "key_id": [spare_id],
            "team_uid": ["t1"],
            "audience": [AWS, GCP],
            "role_arn": [ROLE],
            "state": ["INPROGRESS"],
            "name": ["n1"],
            "kid": ["no-such-kid"],  # NOTE: never a real key: retire and revoke would act
        }
    )
    return agent, values


def callers(world: World, agent: Agent) -> dict[str, dict[str, str]]:
    return {"anonymous": {}, "admin": world.admin, "agent": agent.headers()}


@pytest.mark.slow
@pytest.mark.usefixtures("no_retries")
@pytest.mark.parametrize("shape", SHAPES)
def test_no_api_answer_or_log_line_repeats_a_secret(
    app: FastAPI, world: World, logs: Captured, shape: str
) -> None:
    secret = each_shape()[shape]
    agent, values = seeded(world)
    found = [e for e in endpoints(app) if not e.console]
    paths = {endpoint.path for endpoint in found}
    # the walk reaches every kind of route (a route added later is found the same way)
    assert {
        "/api/v1/runs/{run_id}",
        GRAPHQL,
        "/.well-known/jwks.json",
        "/tenant-a/.well-known/openid-configuration",
        "/openapi.json",
        "/docs",
        "/metrics",
    } <= paths
    prober = Prober(world.client, logs, [secret])
    logs.take()
    for endpoint in found:
        requests = list(api_requests(endpoint, secret, values))
        if endpoint.path == GRAPHQL:
            requests += graphql_requests(GRAPHQL, secret, agent.run_id)
        for caller, headers in callers(world, agent).items():
            for request in requests:
                prober.send(request, caller, headers)
    assert not prober.found, "\n".join(prober.found)
    assert logs.access_lines >= prober.sent  # every request was logged, and looked at


@pytest.mark.slow
def test_no_console_page_or_log_line_repeats_a_secret(
    app: FastAPI, world: World, logs: Captured
) -> None:
    """Each place of a page gets one secret, the shapes taking turns, so that every page
    gets every shape and each place of the pages gets every shape on one page or the
    next: a page is rendered through one redaction (``federation.console.web.render``),
    which tests/unit/test_secret_shapes.py holds shape by shape, and every answer is
    searched for all three secrets."""
    secrets = list(each_shape().values())
    _, values = seeded(world)
    client = world.client
    found = [e for e in endpoints(app) if e.console]
    assert {("GET", "/console/runs/{run_id}"), ("POST", "/console/api-keys")} <= {
        (e.method, e.path) for e in found
    }
    shown = [e.url({name: str(values.valid(name)) for name in e.parameters}) for e in found]
    signed_out = [client.get(url).text for url in shown]  # the sign-in form among them
    sign_in(client, world.admin_key)
    names = form_names([*signed_out, *(client.get(url).text for url in shown)])
    assert {"run_id", "principal_uid", "audience", "name", "api_key"} <= set(names)
    prober = Prober(client, logs, secrets)
    logs.take()
    for page, endpoint in enumerate(found):
        # NOTE: signed in afresh for each page: a POST before may have signed out
        sign_in(client, world.admin_key)
        token = csrf_token(client.get("/console/api-keys").text)
        each = [list(console_requests(endpoint, s, values, names, token)) for s in secrets]
        for place, requests in enumerate(zip(*each, strict=True)):
            prober.send(requests[(page + place) % len(secrets)], "console", {})
    assert not prober.found, "\n".join(prober.found)
    assert prober.sent > len(found) * len(names)


def test_a_secret_in_a_path_reads_as_redacted(world: World, logs: Captured) -> None:
    """What a client sees instead: the fixed marker, where the secret was."""
    secret = each_shape()["workload-token"]
    logs.take()
    answer = world.request("GET", f"/api/v1/runs/{secret}")
    assert answer.status_code == 404
    problem = answer.json()
    assert problem["detail"] == f"run {REDACTED} not found"
    assert problem["instance"] == f"/api/v1/runs/{REDACTED}"
    assert f'"path":"/api/v1/runs/{REDACTED}"' in logs.take()


def test_a_secret_in_a_body_is_refused_naming_only_the_field(world: World) -> None:
    """A secret in a body is refused, not stored where everyone who lists runs sees it."""
    world.principal("u1")
    secret = each_shape()["api-key"]
    answer = world.request("POST", "/api/v1/runs", json={"principal_uid": "u1", "host": secret})
    assert answer.status_code == 400
    assert "host holds what looks like an API key" in answer.json()["detail"]
    listed = world.request("GET", "/api/v1/runs").json()["items"]
    assert listed == []
