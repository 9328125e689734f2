"""Chromium from Debian (`/usr/bin/chromium`) driven by Playwright for Python. Nothing here
downloads a browser: without the Debian package (or Playwright), the browser leg is skipped with
a message saying how to enable it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("REAPI_CHROMIUM", "/usr/bin/chromium")
#: Screenshots of every open page when a browser test fails.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

SKIP_NO_CHROMIUM = (
    f"Browser leg skipped: no Chromium at {CHROMIUM}. "
    "Enable it with `apt-get install chromium` (CI's .ci/run does)."
)
SKIP_NO_PLAYWRIGHT = (
    "Browser leg skipped: Playwright for Python is not installed. "
    "Enable it with `pip install -e '.[dev]'` (never `playwright install`: the tests use "
    "Debian's Chromium)."
)


#: The code windows (`pre.code`) that scroll sideways: on a phone, none may (half of an example
#: out of sight); their long lines wrap instead.
SIDEWAYS_CODE = """() => [...document.querySelectorAll("pre.code")]
  .filter((pre) => pre.scrollWidth > pre.clientWidth).length"""


def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM) is not None


@pytest.fixture
def chromium(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A Playwright Browser on Debian's Chromium; every page it opened is photographed into
    test-artifacts/ if the test fails."""
    if not chromium_available():
        pytest.skip(SKIP_NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(SKIP_NO_PLAYWRIGHT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                for c, context in enumerate(browser.contexts):
                    for p, page in enumerate(context.pages):
                        name = f"{request.node.name}-context{c}-page{p}.png"
                        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
            browser.close()


# -- what a page offers a person who cannot see well, or uses a keyboard -------------------------

#: Text whose contrast with what is behind it falls short of WCAG AA (4.5:1; 3:1 for large text):
#: its colour composited over every background of its ancestors (text on an image or a gradient
#: is skipped: its background is not one colour). SVG text is judged by its fill.
_LOW_CONTRAST = """() => {
  const parse = (c) => {
    const m = c && c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const luminance = (rgb) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const backdrop = (element) => {
    const chain = [];
    for (let e = element; e; e = e.parentElement) chain.unshift(e);
    let colour = [255, 255, 255, 1];
    for (const e of chain) {
      const style = getComputedStyle(e);
      if (style.backgroundImage !== "none") return null;
      const c = parse(style.backgroundColor);
      if (c && c[3] > 0) colour = over(c, colour);
    }
    return colour;
  };
  const short = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const element = walker.currentNode.parentElement;
    if (!text || seen.has(element)) continue;
    seen.add(element);
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    if (box.width < 2 || box.height < 2 || style.visibility === "hidden") continue;
    if (element.closest(".visually-hidden, .skip-link, [hidden]")) continue;
    const back = backdrop(element);
    const ink = parse(element instanceof SVGElement ? style.fill : style.color);
    if (!back || !ink) continue;
    const [a, b] = [luminance(over(ink, back)), luminance(back)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      const name = element.tagName.toLowerCase() + "." + (element.getAttribute("class") || "");
      short.push(`${name} "${text.slice(0, 40)}" ${ratio.toFixed(2)}:1`);
    }
  }
  return short;
}"""

#: Form fields without a label, buttons and links without a name, and any positive tabindex
#: (which would take an element out of the page's reading order).
_UNNAMED = """() => {
  const problems = [];
  for (const field of document.querySelectorAll("input, select, textarea")) {
    if (field.type === "hidden") continue;
    if (!(field.labels && field.labels.length) && !field.getAttribute("aria-label")
        && !field.getAttribute("aria-labelledby")) {
      problems.push("no label: " + field.outerHTML.slice(0, 90));
    }
  }
  for (const control of document.querySelectorAll("button, a[href]")) {
    const named = control.textContent.trim() || control.getAttribute("aria-label")
      || control.getAttribute("aria-labelledby") || control.querySelector("img[alt]:not([alt=''])");
    if (!named) problems.push("no name: " + control.outerHTML.slice(0, 90));
  }
  for (const element of document.querySelectorAll("[tabindex]")) {
    if (element.tabIndex > 0) problems.push("tabindex > 0: " + element.outerHTML.slice(0, 90));
  }
  return problems;
}"""

#: What has the keyboard's focus: a description, and whether a focus ring shows.
_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const style = getComputedStyle(e);
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
    || style.boxShadow !== "none";
  const box = e.getBoundingClientRect();
  return {what: e.tagName.toLowerCase() + " " + (e.id || e.textContent.trim().slice(0, 30)),
          ring: ring, visible: box.width > 0 && box.height > 0};
}"""


def accessibility_problems(page: Any, *, tab_stops: int = 60) -> list[str]:
    """What a page gets wrong for people who do not use a mouse or see less: low contrast,
    unnamed controls, a positive tabindex, and, walking the page with Tab from the top, any stop
    that is invisible or shows no focus ring. An empty list means none found."""
    problems = [f"contrast: {t}" for t in page.evaluate(_LOW_CONTRAST)]
    problems += page.evaluate(_UNNAMED)
    page.evaluate(
        "() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }"
    )
    page.locator("body").focus()
    seen = set()
    for _ in range(tab_stops):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        if focused is None or focused["what"] in seen:
            break
        seen.add(focused["what"])
        if not focused["visible"]:
            problems.append(f"focus on an invisible element: {focused['what']}")
        elif not focused["ring"]:
            problems.append(f"no focus ring: {focused['what']}")
    return problems
