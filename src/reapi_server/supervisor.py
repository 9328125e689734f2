"""The parent of `serve --workers N`: uvicorn's supervisor (it restarts a worker that dies, and
hands SIGTERM on to every worker so that each drains), telling the metrics which workers are
gone. A SIGTERM or SIGINT that comes while the workers stop (in their drain delay) is handed on
too, so that each drains at once, as one process does on a second signal."""

from __future__ import annotations

import os
import signal

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
        for process in self.processes:
            while process.exitcode is None:
                process.process.join(0.2)
                self._hand_on_signals()
        for pid in self._pids():
            forget_worker(pid)

    def _hand_on_signals(self) -> None:
        """Signals that came since the workers were told to stop, each handed on to them."""
        while self.signal_queue:
            if self.signal_queue.pop(0) not in (signal.SIGTERM, signal.SIGINT):
                continue
            for process in self.processes:
                if process.exitcode is None and process.pid is not None:
                    os.kill(process.pid, signal.SIGTERM)
