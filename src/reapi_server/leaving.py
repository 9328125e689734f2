"""Whether this process was told to stop and is in its drain delay (`drain_delay_seconds`):
it still serves every request, but `/readyz` answers 503 (a proxy's health check takes it
out of rotation) and every answer carries `Connection: close` (the client or proxy drops the
connection after it, rather than send a request on it in the instant the drain closes it).
Set once, by the exit signal (`exit_signals`): a process serves one gateway.
"""

from __future__ import annotations

__all__ = ["LEAVING", "Leaving"]


class Leaving:
    __slots__ = ("now",)

    def __init__(self) -> None:
        #: True from the first SIGTERM or SIGINT on (read on every answer: an attribute).
        self.now = False


LEAVING = Leaving()
