"""``/docs`` in a real Chromium against a real server, with every other origin cut off:
the reference renders, "Authorize" and "Try it out" reach the API, and the
Content-Security-Policy blocks nothing the page needs.

Why: a page that needs a CDN is blank offline, and one whose policy blocks Swagger UI's
own scripts or styles is broken in every browser; only a browser shows either.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Route, expect, sync_playwright

from tests.console.browser import CHROMIUM, FLAGS, watch_policy_violations
from tests.support import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def test_docs_work_offline_under_their_policy(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def offline(route: Route) -> None:
        if route.request.url.startswith(f"{live_server.url}/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    try:
        context.route("**/*", offline)
        page = context.new_page()
        violations = watch_policy_violations(page)
        page.goto(f"{live_server.url}/docs")
        expect(page.get_by_text("/api/v1/federate/issue-token").first).to_be_visible()

        page.get_by_role("button", name="Authorize").first.click()
        page.get_by_label("auth-bearer-value").fill(live_server.admin_key)
        page.get_by_role("button", name="Apply credentials").click()
        page.get_by_role("button", name="Close").click()
        whoami = page.locator("#operations-principals-whoami_api_v1_whoami_get")
        whoami.locator(".opblock-summary").click()
        whoami.get_by_role("button", name="Try it out").click()
        whoami.get_by_role("button", name="Execute").click()
        status = whoami.locator(".live-responses-table .response .response-col_status")
        expect(status).to_have_text("200")
        expect(whoami.locator(".live-responses-table")).to_contain_text('"admin"')

        assert violations == []
        assert elsewhere == []
    finally:
        context.close()
