"""End to end in a real Chromium: sign in, generate a key, copy it once, issue a token
with it through the CLI, find the token in the audit log, delete the key and watch the
CLI fail. Screenshots of every page land in CONSOLE_SCREENSHOTS (docs/console with
`make screenshots`)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.cli.helpers import agent_env, assert_error_line, verify_with_pyjwt
from tests.console.browser import DESKTOP, NARROW, check_page, signed_in, watch_policy_violations
from tests.support import LiveServer, World, start_server

AWS = "sts.amazonaws.com"
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("console")
    with contextlib.contextmanager(start_server)(
        home, f"sqlite:///{home}/var/federation.db"
    ) as live:
        yield live


def shoot(page: Page, directory: Path, name: str, mask: list[Locator] | None = None) -> None:
    """A full-page screenshot; ``mask`` paints over what must not be published."""
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True, mask=mask or [])


def test_key_lifecycle(browser: Browser, server: LiveServer, screenshots: Path) -> None:
    admin = World.live(server)
    ada = admin.platform_agent(agent_name="nightly-deploy", skill_spec="acme/infra:deploy")
    context = browser.new_context(
        viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    violations = watch_policy_violations(page)

    # Sign in with the keyboard alone: skip link first, then the key, then Enter.
    page.goto(f"{server.url}/console/")
    expect(page).to_have_url(f"{server.url}/console/sign-in")
    check_page(page, violations)
    shoot(page, screenshots, "sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "api-key"
    page.keyboard.type(ada.key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/console/api-keys")
    expect(page.get_by_text(f"user:{ada.uid}")).to_be_visible()
    assert ada.key not in page.content()

    # Generate a key: the raw key is shown once, copied to the clipboard.
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Expires").select_option("1d")
    expect(page.get_by_label("Service account (agent keys)")).to_be_hidden()
    page.get_by_role("button", name="Generate key").click()
    expect(page.get_by_text("It will not be shown again")).to_be_visible()
    raw = page.get_by_label("New API key").input_value()
    assert re.fullmatch(r"wk-[A-Za-z0-9_-]{43}", raw)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == raw
    check_page(page, violations)
    shoot(page, screenshots, "api-keys", mask=[page.get_by_label("New API key")])

    # Never again: the list shows it masked, with the columns of Oz's keys page.
    page.goto(f"{server.url}/console/api-keys")
    assert raw not in page.content()
    row = page.get_by_role("row").filter(has_text="laptop")
    expect(row).to_contain_text(f"wk-**{raw[-4:]}")
    expect(row).to_contain_text("federate")
    expect(row).to_contain_text("never")  # last used

    # The copied key works with the CLI, and the token verifies independently.
    issued = server.cli(
        "issue-token",
        "--run-id",
        ada.run_id,
        "--audience",
        AWS,
        "--output-format",
        "json",
        env={**agent_env(ada), "WARP_API_KEY": raw},
    )
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["token"]
    claims = verify_with_pyjwt(token, server.url, AWS)

    # A personal key may not read the audit log: a readable message, not a stack trace.
    page.goto(f"{server.url}/console/tokens")
    expect(page.get_by_role("alert")).to_contain_text("lacks the 'admin' scope")

    # The admin finds it in the audit log, without the token itself.
    with signed_in(browser, server.url, server.admin_key, viewport=DESKTOP) as admin_page:
        admin_violations = watch_policy_violations(admin_page)
        admin_page.get_by_role("link", name="Issued tokens").click()
        admin_page.get_by_label("Run").fill(ada.run_id)
        admin_page.get_by_role("button", name="Filter").click()
        row = admin_page.get_by_role("row").filter(has_text=claims["jti"])
        expect(row).to_contain_text(claims["sub"])
        expect(row).to_contain_text(AWS)
        assert token not in admin_page.content()
        assert token.split(".")[2] not in admin_page.content()
        check_page(admin_page, admin_violations)
        shoot(admin_page, screenshots, "tokens")
        visit_admin_pages(admin_page, server, ada.run_id, claims["jti"], screenshots)
        check_page(admin_page, admin_violations)

    # Delete with confirmation; the CLI fails on its very next request.
    page.goto(f"{server.url}/console/api-keys")
    page.get_by_role("link", name="Delete key laptop").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("laptop")
    check_page(page, violations)
    shoot(page, screenshots, "api-key-delete")
    page.get_by_role("button", name="Delete key").click()
    expect(page.get_by_role("status")).to_contain_text("The API key was deleted")
    expect(page.get_by_role("row").filter(has_text="laptop")).to_have_count(0)
    failed = server.cli(
        "issue-token",
        "--run-id",
        ada.run_id,
        "--audience",
        AWS,
        env={**agent_env(ada), "WARP_API_KEY": raw},
    )
    message = assert_error_line(failed, 77, raw, ada.workload_token)
    assert "API key is invalid" in message

    # The policy is in force: a script injected into the page does not run.
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.injected = 1"; document.body.append(s); }"""
    )
    assert page.evaluate("window.injected") is None
    assert any("Content Security Policy" in text for text in violations)
    context.close()


def visit_admin_pages(
    page: Page, server: LiveServer, run_id: str, jti: str, screenshots: Path
) -> None:
    """Runs, a run, signing keys and Try it, as an admin sees them."""
    page.get_by_role("link", name="Runs").click()
    page.get_by_label("State").select_option("INPROGRESS")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=run_id).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(run_id)
    components = page.get_by_role("region", name="Subject components", exact=True)
    expect(components).to_contain_text("environment:staging")
    expect(components).to_contain_text("agent_name:nightly-deploy")
    expect(components).to_contain_text("skill_spec:acme/infra%3Adeploy")
    expect(
        page.get_by_role("region", name="Tokens issued for this run", exact=True)
    ).to_contain_text(jti)
    shoot(page, screenshots, "run")
    page.get_by_role("link", name="Runs", exact=True).click()
    shoot(page, screenshots, "runs")

    page.get_by_role("link", name="Signing keys").click()
    expect(page.get_by_role("cell", name="ES256").first).to_be_visible()
    jwks = json.loads(page.locator("#jwks").inner_text())
    assert {key["alg"] for key in jwks["keys"]} == {"ES256", "RS256"}
    assert "d" not in json.dumps([sorted(key) for key in jwks["keys"]]).split('"')
    discovery = json.loads(page.locator("#discovery").inner_text())
    assert discovery["issuer"] == server.url
    shoot(page, screenshots, "signing-keys")

    page.get_by_role("link", name="Try it").click()
    page.get_by_label("Run").fill(run_id)
    page.get_by_label("Subject template").fill("teams environment")
    page.get_by_label("Duration").fill("15m")
    page.get_by_role("button", name="Show the claims").click()
    expect(page.locator("#subject")).to_have_text("teams:platform/environment:staging")
    claims = json.loads(page.locator("#claims").inner_text())
    assert claims["exp"] - claims["iat"] == 900
    assert claims["aud"] == [AWS]
    policy = json.loads(page.locator("#aws-policy").inner_text())
    condition = policy["Statement"][0]["Condition"]["StringEquals"]
    host = server.url.removeprefix("http://")
    assert condition == {f"{host}:aud": AWS, f"{host}:sub": "teams:platform/environment:staging"}
    mapping = json.loads(page.locator("#gcp-mapping").inner_text())
    assert mapping["attributeCondition"] == "assertion.sub == 'teams:platform/environment:staging'"
    shoot(page, screenshots, "try-it")


def test_narrow_screens(browser: Browser, server: LiveServer, screenshots: Path) -> None:
    """Every page fits 360 CSS pixels without page-wide horizontal scrolling; wide
    tables scroll inside their own region."""
    admin = World.live(server)
    ada = admin.platform_agent()
    with signed_in(browser, server.url, server.admin_key, viewport=NARROW) as page:
        violations = watch_policy_violations(page)
        for path in (
            "/console/api-keys",
            "/console/runs",
            f"/console/runs/{ada.run_id}",
            "/console/signing-keys",
            "/console/tokens",
            f"/console/try?run_id={ada.run_id}",
        ):
            page.goto(f"{server.url}{path}")
            check_page(page, violations)
        page.goto(f"{server.url}/console/runs")
        shoot(page, screenshots, "runs-narrow")
