"""``GET /metrics``: tokens by algorithm and bounded audience, errors by code, latency
by route template, signing-key ages; who may read it; parsed by prometheus_client's own
parser, an independent reader of the text format."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.keys.lifecycle import PUBLISHED
from federation.observability.metrics import audience_label
from federation.settings import Settings
from federation.store import Store
from tests.api.test_errors import AWS, GCP, ISSUE, assert_problem
from tests.support import World, bearer

ENTRA = "api://AzureADTokenExchange"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, key: str | None) -> Samples:
    response = client.get("/metrics", headers=bearer(key) if key else {})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_tokens_by_algorithm_and_audience(world: World) -> None:
    agent = world.agent()
    for body in (
        {"audience": AWS},
        {"audience": AWS},
        {"audience": AWS, "algorithm": "RS256"},
        {"audience": ENTRA},  # RS256 by rule
        {"audience": GCP},
        {"audience": "https://app.example.com/one"},
        {"audience": "https://app.example.com/two"},
    ):
        assert world.issue(agent, **body).status_code == 200
    samples = scrape(world.client, world.admin_key)
    tokens = "federation_tokens_issued_total"
    assert value(samples, tokens, alg="ES256", audience=AWS) == 2
    assert value(samples, tokens, alg="RS256", audience=AWS) == 1
    assert value(samples, tokens, alg="RS256", audience=ENTRA) == 1
    assert value(samples, tokens, alg="ES256", audience="gcp") == 1
    assert value(samples, tokens, alg="ES256", audience="other") == 2
    audiences = {dict(labels)["audience"] for name, labels in samples if name == tokens}
    assert audiences == {AWS, ENTRA, "gcp", "other"}  # never a caller's own string


def test_refused_and_previewed_tokens_are_not_counted(world: World) -> None:
    agent = world.agent()
    assert world.issue(agent, run_id="no-such-run").status_code == 404
    preview = world.client.post(
        "/api/v1/federate/preview-token",
        json={"run_id": agent.run_id, "audience": AWS},
        headers=agent.headers(),
    )
    assert preview.status_code == 200, preview.text
    samples = scrape(world.client, world.admin_key)
    assert not [name for name, _ in samples if name == "federation_tokens_issued_total"]


def test_errors_by_code_and_status(world: World) -> None:
    assert world.client.get("/api/v1/whoami", headers=bearer("wk-wrong")).status_code == 401
    assert world.client.get("/no/such/route").status_code == 404
    assert world.client.get("/no/other/route").status_code == 404
    assert world.client.delete("/api/v1/whoami").status_code == 405
    samples = scrape(world.client, world.admin_key)
    errors = "federation_errors_total"
    assert value(samples, errors, code="authentication_required", status="401") == 1
    assert value(samples, errors, code="resource_not_found", status="404") == 2
    assert value(samples, errors, code="operation_not_supported", status="405") == 1


def test_latency_by_route_template(world: World) -> None:
    agent = world.agent()
    for _ in range(3):
        assert world.issue(agent).status_code == 200
    world.client.get(f"/api/v1/runs/{agent.run_id}", headers=world.admin)
    world.client.get("/.well-known/jwks.json")
    world.client.get(f"/no/such/{agent.run_id}")
    samples = scrape(world.client, world.admin_key)
    count = "federation_request_duration_seconds_count"
    assert value(samples, count, route=ISSUE, method="POST") == 3
    assert value(samples, count, route="/api/v1/runs/{run_id}", method="GET") == 1
    assert value(samples, count, route="/.well-known/jwks.json", method="GET") == 1
    assert value(samples, count, route="unmatched", method="GET") == 1
    infinite = value(
        samples, "federation_request_duration_seconds_bucket", route=ISSUE, method="POST", le="+Inf"
    )
    assert infinite == 3
    assert value(samples, "federation_request_duration_seconds_sum", route=ISSUE, method="POST") > 0
    routes = {dict(labels).get("route") for name, labels in samples}
    assert not any(agent.run_id in (route or "") for route in routes)  # templates only


def test_signing_key_ages_at_scrape_time(
    world: World, keyring: Keyring, clock: ManualClock
) -> None:
    published = [status for status in keyring.statuses() if status.state in PUBLISHED]
    assert {status.record.alg for status in published} == {"ES256", "RS256"}
    clock.advance(timedelta(hours=2))
    samples = scrape(world.client, world.admin_key)
    for status in published:
        record = status.record
        age = value(
            samples,
            "federation_signing_key_age_seconds",
            alg=record.alg,
            kid=record.kid,
            state=status.state.value,
        )
        assert age == (clock.now() - record.created_at).total_seconds()
        assert 7200 <= age < 7200 + 86400  # made with the templates, two hours ago here


def test_metrics_need_an_admin_key_by_default(world: World) -> None:
    agent = world.agent()  # a federate key
    assert_problem(world.client.get("/metrics"), 401, "authentication_required", detail=None)
    refused = world.client.get("/metrics", headers=bearer(agent.key))
    assert_problem(refused, 403, "not_authorized", detail="admin")
    assert "/metrics" not in world.client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(("access", "status"), [("public", 200), ("off", 404)])
def test_public_or_off(
    settings: Settings,
    store: Store,
    keyring: Keyring,
    clock: ManualClock,
    admin_key: str,
    access: str,
    status: int,
) -> None:
    chosen = settings.model_copy(update={"metrics": access})
    app = create_app(chosen, store=store, keyring=keyring, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        world = World(client, admin_key)
        assert world.issue(world.agent()).status_code == 200
        response = client.get("/metrics")  # no key
        assert response.status_code == status
    if access == "public":
        assert 'federation_tokens_issued_total{alg="ES256",audience="sts.amazonaws.com"} 1.0' in (
            response.text
        )
    else:
        assert app.state.context.issuer.on_signed is None  # nothing counted either


@pytest.mark.parametrize(
    ("audience", "label"),
    [
        (AWS, AWS),
        ("sts.amazonaws.com.cn", "sts.amazonaws.com.cn"),
        (ENTRA, ENTRA),
        (GCP, "gcp"),
        ("https://iam.googleapis.com/projects/1/locations/global/x", "gcp"),
        ("sts.amazonaws.com.evil.example", "other"),
        ("api://AzureADTokenExchange/extra", "other"),
    ],
)
def test_audience_labels_are_bounded(audience: str, label: str) -> None:
    assert audience_label(audience) == label
