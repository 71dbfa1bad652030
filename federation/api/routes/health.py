"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter

from federation.api.deps import Context
from federation.api.openapi import problems
from federation.api.schemas import Health
from federation.errors import FederationError, ResourceUnavailable
from federation.keys import ALGORITHMS

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The store answers and every algorithm has a signing key",
    responses=problems(503),
)
def readyz(context: Context) -> Health:
    checks: dict[str, str] = {}
    try:
        context.store.ping()
        checks["store"] = "ok"
    except FederationError as error:
        checks["store"] = error.detail or error.title
    for alg in ALGORITHMS:
        try:
            context.keyring.signer(alg)
            checks[f"key:{alg}"] = "ok"
        except FederationError as error:
            checks[f"key:{alg}"] = error.detail or error.title
    failed = [name for name, result in checks.items() if result != "ok"]
    if failed:
        raise ResourceUnavailable(f"not ready: {'; '.join(f'{n}: {checks[n]}' for n in failed)}")
    return Health(status="ok", checks=checks)
