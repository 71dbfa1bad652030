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
    FederationError,
    InternalError,
    InvalidIssuerUrl,
    InvalidRequest,
    IssuerUnreachable,
    ResourceUnavailable,
    for_problem,
)

DEFAULT_ORIGIN = "the default"
GIVEN = ("--url", "FEDERATION_URL")  # the origins where the user wrote the URL itself


class IssuerUrl(str):
    """An issuer's URL that remembers where it came from (``--url``,
    ``FEDERATION_URL``, ``FEDERATION_PORT``...), so that an error names the setting to
    change. A ``str``: it goes wherever a URL does."""

    origin: str

    def __new__(cls, url: str, origin: str) -> IssuerUrl:
        value = super().__new__(cls, url)
        value.origin = origin
        return value


def origin_of(url: str) -> str:
    """The flag or variable that gave ``url`` (``FEDERATION_URL`` when it is not known)."""
    return url.origin if isinstance(url, IssuerUrl) else "FEDERATION_URL"


def _whence(origin: str) -> str:
    """``from FEDERATION_PORT``, or ``the default URL``."""
    return "the default URL" if origin == DEFAULT_ORIGIN else f"from {origin}"


def _fix(origin: str) -> str:
    """What to change: the flag or variable the user wrote, else FEDERATION_URL."""
    if origin in GIVEN:
        return f"is {origin} right?"
    return "set FEDERATION_URL or pass --url to use another"


def error_from_response(
    response: httpx.Response, origin: str = "FEDERATION_URL"
) -> FederationError:
    """The FederationError a non-2xx answer stands for; ``origin`` names what gave the
    URL, for an answer that is not an issuer's."""
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        # Not our answer (a proxy's, or the URL points elsewhere).
        if status >= 500:
            return ResourceUnavailable(f"the issuer answered HTTP {status}")
        kind = BY_STATUS.get(status, InvalidRequest)
        return kind(f"the server answered HTTP {status} without a problem body; {_fix(origin)}")
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
        self.origin = origin_of(base_url)
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise InvalidIssuerUrl(f"{self.origin} {str(base_url)!r} is not an http(s) URL")
        if (
            api_key
            and parts.scheme == "http"
            and not is_loopback(parts.hostname)
            and os.environ.get("FEDERATION_INSECURE_HTTP") != "1"
        ):
            # NOTE: an API key over plain http to another host is readable on the way.
            raise InvalidIssuerUrl(
                f"refusing to send an API key over plain http to {parts.hostname} ("
                f"{_whence(self.origin)}): use https, or set FEDERATION_INSECURE_HTTP=1 on a "
                "network you trust"
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
                f"the issuer at {self.base_url}, {_whence(self.origin)}, did not answer in time"
            ) from None
        except httpx.HTTPError as exc:
            raise IssuerUnreachable(unreachable(self.base_url, self.origin, exc)) from None
        if response.status_code >= 400:
            raise error_from_response(response, self.origin)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise InvalidIssuerUrl(
                f"{self.base_url}, {_whence(self.origin)}, answered something other than "
                f"JSON, so it is not the issuer; {_fix(self.origin)}"
            ) from None


def unreachable(url: str, origin: str, exc: Exception) -> str:
    """What the CLI says when nothing answers at ``url``: the URL, where it came
    from, and what to change."""
    where = f"at {url.rstrip('/')}, {_whence(origin)}: {type(exc).__name__}"
    if origin in GIVEN:
        return f"{where}; is it running, and is {origin} right?"
    return f"{where}; is it running? Otherwise {_fix(origin)}"
