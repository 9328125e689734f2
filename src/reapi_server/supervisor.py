"""The parent of `serve --workers N`: uvicorn's supervisor (it restarts a worker that dies, and
hands SIGTERM on to every worker so that each drains), telling the metrics which workers are
gone."""

from __future__ import annotations

from uvicorn.supervisors import Multiprocess

from .observability.multiprocess import forget_worker

__all__ = ["Supervisor"]


class Supervisor(Multiprocess):
    def _pids(self) -> set[int]:
        return {pid for pid in (process.pid for process in self.processes) if pid is not None}

    def _forget_gone(self, before: set[int]) -> None:
        for pid in before - self._pids():
            forget_worker(pid)

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        self._forget_gone(before)

    def restart_all(self) -> None:
        before = self._pids()
        super().restart_all()
        self._forget_gone(before)

    def join_all(self) -> None:
        super().join_all()
        for pid in self._pids():
            forget_worker(pid)
