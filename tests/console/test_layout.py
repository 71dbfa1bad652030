"""The console's layout as Chromium renders it, at a laptop's width and a phone's:
identifiers stay on one line, nothing is cut off out of sight, and the rotate row lines
up. Measured on the rendered page (boxes and line boxes), never on the markup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.console.browser import DESKTOP, NARROW, check_page, signed_in, watch_policy_violations
from tests.support import LiveServer, World, serve_issuer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]
WIDTHS = pytest.mark.parametrize("viewport", [DESKTOP, NARROW], ids=["1280px", "360px"])

# Each identifier (a key, kid, jti, run or trace id...) in a table, the header or a
# heading: how many line boxes it takes (one, unless it wraps), and, when its box
# hides part of it, whether its title holds the whole value.
IDENTIFIER_PROBLEMS = """() => {
  const problems = [];
  let checked = 0;
  for (const el of document.querySelectorAll("table code, .who code, h1 code")) {
    if (!el.getClientRects().length) continue;  // not rendered
    checked += 1;
    const text = el.textContent.trim();
    const lines = el.getClientRects().length;
    if (lines !== 1) problems.push(`${text} takes ${lines} lines`);
    if (el.scrollWidth > el.clientWidth + 1 && el.title !== text) {
      problems.push(`${text} is cut short without the whole value in its title`);
    }
  }
  return {checked, problems};
}"""

# Boxes that hide part of their content: a scroll area with nothing to show it scrolls.
HIDDEN_OVERFLOW = """() => {
  const cut = [];
  for (const el of document.querySelectorAll("pre")) {
    if (el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1) {
      cut.push(`#${el.id}: ${el.scrollWidth}x${el.scrollHeight} in `
        + `${el.clientWidth}x${el.clientHeight}`);
    }
  }
  return cut;
}"""

# The top-level members of the JSON in <pre id=...> whose name is out of the box's
# visible area.
MEMBERS_OUT_OF_SIGHT = """([id, names]) => {
  const pre = document.getElementById(id);
  const box = pre.getBoundingClientRect();
  const top = box.top + pre.clientTop, left = box.left + pre.clientLeft;
  const text = pre.firstChild;
  const unseen = [];
  for (const name of names) {
    const at = text.data.indexOf(`\\n  "${name}":`);
    if (at < 0) { unseen.push(`${name} (absent)`); continue; }
    const range = document.createRange();
    range.setStart(text, at + 3);
    range.setEnd(text, at + 5 + name.length);
    const seen = range.getBoundingClientRect();
    if (seen.top < top - 0.5 || seen.bottom > top + pre.clientHeight + 0.5
        || seen.left < left - 0.5 || seen.right > left + pre.clientWidth + 0.5) {
      unseen.push(name);
    }
  }
  return unseen;
}"""


@dataclass(frozen=True)
class Seeded:
    run_id: str
    jti: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("console-layout")
    with serve_issuer(home, console_secret_file=home / "var" / "console-secret") as live:
        yield live


@pytest.fixture(scope="module")
def seeded(server: LiveServer) -> Seeded:
    """A run with a token issued for it: every table of the console has a row."""
    world = World.live(server)
    agent = world.platform_agent(agent_name="nightly-deploy", skill_spec="acme/infra:deploy")
    issued = world.issue(agent)
    assert issued.status_code == 200, issued.text
    return Seeded(run_id=agent.run_id, jti=issued.json()["jti"])


@WIDTHS
def test_identifiers_stay_on_one_line(
    browser: Browser, server: LiveServer, seeded: Seeded, viewport: ViewportSize
) -> None:
    with signed_in(browser, server.url, server.admin_key, viewport) as page:
        violations = watch_policy_violations(page)
        for path in (
            "/console/api-keys",
            "/console/runs",
            f"/console/runs/{seeded.run_id}",
            "/console/signing-keys",
            "/console/tokens",
        ):
            page.goto(f"{server.url}{path}")
            found: dict[str, Any] = page.evaluate(IDENTIFIER_PROBLEMS)
            assert found["checked"] > 0, path
            assert found["problems"] == [], path
            check_page(page, violations)
        page.goto(f"{server.url}/console/tokens")
        assert seeded.jti in page.get_by_role("row").filter(has_text=seeded.run_id).inner_text()


@WIDTHS
def test_try_it_shows_every_claim_and_the_whole_policies(
    browser: Browser, server: LiveServer, seeded: Seeded, viewport: ViewportSize
) -> None:
    with signed_in(browser, server.url, server.admin_key, viewport) as page:
        violations = watch_policy_violations(page)
        page.goto(f"{server.url}/console/try?run_id={seeded.run_id}")
        claims = json.loads(page.locator("#claims").inner_text())
        assert "host" in claims
        assert page.evaluate(MEMBERS_OUT_OF_SIGHT, ["claims", list(claims)]) == []
        mapping = json.loads(page.locator("#gcp-mapping").inner_text())
        assert page.evaluate(MEMBERS_OUT_OF_SIGHT, ["gcp-mapping", list(mapping)]) == []
        assert page.evaluate(HIDDEN_OVERFLOW) == []
        check_page(page, violations)
        page.goto(f"{server.url}/console/signing-keys")
        assert page.evaluate(HIDDEN_OVERFLOW) == []


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    x, y, width, height = box["x"], box["y"], box["width"], box["height"]
    return {"x": x, "y": y, "bottom": y + height, "right": x + width}


@WIDTHS
def test_the_rotate_row_lines_up(
    browser: Browser, server: LiveServer, viewport: ViewportSize
) -> None:
    with signed_in(browser, server.url, server.admin_key, viewport) as page:
        page.goto(f"{server.url}/console/signing-keys")
        table = _box(page, ".table-scroll")
        label = _box(page, "label[for=rotate-alg]")
        select = _box(page, "#rotate-alg")
        button = _box(page, "form[action$='/rotate'] button")
        hint = _box(page, "form[action$='/rotate'] .hint")
        # The select and its button: one row, the same top and bottom.
        assert abs(select["y"] - button["y"]) <= 1, (select, button)
        assert abs(select["bottom"] - button["bottom"]) <= 1, (select, button)
        assert button["x"] > select["right"]
        # The label above the select, the hint under both, all from one left edge, and
        # clear of the table above.
        assert label["y"] >= table["bottom"] + 8, (table, label)
        assert label["bottom"] <= select["y"] + 1, (label, select)
        assert hint["y"] >= max(select["bottom"], button["bottom"]) - 1, (hint, button)
        assert abs(label["x"] - select["x"]) <= 1, (label, select)
        assert abs(hint["x"] - select["x"]) <= 1, (hint, select)
