"""Debian's Chromium, headless, driven by Playwright: the console's browser tests.

No browser can be downloaded here, so Playwright drives the system's Chromium
(``/usr/bin/chromium``, or ``CONSOLE_TEST_CHROMIUM``), with the flags that keep it
off the network: only the loopback server under test is ever contacted.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from playwright.sync_api import Browser, Page, ViewportSize, expect

CHROMIUM = os.environ.get("CONSOLE_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Where screenshots go: `make screenshots` points this at docs/console.
SCREENSHOTS_VARIABLE = "CONSOLE_SCREENSHOTS"  # not FEDERATION_*: every test clears those
# The widths every page is checked at: a laptop, and a small phone.
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
NARROW: ViewportSize = {"width": 360, "height": 780}


@contextlib.contextmanager
def signed_in(browser: Browser, url: str, key: str, viewport: ViewportSize) -> Iterator[Page]:
    """A fresh browser context (its own cookies) at ``viewport``, signed in with ``key``
    to the console of the server at ``url``."""
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.goto(f"{url}/console/")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{url}/console/api-keys")
        yield page
    finally:
        context.close()


def watch_policy_violations(page: Page) -> list[str]:
    """Console messages about a blocked script, style or frame: the CSP at work."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    return violations


# Every visible form control has a label; every page has one h1 and a main landmark.
ACCESSIBILITY_PROBLEMS = """() => {
  const problems = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden" || el.closest("[hidden]")) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!named) problems.push(`unlabelled ${el.tagName} ${el.name}`);
  }
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  if (!document.querySelector("main")) problems.push("no main landmark");
  if (!document.documentElement.lang) problems.push("no lang");
  return problems;
}"""

# WCAG contrast of each text element against the first opaque background behind it.
CONTRAST_FAILURES = """() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const value = rgb(getComputedStyle(node).backgroundColor);
      if (value.length === 3 || (value.length === 4 && value[3] > 0.9)) return value.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failures = [];
  const selector = "p, a, td, th, label, button, code, dt, dd, legend, figcaption, li, "
    + "h1, h2, span, pre";
  for (const el of document.querySelectorAll(selector)) {
    if (!el.offsetParent || !el.textContent.trim()) continue;
    const a = lum(rgb(getComputedStyle(el).color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const shown = el.textContent.trim().slice(0, 30);
    if (ratio < 4.5) failures.push(`${el.tagName} "${shown}" ${ratio.toFixed(2)}`);
  }
  return failures;
}"""


def check_page(page: Page, violations: list[str]) -> None:
    """What every console page must pass: labels, contrast, no CSP violation, and no
    page-wide horizontal scrolling at the current width."""
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == []
    assert page.evaluate(CONTRAST_FAILURES) == []
    assert violations == []
    width = page.viewport_size["width"] if page.viewport_size else 1280
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, (page.url, scroll_width)
