"""The console's way to the API: the public ``/api/v1`` endpoints of the same
application, called in process with the signed-in API key.

Every request goes through the whole application (authentication, scopes, rate limits,
the access log), so the console can do exactly what the API lets the key do, and an
error is the API's own problem, turned into a :class:`FederationError`.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.types import ASGIApp

from federation.client import error_from_response


class ConsoleApi:
    def __init__(self, app: ASGIApp, api_key: str | None, client: tuple[str, int]) -> None:
        transport = httpx.ASGITransport(app=app, client=client)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            transport=transport, base_url="http://console.internal", headers=headers
        )

    async def __aenter__(self) -> ConsoleApi:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        clean = {name: value for name, value in (params or {}).items() if value not in (None, "")}
        return await self._answer(await self._http.get(path, params=clean))

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return await self._answer(await self._http.post(path, json=body or {}))

    async def delete(self, path: str) -> Any:
        return await self._answer(await self._http.delete(path))

    async def text(self, path: str) -> str:
        """A plain-text answer as it came (the log's checkpoint, a signed note)."""
        response = await self._http.get(path)
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.text

    async def whoami(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self.get("/api/v1/whoami")
        return answer

    @staticmethod
    async def _answer(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise error_from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
