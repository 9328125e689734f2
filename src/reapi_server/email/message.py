"""One mail, as the outbox stores it and a sender delivers it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Message", "MessageKind"]

#: Transactional mail (verification, reset, security notices) is always sent; newsletter mail
#: only to those who opted in, and it carries List-Unsubscribe.
MessageKind = Literal["transactional", "newsletter"]


@dataclass(frozen=True, slots=True)
class Message:
    to: str
    subject: str
    text: str
    html: str | None = None
    #: The template it was made from (verify_email, ...): for logs and metrics.
    template: str = "custom"
    kind: MessageKind = "transactional"
    #: Extra headers (e.g. List-Unsubscribe), never From/To/Subject.
    headers: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        # The body holds one-time links: keep it out of reprs, logs and tracebacks.
        return f"Message(template={self.template!r}, kind={self.kind!r})"
