"""``/docs``: Swagger UI from the package, under a strict Content-Security-Policy.

Why: admins paste API keys into this page; a script from a CDN (unpinned, without
integrity) could read them, and a page that needs a CDN is blank offline. Every URL the
page loads is this server's, is served with the policy, and the policy names no other
origin and allows nothing inline.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib.metadata import distribution
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from swagger_ui_bundle import swagger_ui_path

from federation.api import create_app
from federation.clock import ManualClock
from federation.keys import Keyring
from federation.settings import load_settings
from federation.store import Store
from tests.conftest import make_settings

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


class Loads(HTMLParser):
    """Every URL a page loads: scripts, stylesheets, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "data"):
            if found.get(name) is not None and tag in {"script", "link", "img", "iframe"}:
                self.urls.append(str(found[name]))
        if tag == "script" and "src" not in found:
            self.inline_scripts += 1


def policy(header: str) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def test_docs_loads_every_file_from_this_server_under_the_policy(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parsed = Loads()
    parsed.feed(page.text)
    assert parsed.inline_scripts == 0
    assert len(parsed.urls) >= 3, page.text
    assert not re.search(r"https?://|//[a-z]", page.text), "another origin is named"
    for response in [page, *(client.get(url) for url in parsed.urls)]:
        where = str(response.url)
        assert response.status_code == 200, where
        assert response.headers["x-content-type-options"] == "nosniff", where
        rules = policy(response.headers["content-security-policy"])
        assert rules["default-src"] == ["'none'"], where
        for directive in ("script-src", "style-src", "connect-src"):
            assert rules[directive] == ["'self'"], (where, directive)
        assert rules["img-src"] == ["'self'", "data:"], where
        assert rules["frame-ancestors"] == ["'none'"], where
    scripts = [url for url in parsed.urls if url.endswith(".js")]
    assert all(
        client.get(url).headers["content-type"].startswith("text/javascript") for url in scripts
    )
    assert client.get("/openapi.json").status_code == 200


def test_the_served_swagger_ui_is_the_pinned_distribution(client: TestClient) -> None:
    served = client.get("/docs/assets/swagger-ui-bundle.js").content
    assert served == (swagger_ui_path / "swagger-ui-bundle.js").read_bytes()
    pinned = re.search(r'"swagger-ui-bundle-v2==([0-9.]+)"', PYPROJECT.read_text())
    assert pinned is not None, "the Swagger UI distribution is not pinned"
    assert distribution("swagger-ui-bundle-v2").version == pinned.group(1)
    licence = [
        str(f) for f in distribution("swagger-ui-bundle-v2").files or [] if "LICENSE" in str(f)
    ]
    assert licence, "the distribution ships its licence"


def test_only_the_page_files_are_served(client: TestClient) -> None:
    for name in (
        "index.html",
        "swagger-ui-bundle.js.map",
        "..%2F__init__.py",
        "oauth2-redirect.html",
    ):
        answer = client.get(f"/docs/assets/{name}")
        assert answer.status_code == 404, name
        assert answer.headers["content-type"] == "application/problem+json"
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404


def test_docs_can_be_turned_off(
    tmp_path: Path, store: Store, keyring: Keyring, clock: ManualClock
) -> None:
    settings = make_settings(tmp_path, api_docs=False)
    app = create_app(settings, store=store, keyring=keyring, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 404
        assert client.get("/openapi.json").status_code == 200


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().api_docs is True
    monkeypatch.setenv("FEDERATION_API_DOCS", "off")
    assert load_settings().api_docs is False
