"""Helpers for console tests over the test client: sign in, read the CSRF token."""

from __future__ import annotations

import re

import httpx2
from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> httpx2.Response:
    form = client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={"csrf_token": csrf_token(form.text), "api_key": key},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return answer


def post_form(
    client: TestClient, page: str, action: str, **fields: str | list[str]
) -> httpx2.Response:
    """GET ``page`` for its token, then POST the form to ``action`` as a browser would."""
    token = csrf_token(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **fields}, follow_redirects=False)
