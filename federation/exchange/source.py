"""Where the exchange helpers get their tokens: a :class:`TokenSource`.

Inside a run, tokens come from the issuer's API with the run's API key and workload
token (:class:`ApiTokenSource`, what ``oz federate issue-token`` does). The broker
endpoints mint in process instead. Either way a fresh token is minted for every
exchange: tokens are short-lived, and Entra refuses a reused assertion once it expired.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from federation.client import ApiClient
from federation.domain.durations import parse_human_duration
from federation.errors import InvalidRequest

DEFAULT_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class MintedToken:
    token: str
    issued_at: datetime
    expires_at: datetime
    subject: str
    issuer: str


@dataclass(frozen=True)
class AccessToken:
    """A cloud's access token (GCP, Entra), as the exchange helpers return it."""

    token: str
    expires_at: datetime
    token_type: str = "Bearer"  # noqa: S105 - a scheme name


class TokenSource(Protocol):
    def mint(
        self,
        audience: str,
        *,
        duration: str | None = None,
        subject_template: Sequence[str] | None = None,
        aws_session_tags: Sequence[str] | None = None,
        algorithm: str | None = None,
    ) -> MintedToken:
        """A fresh token for ``audience``, bound to the run."""
        ...

    @property
    def run_id(self) -> str:
        """The run the tokens are bound to (AWS session names default to it)."""
        ...


class ApiTokenSource:
    """Mints through the issuer's HTTP API, as a run does."""

    def __init__(self, client: ApiClient, run_id: str, workload_token: str | None) -> None:
        self.client = client
        self._run_id = run_id
        self.workload_token = workload_token

    @classmethod
    def from_environment(
        cls,
        *,
        run_id: str | None = None,
        api_key: str | None = None,
        url: str | None = None,
    ) -> ApiTokenSource:
        """From a run's environment: ``OZ_RUN_ID``, ``WARP_API_KEY``,
        ``WARP_WORKLOAD_TOKEN`` and ``FEDERATION_URL``; arguments win."""
        run = run_id or os.environ.get("OZ_RUN_ID")
        key = api_key or os.environ.get("WARP_API_KEY")
        if not run:
            raise InvalidRequest("no run id: set OZ_RUN_ID or pass --run-id")
        if not key:
            raise InvalidRequest("no API key: set WARP_API_KEY or pass --api-key")
        client = ApiClient(url or os.environ.get("FEDERATION_URL") or DEFAULT_URL, key)
        return cls(client, run, os.environ.get("WARP_WORKLOAD_TOKEN"))

    @property
    def run_id(self) -> str:
        return self._run_id

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ApiTokenSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def mint(
        self,
        audience: str,
        *,
        duration: str | None = None,
        subject_template: Sequence[str] | None = None,
        aws_session_tags: Sequence[str] | None = None,
        algorithm: str | None = None,
    ) -> MintedToken:
        body: dict[str, Any] = {"run_id": self._run_id, "audience": audience}
        optional = {
            # NOTE: every CLI duration is of the Oz CLI's grammar; the issuer is sent
            # whole seconds, as the Oz CLI sends them
            "requested_duration_seconds": None
            if duration is None
            else parse_human_duration(duration),
            "subject_template": list(subject_template) if subject_template else None,
            "aws_session_tags": list(aws_session_tags) if aws_session_tags else None,
            "algorithm": algorithm,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        headers = {}
        if self.workload_token:
            headers["X-Warp-Ambient-Workload-Token"] = self.workload_token
        answer = self.client.request(
            "POST", "/api/v1/federate/issue-token", json=body, headers=headers
        )
        return MintedToken(
            token=answer["token"],
            issued_at=_time(answer["issued_at"]),
            expires_at=_time(answer["expires_at"]),
            subject=answer["subject"],
            issuer=answer["issuer"],
        )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
