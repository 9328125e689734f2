"""QR codes drawn on the server as inline SVG (segno): no image request, no script, nothing sent
to a third party; the CSP needs no change (an inline <svg> is markup, not an image source)."""

from __future__ import annotations

import segno
from markupsafe import Markup, escape

__all__ = ["qr_svg"]


def qr_svg(content: str, *, label: str) -> Markup:
    """An accessible SVG of `content` that scales with its CSS box (no fixed size)."""
    svg: str = segno.make(content, error="m").svg_inline(
        scale=1, border=4, dark="#000000", light="#ffffff", omitsize=True, svgclass="qr"
    )
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1))  # noqa: S704
