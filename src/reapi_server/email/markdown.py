"""Markdown an operator writes (a newsletter issue, a policy notice) as the two parts of a mail:
HTML with inline styles (mail clients drop stylesheets) and the Markdown itself as the plain
text, which is what Markdown was made to read like.

CommonMark without raw HTML, as the legal pages: the operator's file cannot add scripts or
forms to a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

__all__ = ["MailBody", "render_markdown"]

_MONO = "ui-monospace,SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace"
#: Inline styles per tag, in the palette of the mail layout.
STYLES = {
    "p": "margin:0 0 16px 0;",
    "h1": "font-size:22px;line-height:1.3;margin:0 0 12px 0;",
    "h2": "font-size:18px;line-height:1.3;margin:24px 0 8px 0;",
    "h3": "font-size:16px;line-height:1.3;margin:20px 0 8px 0;",
    "a": "color:#2251d1;text-decoration:underline;",
    "ul": "margin:0 0 16px 0;padding:0 0 0 22px;",
    "ol": "margin:0 0 16px 0;padding:0 0 0 22px;",
    "li": "margin:0 0 6px 0;",
    "blockquote": "margin:0 0 16px 0;padding:0 0 0 14px;border-left:3px solid #dde1e6;"
    "color:#555e69;",
    "code": f"font-family:{_MONO};font-size:13px;background:#eef0f3;padding:1px 4px;"
    "border-radius:4px;",
    "pre": f"font-family:{_MONO};font-size:13px;background:#f4f5f7;padding:12px 14px;"
    "border-radius:6px;margin:0 0 16px 0;white-space:pre-wrap;word-break:break-word;",
    "hr": "border:0;border-top:1px solid #e3e6ea;margin:24px 0;",
    "table": "border-collapse:collapse;margin:0 0 16px 0;font-size:14px;",
    "th": "text-align:left;padding:6px 10px;border-bottom:2px solid #dde1e6;",
    "td": "text-align:left;padding:6px 10px;border-bottom:1px solid #e3e6ea;",
    "img": "max-width:100%;height:auto;border:0;",
}


@dataclass(frozen=True, slots=True)
class MailBody:
    html: str
    text: str


def _code_block(
    renderer: object, tokens: list[Token], index: int, options: OptionsDict, env: EnvType
) -> str:
    # The default puts the attributes on <code>; the box (background, padding) is the <pre>.
    return f'<pre style="{STYLES["pre"]}">{escapeHtml(tokens[index].content)}</pre>\n'


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    md.add_render_rule("fence", _code_block)
    md.add_render_rule("code_block", _code_block)
    return md


def _walk(tokens: Iterable[Token]) -> Iterable[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def render_markdown(source: str) -> MailBody:
    text = source.replace("\r\n", "\n").strip()
    md = _markdown()
    tokens = md.parse(text)
    for token in _walk(tokens):
        style = STYLES.get(token.tag)
        if style and token.nesting in (0, 1) and token.type not in ("fence", "code_block"):
            token.attrSet("style", style)
    return MailBody(html=md.renderer.render(tokens, md.options, {}), text=text)
