"""The HTTP client of the issuer's API (the CLI's, and the exchange helpers'): problems
become the same FederationError classes."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import httpx

from federation import __version__
from federation._internal.urls import is_loopback
from federation.errors import (
    BY_STATUS,
    ConfigurationError,
    FederationError,
    InternalError,
    InvalidRequest,
    ResourceUnavailable,
    for_problem,
)


def error_from_response(response: httpx.Response) -> FederationError:
    """The FederationError a non-2xx answer stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        # Not our answer (a proxy's, or FEDERATION_URL points elsewhere).
        if status >= 500:
            return ResourceUnavailable(f"the issuer answered HTTP {status}")
        kind = BY_STATUS.get(status, InvalidRequest)
        return kind(
            f"the server answered HTTP {status} without a problem body; check FEDERATION_URL"
        )
    code = body["type"].rstrip("/").rsplit("/", 1)[-1].replace("-", "_")
    cls = for_problem(code, status)
    detail, retryable = body.get("detail"), body.get("retryable")
    error = cls(
        detail if isinstance(detail, str) else None,
        retryable=retryable if isinstance(retryable, bool) else None,
    )
    if cls is InternalError and isinstance(body.get("trace_id"), str):
        error.detail = f"trace id {body['trace_id']}"
    return error


class ApiClient:
    """Calls the issuer's API with an API key."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigurationError(f"FEDERATION_URL {base_url!r} is not an http(s) URL")
        if (
            api_key
            and parts.scheme == "http"
            and not is_loopback(parts.hostname)
            and os.environ.get("FEDERATION_INSECURE_HTTP") != "1"
        ):
            # NOTE: an API key over plain http to another host is readable on the way.
            raise ConfigurationError(
                f"refusing to send an API key over plain http to {parts.hostname}: use https, "
                "or set FEDERATION_INSECURE_HTTP=1 on a network you trust"
            )
        headers = {"User-Agent": f"federation-cli/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @property
    def http(self) -> httpx.Client:
        return self._client

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            response = self._client.request(
                method,
                path,
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
                headers=headers,
            )
        except httpx.TimeoutException:
            raise ResourceUnavailable(
                f"the issuer at {self.base_url} did not answer in time"
            ) from None
        except httpx.HTTPError as exc:
            raise ResourceUnavailable(
                f"cannot reach the issuer at {self.base_url} ({type(exc).__name__}); is it "
                "running, and is FEDERATION_URL right?"
            ) from None
        if response.status_code >= 400:
            raise error_from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ConfigurationError(
                f"{self.base_url} answered something other than JSON: is FEDERATION_URL the issuer?"
            ) from None
