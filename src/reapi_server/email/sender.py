"""How the outbox hands a message to a mail backend."""

from __future__ import annotations

from typing import Protocol

from .message import Message

__all__ = ["SendFailed", "SendThrottled", "Sender"]


class SendFailed(Exception):
    """The backend did not take the message. `code` is stored and logged (a status or an
    exception type, never the provider's text); `retryable=False` gives up at once.
    `retry_after`: the backend said when to try again (seconds); the outbox waits at least
    that long."""

    def __init__(
        self, code: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(code)
        self.code = code[:64]
        self.retryable = retryable
        self.retry_after = retry_after


class SendThrottled(SendFailed):
    """The backend asked us to slow down (a rate limit or a quota): no fault of the message.
    The outbox puts it and the rest of its pass back for `retry_after` seconds without
    counting an attempt, so a long newsletter never exhausts a message's attempts."""

    def __init__(self, code: str, *, retry_after: float) -> None:
        super().__init__(code, retryable=True, retry_after=retry_after)


class Sender(Protocol):
    #: "file", "resend", ...
    name: str

    async def send(self, message: Message, *, message_id: str) -> None:
        """Deliver `message` (from the address the backend was configured with). `message_id`
        is the outbox row's id, the same on every retry: a backend that supports idempotency
        keys passes it so that a retried send is delivered once. Raise `SendFailed` when the
        message was not taken."""
        ...

    async def aclose(self) -> None:
        """Release connections (the server is stopping)."""
        ...
