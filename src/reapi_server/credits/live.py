"""The credit holds of image requests still running in this process, kept renewed.

An image hold has an expiry (`image_hold_seconds`): one still held after it belongs to a process
that died, and the sweeper releases it. A request that runs longer than that (a slow upstream, a
large output to store) must not lose its hold that way: its images would then be delivered
free. So each process lists the holds of its running requests (`LiveHolds`), and a background
task (`renewal`) pushes back the expiry of those that have used up a third of their window, in
one UPDATE per round. A request that ends within a third of the window never costs a write; a
process that dies stops renewing, and its holds expire as before.
"""

from __future__ import annotations

from ..when_empty import WhenEmpty

__all__ = ["LiveHolds"]


class LiveHolds:
    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}
        self._emptied = WhenEmpty()  # for `until_empty` (shutdown)

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, hold_id: str, expires_at: float) -> None:
        """The request this hold pays for is running: keep it renewed until `discard`."""
        self._expiry[hold_id] = expires_at

    def discard(self, hold_id: str) -> None:
        self._expiry.pop(hold_id, None)
        self._emptied.removed(len(self._expiry))

    async def until_empty(self) -> None:
        """Return once every running request has ended (its hold settled or released)."""
        await self._emptied.wait(len(self._expiry))

    def due(self, now: float, window: float) -> list[str]:
        """Holds with less than two thirds of their window left."""
        return [h for h, expires in self._expiry.items() if expires - now < window * 2 / 3]

    def renewed(self, hold_ids: list[str], expires_at: float) -> None:
        for hold_id in hold_ids:
            if hold_id in self._expiry:
                self._expiry[hold_id] = expires_at
