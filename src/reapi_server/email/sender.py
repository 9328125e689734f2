"""How the outbox hands a message to a mail backend."""

from __future__ import annotations

from typing import Protocol

from .message import Message

__all__ = ["SendFailed", "Sender"]


class SendFailed(Exception):
    """The backend did not take the message. `code` is stored and logged (a status or an
    exception type, never the provider's text); `retryable=False` gives up at once."""

    def __init__(self, code: str, *, retryable: bool = True) -> None:
        super().__init__(code)
        self.code = code[:64]
        self.retryable = retryable


class Sender(Protocol):
    #: "file", "resend", ...
    name: str

    async def send(self, message: Message, *, message_id: str) -> None:
        """Deliver `message` (from the address the backend was configured with). `message_id`
        is the outbox row's id, the same on every retry: a backend that supports idempotency
        keys passes it so that a retried send is delivered once. Raise `SendFailed` when the
        message was not taken."""
        ...
