"""A streamed request's tap shared by its attempts. Hedged, two attempts (the primary and its
hedge) run at once, each streaming its own generation's drafts: passed on as they came, a
caller would see the drafts of two different images interleaved. So the tap hears one attempt
at a time: the first to send an event owns it while it runs; the others' events are dropped.
An owner that ends (failed, or cancelled as a hedge that lost) lets the tap go, so a failover's
drafts follow a failed host's, as they would without hedging.

The completed image is the winner's, which need not be the owner (a hedge that started later
may finish first): the caller then saw the owner's drafts and gets the winner's image, as an
OpenAI client shows the latest draft until the final image replaces it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from reapi.core import ServerSentEvent, Tap

__all__ = ["SharedTap"]


class SharedTap:
    def __init__(self, tap: Tap) -> None:
        self._tap = tap
        #: The attempt whose events the tap hears (its own tap), if one sent any yet.
        self._owner: Tap | None = None

    @contextmanager
    def attempt(self) -> Iterator[Tap]:
        """The tap of one attempt, for as long as it runs."""

        def hear(event: ServerSentEvent) -> None:
            if self._owner is None:
                self._owner = hear
            if self._owner is hear:
                self._tap(event)

        try:
            yield hear
        finally:
            if self._owner is hear:
                self._owner = None
