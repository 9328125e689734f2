"""A short, readable name for a browser ("Firefox on Linux") from its User-Agent, for the
sessions list and the new-device mail. A guess by well-known tokens; anything else is shown as
"Unknown browser"."""

from __future__ import annotations

__all__ = ["NAMES", "describe"]

# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe(user_agent: str) -> str:
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser is None:
        return "Unknown browser" + (f" on {system}" if system else "")
    if "HeadlessChrome/" in user_agent:
        browser = "Headless Chrome"
    return f"{browser} on {system}" if system else browser


def _names() -> frozenset[str]:
    browsers = [name for _, name in _BROWSERS] + ["Headless Chrome", "Unknown browser"]
    systems = [name for _, name in _SYSTEMS]
    with_system = {f"{browser} on {system}" for browser in browsers for system in systems}
    return frozenset(with_system | set(browsers))


#: Every name `describe` gives (what a session row holds).
NAMES = _names()
